import Base
import Foundation
import Model
import Probes
import Tokenizer
import Training

extension RunExecution {
    /// SPIN's pairs for this iteration: the data response as chosen, and as rejected the response the
    /// starting weights (the previous iteration's final ones) generate for the prompt (greedy at temperature
    /// 0, else sampled with the run's seed; all prompts in lock step). The generated texts are written once to
    /// `generated.jsonl` in the run folder with their provenance (`origins`), and read back from there when the
    /// run resumes, so a resumed iteration trains on the same pairs.
    func spinPairs(_ examples: [PreferenceExample], _ sequences: [EncodedPair], loaded: LoadedModel,
                   template: ChatTemplate) throws -> [PreferencePair] {
        guard case let .spin(_, _, temperature, topP, maxTokens) = config.objective else { preconditionFailure("spinPairs: not a SPIN run") }
        let file = executor.checkpointURL(runName: run.name).deletingLastPathComponent().appendingPathComponent("generated.jsonl")
        let origin = "spin:\(run.name);generator=\(config.initFrom.map { "run:\($0.run)" } ?? "\(config.model)");temperature=\(temperature),top_p=\(topP),max_tokens=\(maxTokens),seed=\(config.seed)"
        var texts: [String]
        if let saved = try? loadExamples(path: file.path), saved.count == examples.count, saved.allSatisfy({ $0.rejected != nil }) {
            texts = saved.map { $0.rejected! }
        } else {
            executor.report(.loading(run: run.name, what: "generating \(examples.count) responses with the starting weights"))
            let session = BatchSession(model: loaded.model, slots: max(4096, 8 * (config.train.maxLength + maxTokens)),
                                       context: config.train.maxLength + maxTokens)
            let prompts = sequences.map(\.prompt)
            var generated: [[Int32]] = []
            for first in stride(from: 0, to: prompts.count, by: 8) {
                let chunk = Array(prompts[first..<min(prompts.count, first + 8)])
                let options = SamplingOptions(maxTokens: maxTokens, temperature: Float(temperature), topP: Float(topP),
                                              seed: UInt64(config.seed), stop: loaded.stopTokens)
                generated += session.sample(prompts: chunk, count: 1, options: options, ids: Array(first..<first + chunk.count)).map { $0[0] }
            }
            texts = generated.map { loaded.tokenizer.decode($0) }
            var out = ""
            for (ex, text) in zip(examples, texts) {
                let prompt: JSONValue = ex.promptText.map { .string($0) }
                    ?? .array(ex.prompt.map { .object(["role": .string($0.role), "content": .string($0.content)]) })
                out += JSONValue.object([
                    "prompt": prompt, "chosen": .string(ex.separator + ex.chosen!), "rejected": .string(ex.separator + text),
                    "origins": .object(["rejected": .string(origin)]),
                ]).canonical + "\n"
            }
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try AtomicFile.write(out, to: file.path)
        }
        return try zip(examples, zip(sequences, texts)).map { ex, pair in
            let rejected = try PairEncoder.encode(prompt: ex.promptSource, response: pair.1, tokenizer: loaded.tokenizer, template: template,
                                                  maxLength: config.train.maxLength, file: file.path, line: ex.line)
            let prompt = pair.0.prompt.count <= rejected.prompt.count ? pair.0.prompt : rejected.prompt
            return PreferencePair(prompt: prompt, chosen: pair.0.response, rejected: rejected.response)
        }
    }
}
