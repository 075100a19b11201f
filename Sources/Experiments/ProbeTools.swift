import Base
import Foundation
import GGUF
import HFModels
import Probes
import Tokenizer

/// `alignscope probes build|audit`: materialise a probe set, or audit a probe file.
public enum ProbeTools {
    /// Builds the probe set of a spec (its first run's config) or of a plain probe file (its own
    /// fields, plus `random` derived from `chosen` with `seed`), and writes it as JSONL.
    /// - Returns: the number of probes and the categories written.
    public static func build(input: String, out: String, modelPath: String?, seed: Int) throws -> (probes: Int, categories: [String]) {
        let set: ProbeSet
        if input.hasSuffix(".json5") || input.hasSuffix(".json") {
            let experiment = try Experiment.load(path: input)
            let config = experiment.runs[0].config
            try OutputPath.check(out, flag: "--out", inputs: [input, experiment.resolve(config.data.probes.path), experiment.resolve(config.data.train.path)],
                                 ours: isProbeSetFile)
            let tok = try modelPath.map(ModelLoader.tokenizer(path:)) ?? ModelLoader.validate(config.model, experiment: experiment).tokenizer
            let train = try loadExamples(path: experiment.resolve(config.data.train.path))
            set = try ProbeEvaluator.buildProbeSet(config: config, experiment: experiment, tokenizer: tok, trainPrompts: train.map(\.prompt))
        } else {
            try OutputPath.check(out, flag: "--out", inputs: [input], ours: isProbeSetFile)
            let examples = try loadExamples(path: input)
            guard let first = examples.first else { throw DataError(file: input, line: nil, reason: "no probes") }
            var categories: [String: CategorySource] = [:]
            for field in first.fields.keys { categories[field] = .field(field) }
            if first.fields["chosen"] != nil, categories["random"] == nil {
                categories["random"] = .derive(.otherPrompt(field: "chosen"))
            }
            let tok = try modelPath.map(ModelLoader.tokenizer(path:)) ?? ByteTokenizer()
            set = try ProbeSet.build(examples: examples, categories: categories, seed: UInt64(seed), trainPrompts: [], tokenizer: tok)
        }
        try set.writeJSONL(path: out)
        return (set.probes.count, set.categories + set.dynamicCategories.map(\.category))
    }

    /// Whether `path` is a probe set `probes build` wrote (`ProbeSet.writeJSONL`: every line has `idx`, `split` and
    /// `origins`), which a later build may replace.
    static func isProbeSetFile(_ path: String) -> Bool {
        guard let text = try? TextFile.readText(path), !text.isEmpty else { return false }
        return TextFile.lines(text).allSatisfy { _, line in
            guard case .object(let o)? = try? JSONValue.parseLine(Substring(line)) else { return line.isEmpty }
            return o["idx"] != nil && o["split"] != nil && o["origins"] != nil
        }
    }

    /// Audits a probe file with a model's tokenizer (a GGUF's or a Hugging Face directory's; else the byte tokenizer).
    public static func audit(path: String, modelPath: String?) throws -> AuditReport {
        let tok = try modelPath.map(ModelLoader.tokenizer(path:)) ?? ByteTokenizer()
        return try Probes.audit(path: path, tokenizer: tok)
    }
}

extension ProbeTools {
    /// The tokens on both sides of the prompt/response boundary (three each), for `probes show`.
    struct Boundary {
        var promptTail: [(id: Int32, piece: String)]
        var responseHead: [(id: Int32, piece: String)]
        var promptTokens: Int
        var responseTokens: Int

        init(prompt: String, response: String, tokenizer: any TextTokenizer) {
            let p = tokenizer.encode(prompt), r = tokenizer.encode(response)
            promptTail = p.suffix(3).map { ($0, tokenizer.decode([$0])) }
            responseHead = r.prefix(3).map { ($0, tokenizer.decode([$0])) }
            promptTokens = p.count
            responseTokens = r.count
        }

        var json: JSONValue {
            func pieces(_ items: [(id: Int32, piece: String)]) -> JSONValue {
                .array(items.map { .array([.number(Double($0.id)), .string($0.piece)]) })
            }
            return .object(["prompt_tail": pieces(promptTail), "response_head": pieces(responseHead),
                            "prompt_tokens": .number(Double(promptTokens)), "response_tokens": .number(Double(responseTokens))])
        }

