import Base
import Foundation
import Tokenizer

/// One line of a training or probe file: the prompt as chat messages, the chosen response (present in
/// every paired form), the rejected one (when the line has it) and every text field of the line. Unpaired
/// lines have a `completion` and a `label`, rated lines a `response` (or `completion`) and a `rating`.
public struct PreferenceExample: Sendable, Equatable {
    /// The conversation up to the response; ends with a user turn.
    public var prompt: [ChatMessage]
    /// The prompt's text as the file wrote it, if it did, and what joins it to a response (the `raw`
    /// template scores `promptText + separator + response`).
    public var promptText: String?
    public var separator = ""
    /// The form the line was read as.
    public var form = DataForm.plainPrompt
    public var chosen: String?
    public var rejected: String?
    /// Unpaired feedback: whether the completion is desirable.
    public var label: Bool?
    /// Rated feedback: the line's `rating` (or `score`).
    public var rating: Double?
    /// Every text response field of the line, `chosen` and `rejected` included, by field name.
    public var fields: [String: String]
    /// Field -> origin, as recorded by `ProbeSet.writeJSONL`; a field absent here comes from the data.
    public var origins: [String: String]
    /// The split recorded by `ProbeSet.writeJSONL`, if any.
    public var split: ProbeSplit?
    /// Where the line comes from, for error messages.
    public var file: String
    public var line: Int
    /// Fields present in the line but not usable as text (name -> JSON type), to explain a bad mapping.
    var otherFields: [String: String]
    /// Number fields of the line by name.
    public var numbers: [String: Double] = [:]
    /// Response fields written without `separator` (explicit-prompt HH responses without their leading space):
    /// scored as written, right after the prompt.
    public var unseparated: Set<String> = []
    /// What the reader did with each key of the line (`probes show`).
    public var notes: [String: String] = [:]

    /// An example built in code (file "" and line 0 in error messages).
    public init(prompt: [ChatMessage], chosen: String, rejected: String? = nil, fields: [String: String] = [:]) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        var all = fields
        all["chosen"] = chosen
        if let rejected { all["rejected"] = rejected }
        self.fields = all
        origins = [:]
        split = nil
        file = ""
        line = 0
        otherFields = [:]
    }

    /// A line as the loader read it.
    init(prompt: [ChatMessage], parsed: ParsedLine, file: String) {
        self.prompt = prompt
        promptText = parsed.promptText
        separator = parsed.separator
        form = parsed.form
        chosen = parsed.fields["chosen"]
        rejected = parsed.fields["rejected"]
        label = parsed.label
        rating = parsed.rating
        fields = parsed.fields
        origins = parsed.origins
        split = parsed.split.flatMap(ProbeSplit.init(rawValue:))
        self.file = file
        line = parsed.line
        otherFields = parsed.otherFields
        numbers = parsed.numbers
        unseparated = parsed.unseparated
        notes = parsed.notes
    }

    /// Whether `field` follows the prompt's separator when scored (false for a response its file wrote without it).
    public func isSeparated(_ field: String) -> Bool { !unseparated.contains(field) }

    /// The number in `field`, or an error naming the file, the line and what the field holds instead.
    public func number(of field: String) throws(ProbesError) -> Double {
        if let x = numbers[field] { return x }
        if let found = otherFields[field] ?? fields[field].map({ _ in "a string" }) {
            throw .wrongType(file: file, line: line, field: field, expected: "a number", found: found)
        }
        throw .missingField(file: file, line: line, field: field)
    }

    /// The text of `field`, or an error naming the file, the line and what is wrong with the field.
    public func text(of field: String) throws(ProbesError) -> String {
        if let text = fields[field] { return text }
        if let found = otherFields[field] {
            throw .wrongType(file: file, line: line, field: field, expected: "a string or a list of messages", found: found)
        }
        throw .missingField(file: file, line: line, field: field)
    }
}

/// Reads a JSONL file of examples (training data or probes); the format is detected per line:
/// - `{"prompt": "..." | [messages ending with a user turn], "chosen": "...", "rejected": "...", ...}`
///   (any other text field is kept in `fields`; a field may also be a message list repeating the prompt);
/// - `{"messages": [..., {"role": "assistant", "content": "..."}], ...}`: the last turn is `chosen`;
/// - `{"chosen": "\n\nHuman: ...\n\nAssistant: ...", "rejected": "..."}`: HH transcripts, cut at the
///   last "\n\nAssistant:"; all transcripts of a line must share the prompt;
/// - `{"chosen": [messages], "rejected": [messages]}`: chat preference pairs sharing the prompt.
/// Errors name the file and line and say what was expected.
public func loadExamples(path: String) throws(ProbesError) -> [PreferenceExample] {
    let text: String
    do {
        text = try TextFile.readText(path)
    } catch {
        throw ProbesError(error)
    }
    return try parseExamples(text, file: path)
}

/// `loadExamples` on text already in memory; `file` names the source in errors.
func parseExamples(_ text: String, file: String) throws(ProbesError) -> [PreferenceExample] {
    try parseJSONLines(text, file: file).map { (parsed) throws(ProbesError) -> PreferenceExample in
        let prompt: [ChatMessage]
        switch parsed.prompt {
        case let .messages(messages):
            prompt = messages.map { ChatMessage(role: $0.role, content: $0.content) }
        case let .hhTranscript(text):
            let field = parsed.promptField
            do {
                prompt = try HHTranscript.parse(text)
            } catch {
                throw .invalidMessages(file: file, line: parsed.line, field: field, reason: "\(error)")
            }
            guard prompt.last?.role == "user" else {
                throw .invalidMessages(file: file, line: parsed.line, field: field,
                                       reason: "expected the transcript's prompt to end with a Human turn")
            }
        }
        return PreferenceExample(prompt: prompt, parsed: parsed, file: file)
    }
}

extension PreferenceExample {
    /// The prompt as the templates read it.
    public var promptSource: PromptSource { PromptSource(messages: prompt, text: promptText, separator: separator) }

    /// The prompt as a data line writes it back: its text when the line gave one, else its messages.
    public var promptJSON: JSONValue {
        promptText.map { .string($0) } ?? .array(prompt.map { .object(["role": .string($0.role), "content": .string($0.content)]) })
    }
}

extension PreferenceExample {
    /// A paired example as two unpaired ones (for the unpaired objectives): the chosen response as a
    /// desirable `completion` (label true), the rejected one as an undesirable one (label false).
    /// Other lines are returned as they are.
    public func unpaired() -> [PreferenceExample] {
        guard let chosen, let rejected else { return [self] }
        return [(chosen, true), (rejected, false)].map { text, label in
            var ex = self
            ex.chosen = nil
            ex.rejected = nil
            ex.fields = ["completion": text]
            ex.unseparated = unseparated.contains(label ? "chosen" : "rejected") ? ["completion"] : []
            ex.label = label
            ex.form = .unpaired
            return ex
        }
    }
}
