import Foundation
import GGUF
import Probes
import Tokenizer

/// `alignscope probes build|audit`: materialise a probe set, or audit a probe file.
public enum ProbeTools {
    /// The tokenizer of a spec's model (only the GGUF metadata is read) or the byte tokenizer of a preset.
    static func tokenizer(for source: RunConfig.ModelSource, experiment: Experiment) throws -> any TextTokenizer {
        switch source {
        case .gguf(let path): return try GGUFFile(path: experiment.resolve(path)).tokenizer()
        case .preset: return ByteTokenizer()
        }
    }

    /// Builds the probe set of a spec (its first run's config) or of a plain probe file (its own
    /// fields, plus `random` derived from `chosen` with `seed`), and writes it as JSONL.
    /// - Returns: the number of probes and the categories written.
    public static func build(input: String, out: String, modelPath: String?, seed: Int) throws -> (probes: Int, categories: [String]) {
        let set: ProbeSet
        if input.hasSuffix(".json5") || input.hasSuffix(".json") {
            let experiment = try Experiment.load(path: input)
            let config = experiment.runs[0].config
            let tok = try modelPath.map { try GGUFFile(path: $0).tokenizer() as any TextTokenizer } ?? tokenizer(for: config.model, experiment: experiment)
            let train = try loadExamples(path: experiment.resolve(config.data.train.path))
            set = try ProbeEvaluator.buildProbeSet(config: config, experiment: experiment, tokenizer: tok, trainPrompts: train.map(\.prompt))
        } else {
            let examples = try loadExamples(path: input)
            guard let first = examples.first else { throw RunError.data(file: input, line: nil, reason: "no probes") }
            var categories: [String: CategorySource] = [:]
            for field in first.fields.keys { categories[field] = .field(field) }
            if first.fields["chosen"] != nil, categories["random"] == nil {
                categories["random"] = .derive(.otherPrompt(field: "chosen"))
            }
            let tok: any TextTokenizer = try modelPath.map { try GGUFFile(path: $0).tokenizer() } ?? ByteTokenizer()
            set = try ProbeSet.build(examples: examples, categories: categories, seed: UInt64(seed), trainPrompts: [], tokenizer: tok)
        }
        try set.writeJSONL(path: out)
        return (set.probes.count, set.categories + set.dynamicCategories.map(\.category))
    }

    /// Audits a probe file with a GGUF's tokenizer (or the byte tokenizer).
    public static func audit(path: String, modelPath: String?) throws -> AuditReport {
        let tok: any TextTokenizer = try modelPath.map { try GGUFFile(path: $0).tokenizer() } ?? ByteTokenizer()
        return try Probes.audit(path: path, tokenizer: tok)
    }
}
