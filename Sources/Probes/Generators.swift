import Base
import Foundation
import Model
import Tokenizer

/// One text to generate for one probe.
public struct GenerationRequest: Sendable, Equatable {
    /// The probe index (echoed back by external commands).
    public var id: Int
    /// The probe's prompt.
    public var prompt: [ChatMessage]
    /// The source field's text (empty when the generator reads no field).
    public var text: String
    /// The template as written in the spec.
    public var template: String
    public var seed: UInt64

    public init(id: Int, prompt: [ChatMessage], text: String, template: String, seed: UInt64) {
        self.id = id
        self.prompt = prompt
        self.text = text
        self.template = template
        self.seed = seed
    }

    /// The template with `{text}` replaced by the source text and `{prompt}` by the content of the
    /// prompt's last user turn.
    public var instruction: String {
        let lastUser = prompt.last(where: { $0.role == "user" })?.content ?? ""
        // One pass, so a `{prompt}` inside the text is not substituted again.
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let tail = rest[open...]
            if tail.hasPrefix("{text}") {
                out += text
                rest = tail.dropFirst(6)
            } else if tail.hasPrefix("{prompt}") {
                out += lastUser
                rest = tail.dropFirst(8)
            } else {
                out += "{"
                rest = tail.dropFirst()
            }
        }
        return out + rest
    }
}

/// Something that turns requests into texts, one per request, in order.
public protocol TextGenerator {
    /// Everything that makes its outputs what they are (program, model file, sampling settings):
    /// part of the cache key.
    var identity: String { get }
    func generate(_ requests: [GenerationRequest]) throws(ProbesError) -> [String]
}

/// An external program speaking JSON lines: it reads one request per line on stdin,
/// `{"id": 0, "prompt": [{"role": "user", "content": "..."}], "text": "...", "template": "...", "seed": 1}`,
/// and writes one answer per line on stdout, `{"id": 0, "text": "..."}`, in any order. It is run once
/// for all requests, without a shell. A non-zero exit, a malformed line, an unknown, repeated or
/// missing id is an error naming the command (and the output line).
public struct ExternalCommandGenerator: TextGenerator {
    public var argv: [String]
    /// Seconds the command may run before it is stopped (`GeneratorSpec.timeout`).
    public var timeout: Double

    public init(argv: [String], timeout: Double = GeneratorSpec.defaultTimeout) {
        precondition(!argv.isEmpty, "ExternalCommandGenerator needs an argv")
        self.argv = argv
        self.timeout = timeout
    }

    public var identity: String { "command:" + argv.map { "\($0.utf8.count):\($0)" }.joined() }

    public func generate(_ requests: [GenerationRequest]) throws(ProbesError) -> [String] {
        guard !requests.isEmpty else { return [] }
        let input = requests.map(requestLine).joined(separator: "\n") + "\n"
        let output: String
        do {
            output = try runCommand(argv, input: input, timeout: timeout)
        } catch {
            throw ProbesError(error)
        }
        let name = argv.joined(separator: " ")
        let wanted = Set(requests.map(\.id))
        var answers: [Int: String] = [:]
        var lineNumber = 0
        for (number, line) in TextFile.lines(output) {
            lineNumber = number
            if line.allSatisfy(\.isWhitespace) { continue }
            let value: JSONValue
            do {
                value = try JSONValue.parse(line)
            } catch {
                throw .commandOutput(command: name, line: lineNumber, reason: "invalid JSON (\(error.message))")
            }
            guard case let .object(fields) = value, case let .number(idNumber)? = fields["id"],
                  case let .string(text)? = fields["text"], let id = Int(exactly: idNumber) else {
                throw .commandOutput(command: name, line: lineNumber, reason: "expected {\"id\": <int>, \"text\": <string>}")
            }
            guard wanted.contains(id) else {
                throw .commandOutput(command: name, line: lineNumber, reason: "unknown id \(id)")
            }
            guard answers.updateValue(text, forKey: id) == nil else {
                throw .commandOutput(command: name, line: lineNumber, reason: "id \(id) answered twice")
            }
        }
        if let missing = requests.first(where: { answers[$0.id] == nil }) {
            throw .commandFailed(command: name, reason: "no answer for id \(missing.id) (\(answers.count) of \(requests.count) answered)")
        }
        return requests.map { answers[$0.id]! }
    }

