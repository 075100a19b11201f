import Base
import Foundation
import Model
import Tokenizer

/// Whether a probe's prompt is in the training data.
public enum ProbeSplit: String, Sendable, Codable, Equatable, Hashable {
    case train, heldout
}

/// One probe prompt and its responses, one per static category, in the probe set's category order.
public struct Probe: Sendable, Equatable {
    /// Position in the probe file (0-based).
    public var idx: Int
    public var prompt: [ChatMessage]
    public var split: ProbeSplit
    public var responses: [ProbeResponse]
    /// The prompt's text as the file wrote it, and what joins it to a response (`PromptSource`).
    public var promptText: String?
    public var separator: String

    public init(idx: Int, prompt: [ChatMessage], split: ProbeSplit, responses: [ProbeResponse],
                promptText: String? = nil, separator: String = "") {
        self.idx = idx
        self.prompt = prompt
        self.split = split
        self.responses = responses
        self.promptText = promptText
        self.separator = separator
    }

    /// The prompt as the templates read it.
    public var promptSource: PromptSource { PromptSource(messages: prompt, text: promptText, separator: separator) }

    /// The response of `category`, if the probe has it.
    public func response(_ category: String) -> ProbeResponse? {
        responses.first { $0.category == category }
    }
}

/// A category whose text the model makes anew at every evaluation: its greedy decode of the prompt (see
/// `greedyResponse`), or the teacher-forced argmax sequence of a static category's response.
public struct DynamicCategory: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Greedy decoding of up to `maxTokens` tokens.
        case greedy(maxTokens: Int)
        /// The argmax at every position of the response of the static category `of`, which reads `field`.
        case argmax(of: String, field: String)
    }

    public var category: String
    public var kind: Kind

    /// Most tokens a greedy decode adds (0 for argmax sequences, which are as long as their source).
    public var maxTokens: Int {
        if case let .greedy(n) = kind { return n }
        return 0
    }

    /// "greedy:max_tokens=N" or "argmax:FIELD" (the evaluator appends ":step=S").
    public var origin: String {
        switch kind {
        case let .greedy(n): return "greedy:max_tokens=\(n)"
        case let .argmax(_, field): return "argmax:\(field)"
        }
    }

    public init(category: String, kind: Kind) {
        self.category = category
        self.kind = kind
    }

    public init(category: String, maxTokens: Int) {
        self.init(category: category, kind: .greedy(maxTokens: maxTokens))
    }
}

/// A model for `generate: { model: ... }` sources, as loaded by `GenerationOptions.loadModel`.
public struct GeneratorModel {
    public var model: LlamaModel
    public var tokenizer: any TextTokenizer
    /// Whether prompts start with the tokenizer's BOS (GGUF `tokenizer.ggml.add_bos_token`; false for SmolLM2).
    public var addsBOS: Bool

    public init(model: LlamaModel, tokenizer: any TextTokenizer, addsBOS: Bool) {
        self.model = model
        self.tokenizer = tokenizer
        self.addsBOS = addsBOS
    }
}

/// How `ProbeSet.build` runs `generate` sources.
public struct GenerationOptions {
    /// JSON cache of generated texts; `nil` keeps them in memory only (every build generates anew).
    public var cachePath: String?
    /// Loads the GGUF named by a `generate: { model: ... }` source (the path as written in the spec).
    /// Needed only when a category uses a model generator.
    public var loadModel: ((String) throws -> GeneratorModel)?

    public init(cachePath: String? = nil,
                loadModel: ((String) throws -> GeneratorModel)? = nil) {
        self.cachePath = cachePath
        self.loadModel = loadModel
    }
}

/// The probe set of an experiment: prompts with one response per category, and the dynamic categories.
public struct ProbeSet: Sendable, Equatable {
    public var probes: [Probe]
    /// Static categories, in order: chosen, rejected, paraphrased_rejected, variant, random,
    /// non_response (those present), then the others alphabetically.
    public var categories: [String]
    /// Categories decoded by the model at each evaluation (`greedy`).
    public var dynamicCategories: [DynamicCategory]

    public init(probes: [Probe], categories: [String], dynamicCategories: [DynamicCategory] = []) {
        self.probes = probes
        self.categories = categories
        self.dynamicCategories = dynamicCategories
    }

    /// The study's categories first (`StandardCategories`), in reports and files.
    static let canonicalOrder = StandardCategories.order

    static func ordered(_ names: some Sequence<String>) -> [String] {
        names.sorted { a, b in
            let ia = canonicalOrder.firstIndex(of: a) ?? canonicalOrder.count
            let ib = canonicalOrder.firstIndex(of: b) ?? canonicalOrder.count
            return ia != ib ? ia < ib : a < b
        }
    }