        var text: String {
            func pieces(_ items: [(id: Int32, piece: String)]) -> String { items.map { "\($0.id):\(jsonQuoted($0.piece))" }.joined(separator: " ") }
            return "tokens ... \(pieces(promptTail)) | \(pieces(responseHead)) ..."
        }
    }

    /// `alignscope probes show`: exactly what is scored for the lines of a data file under `template`: the
    /// form each line was read as, the prompt and every response as the template renders them (JSON-quoted,
    /// so every space and newline is visible), and with a model the tokens on both sides of the boundary.
    /// - Parameter line: the file line to show (1-based), or nil for every line.
    public static func show(path: String, line: Int?, template: ChatTemplate, modelPath: String?, json: Bool) throws -> String {
        let examples = try loadExamples(path: path)
        let chosen = try line.map { n in
            guard let ex = examples.first(where: { $0.line == n }) else {
                throw DataError(file: path, line: n, reason: "no data on this line (data lines: \(examples.map(\.line).prefix(20).map(String.init).joined(separator: ", "))\(examples.count > 20 ? ", ..." : ""))")
            }
            return [ex]
        } ?? examples
        let tokenizer: (any TextTokenizer)? = try modelPath.map(ModelLoader.tokenizer(path:))
        var out = ""
        for ex in chosen {
            let source = ex.promptSource
            let prompt = template.prompt(source)
            let fields = ex.fields.keys.sorted { a, b in
                let (ia, ib) = (StandardCategories.order.firstIndex(of: a) ?? .max, StandardCategories.order.firstIndex(of: b) ?? .max)
                return ia != ib ? ia < ib : a < b
            }
            // the scored texts (ChatEncoder tokenises exactly these, prompt and response apart)
            let responses = fields.map { template.response(ex.fields[$0]!, after: source, separated: ex.isSeparated($0)) }
            // every key of the line, responses first (in category order), then the rest by name, each with what was done
            let others = ex.notes.keys.filter { ex.fields[$0] == nil && $0 != "prompt" }.sorted()
            let boundaries = responses.map { response in
                tokenizer.flatMap { t in prompt.map { Boundary(prompt: $0, response: response, tokenizer: t) } }
            }
            if json {
                var o: [String: JSONValue] = ["line": .number(Double(ex.line)), "form": .string(ex.form.rawValue),
                                              "template": .string(template.rawValue), "prompt": prompt.map(JSONValue.string) ?? .null,
                                              "responses": .object(Dictionary(uniqueKeysWithValues: zip(fields, responses.map(JSONValue.string))))]
                if template.kind == .chatml { o["system"] = .string(template.system ?? ChatTemplate.defaultSystemMessage) }
                if tokenizer != nil {
                    o["tokens"] = .object(Dictionary(uniqueKeysWithValues: zip(fields, boundaries).compactMap { f, b in b.map { (f, $0.json) } }))
                }
                o["fields"] = .object(ex.notes.mapValues(JSONValue.string))
                out += JSONValue.object(o).canonical + "\n"
                continue
            }
            let system = template.kind == .chatml ? ", system message " + (template.system.map { $0.isEmpty ? "none" : jsonQuoted($0) } ?? "SmolLM2's default") : ""
            out += "line \(ex.line) (\(ex.form.rawValue)), template \(template.rawValue)\(system)\n"
            let width = max(6, (fields + others).map(\.count).max() ?? 0)
            func row(_ name: String, _ text: String) { out += "  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + text + "\n" }
            row("prompt", prompt.map(jsonQuoted) ?? "(template raw cannot score this prompt: the file gives it only as a list of messages)")
            if let note = ex.notes["prompt"] { row("", note) }
            for (field, (response, boundary)) in zip(fields, zip(responses, boundaries)) {
                row(field, jsonQuoted(response))
                if let note = ex.notes[field] { row("", note) }
                if let boundary { row("", boundary.text) }
            }
            for key in others { row(key, ex.notes[key]!) }
        }
        return out
    }
}