    private func requestLine(_ r: GenerationRequest) -> String {
        "{\"id\":\(r.id),\"prompt\":\(messagesJSON(r.prompt)),\"text\":\(jsonQuoted(r.text)),"
            + "\"template\":\(jsonQuoted(r.template)),\"seed\":\(r.seed)}"
    }
}

/// `[{"role":...,"content":...},...]` as compact JSON.
func messagesJSON(_ messages: [ChatMessage]) -> String {
    "[" + messages.map { "{\"role\":\(jsonQuoted($0.role)),\"content\":\(jsonQuoted($0.content))}" }
        .joined(separator: ",") + "]"
}

/// Generation with a model in-process: each request's `instruction` becomes one user turn rendered
/// with `chatTemplate`, then is sampled with `options` (its `seed` replaced by the request's seed;
/// the tokenizer's EOS is added to the stop tokens). The prompt starts with BOS when `addsBOS`.
public final class ModelTextGenerator: TextGenerator {
    public let model: LlamaModel
    public let tokenizer: any TextTokenizer
    public let addsBOS: Bool
    public let chatTemplate: ChatTemplate
    public let options: SamplingOptions
    public let identity: String

    /// - Parameter name: names the model in `identity` (e.g. the GGUF path).
    public init(model: LlamaModel, tokenizer: any TextTokenizer, addsBOS: Bool, chatTemplate: ChatTemplate,
                options: SamplingOptions, name: String) {
        precondition(!addsBOS || tokenizer.bos != nil, "ModelTextGenerator: addsBOS needs a tokenizer with a BOS")
        self.model = model
        self.tokenizer = tokenizer
        self.addsBOS = addsBOS
        self.chatTemplate = chatTemplate
        self.options = options
        identity = ModelTextGenerator.identity(name: name, chatTemplate: chatTemplate, options: options)
    }

    /// The identity of a generator with these settings, known before its model is loaded.
    static func identity(name: String, chatTemplate: ChatTemplate, options: SamplingOptions) -> String {
        "model:\(name.utf8.count):\(name):\(chatTemplate.rawValue):t=\(options.temperature):p=\(options.topP):n=\(options.maxTokens)"
    }

    public func generate(_ requests: [GenerationRequest]) throws(ProbesError) -> [String] {
        var session: InferenceSession?
        var texts: [String] = []
        for request in requests {
            let rendered = chatTemplate.prompt([ChatMessage(role: "user", content: request.instruction)])
            let ids = (addsBOS ? [tokenizer.bos!] : []) + tokenizer.encode(rendered)
            let budget = model.config.contextLength - ids.count
            guard budget > 0 else {
                throw .category(name: "generate", reason: "prompt of probe \(request.id) has \(ids.count) tokens, the model's context is \(model.config.contextLength)")
            }
            var opts = options
            opts.seed = request.seed
            opts.maxTokens = min(options.maxTokens, budget)
            opts.stop.insert(tokenizer.eos)
            let capacity = ids.count + opts.maxTokens
            if session == nil || session!.capacity < capacity {
                session = InferenceSession(model: model, capacity: capacity)
            }
            session!.reset()
            let out = Model.generate(session: session!, prompt: ids, options: opts) { _ in true }
            texts.append(tokenizer.decode(out))
        }
        return texts
    }
}

/// The model's greedy continuation of `prompt` (token ids, BOS and chat template already applied):
/// at most `maxTokens` tokens, stopping before any of `stop` (typically the EOS). The session is
/// reset first and left holding the prompt and the generated tokens; its capacity must be at least
/// `prompt.count + maxTokens`. The harness decodes this anew at each evaluation for `greedy` categories.
public func greedyResponse(session: InferenceSession, prompt: [Int32], maxTokens: Int, stop: Set<Int32>) -> [Int32] {
    precondition(!prompt.isEmpty, "greedyResponse needs a prompt")
    precondition(prompt.count + maxTokens <= session.capacity, "greedyResponse: session capacity too small")
    session.reset()
    let options = SamplingOptions(maxTokens: maxTokens, temperature: 0, topP: 1, seed: 0, stop: stop)
    return generate(session: session, prompt: prompt, options: options) { _ in true }
}