    /// Builds the probe set from probe examples and a category map (category id -> source).
    /// - `seed` drives the derivations (`other_prompt`, `shuffled_words`, `random_tokens`).
    /// - A probe is `train` when its prompt (messages equal) is one of `trainPrompts`, else `heldout`.
    /// - `tokenizer` counts the tokens of `random_tokens` sources and decodes their ids.
    /// - Generated texts come from `generation.cachePath` when cached, and are added to it otherwise.
    /// Errors name the probe file and line of a missing or mistyped field, the category, or the generator.
    public static func build(examples: [PreferenceExample], categories: [String: CategorySource], seed: UInt64,
                             trainPrompts: [[ChatMessage]], tokenizer: any TextTokenizer,
                             generation: GenerationOptions = GenerationOptions()) throws -> ProbeSet {
        let trainKeys = Set(trainPrompts.map(promptKey))
        var staticNames: [String] = []
        var dynamic: [DynamicCategory] = []
        for name in ordered(categories.keys) {
            if name.isEmpty {
                throw ProbesError.category(name: name, reason: "expected a non-empty category name")
            }
            if reservedKeys.contains(name) {
                throw ProbesError.category(name: name, reason: "reserved name (\(reservedKeys.sorted().joined(separator: ", ")) are keys of probe files)")
            }
            switch categories[name]! {
            case let .greedy(maxTokens): dynamic.append(DynamicCategory(category: name, maxTokens: maxTokens))
            case .argmax: break
            default: staticNames.append(name)
            }
        }
        // An argmax category follows the static category that reads its field (as a plain field).
        for name in ordered(categories.keys) {
            guard case let .argmax(field) = categories[name]! else { continue }
            guard let source = staticNames.first(where: { categories[$0]! == .field(field) }) else {
                throw ProbesError.category(name: name, reason: "argmax.field \"\(field)\": no category reads that field; add one (e.g. \(field): \"\(field)\")")
            }
            dynamic.append(DynamicCategory(category: name, kind: .argmax(of: source, field: field)))
        }
        var columns: [String: [(text: String, origin: String)]] = [:]
        var unseparated: [String: Set<Int>] = [:]  // category -> probes whose field was written without the separator
        var cache: GenerationCache?
        var models: [String: GeneratorModel] = [:]
        for name in staticNames {
            switch categories[name]! {
            case let .field(field):
                columns[name] = try examples.map { (ex) throws(ProbesError) in
                    (try ex.text(of: field), ex.origins[field] ?? "data")
                }
                unseparated[name] = Set(examples.indices.filter { !examples[$0].isSeparated(field) })
            case let .derive(derivation):
                columns[name] = try derive(derivation, category: name, examples: examples, seed: seed, tokenizer: tokenizer)
            case let .generate(spec):
                if cache == nil { cache = try GenerationCache(path: generation.cachePath) }
                columns[name] = try generate(spec, category: name, examples: examples, cache: cache!, options: generation,
                                             models: &models)
            case .greedy, .argmax:
                preconditionFailure("greedy and argmax categories are dynamic")
            }
        }
        let probes = examples.enumerated().map { idx, ex in
            Probe(idx: idx, prompt: ex.prompt,
                  split: trainKeys.contains(promptKey(ex.prompt)) ? .train : .heldout,
                  responses: staticNames.map { ProbeResponse(category: $0, text: columns[$0]![idx].text, origin: columns[$0]![idx].origin,
                                                             separated: !(unseparated[$0]?.contains(idx) ?? false)) },
                  promptText: ex.promptText, separator: ex.separator)
        }
        return ProbeSet(probes: probes, categories: staticNames, dynamicCategories: dynamic)
    }

    /// A probe set as written by `writeJSONL` (or any probe file): every text field is a category,
    /// its origin the recorded one or `data`, its split the recorded one or `heldout`.
    public static func load(path: String) throws(ProbesError) -> ProbeSet {
        let examples = try loadExamples(path: path)
        let names = ordered(Set(examples.flatMap(\.fields.keys)))
        let probes = examples.enumerated().map { idx, ex in
            Probe(idx: idx, prompt: ex.prompt, split: ex.split ?? .heldout,
                  responses: names.compactMap { name in
                      ex.fields[name].map { ProbeResponse(category: name, text: $0, origin: ex.origins[name] ?? "data",
                                                          separated: ex.isSeparated(name)) }
                  }, promptText: ex.promptText, separator: ex.separator)
        }
        return ProbeSet(probes: probes, categories: names)
    }

    /// Writes the materialised probe set, one line per probe:
    /// `{"idx":0,"split":"train","prompt":[{"role":"user","content":"..."}],"chosen":"...",...,"origins":{"chosen":"data",...}}`
    /// (categories in `categories` order). A prompt the source file wrote as text is written as that text,
    /// and its responses with their separator (the leading space of an HH response), in the source's form.
    /// `loadExamples` and `ProbeSet.load` read it back as it was.
    public func writeJSONL(path: String) throws(ProbesError) {
        var out = ""
        for probe in probes {
            let prompt = probe.promptText.map(jsonQuoted) ?? messagesJSON(probe.prompt)
            let separator = probe.promptText == nil ? "" : probe.separator
            out += "{\"idx\":\(probe.idx),\"split\":\"\(probe.split.rawValue)\",\"prompt\":\(prompt)"
            for r in probe.responses { out += ",\(jsonQuoted(r.category)):\(jsonQuoted((r.separated ? separator : "") + r.text))" }
            out += ",\"origins\":{" + probe.responses.map { "\(jsonQuoted($0.category)):\(jsonQuoted($0.origin))" }
                .joined(separator: ",") + "}}\n"
        }
        do {
            try AtomicFile.write(out, to: path)
        } catch {
            throw .unwritable(file: path, reason: error.reason)
        }
    }
}

/// A string that is equal for equal message lists (lengths prefix each part, so no separator can collide).
func promptKey(_ messages: [ChatMessage]) -> String {
    messages.map { "\($0.role.utf8.count):\($0.role)\($0.content.utf8.count):\($0.content)" }.joined()
}
