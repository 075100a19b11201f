import Base
import Benchmarks
import Experiments
import Probes
import Foundation
import GGUF
import HFModels
import Model
import Tokenizer

extension Commands {
    static let defaultModelPath = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    /// A verb's `--model` (`ModelLoader.load(path:capacity:)`, the loader specs use too).
    static func loadPretrained(_ model: String?, capacity: Int) throws -> LoadedModel {
        guard let path = model else { throw UsageError(message: "--model: missing (a GGUF file, e.g. \(defaultModelPath), or a Hugging Face model directory)") }
        guard FileManager.default.fileExists(atPath: path) else { throw UsageError(message: "\(path): no such model file") }
        return try ModelLoader.load(path: path, capacity: capacity)
    }


}

extension ScoreVerb {
    func run() throws -> Int32 {
        var pairs: [(prompt: String, response: String)] = []
        let jsonLines: Bool
        if let input {
            let text = try TextFile.readText(input)
            for (number, line) in TextFile.lines(text) where !line.allSatisfy(\.isWhitespace) {
                let value: JSONValue
                do {
                    value = try JSONValue.parseLine(line)
                } catch {
                    throw UsageError(message: "\(input):\(number): invalid JSON, expected a JSON object {\"prompt\", \"response\"} (\(error))")
                }
                guard case .object(let obj) = value, case .string(let p)? = obj["prompt"], case .string(let r)? = obj["response"] else {
                    throw UsageError(message: "\(input):\(number): expected a JSON object with string fields \"prompt\" and \"response\"")
                }
                pairs.append((p, r))
            }
            if pairs.isEmpty { throw UsageError(message: "\(input): no lines to score") }
            jsonLines = true
        } else {
            guard let prompt, let response else { throw UsageError(message: "score: give --prompt and --response, or --input FILE.jsonl") }
            pairs = [(prompt, response)]
            jsonLines = json
        }
        let loaded = try Commands.loadPretrained(model, capacity: 64)
        var encoded: [(prompt: [Int32], response: [Int32])] = []
        // without --template, the texts as given (the raw template of a one-turn prompt written as text)
        let encoder = ChatEncoder(tokenizer: loaded.tokenizer, template: template ?? .raw)
        for (p, r) in pairs {
            let source = PromptSource(messages: [ChatMessage(role: "user", content: p)], text: p)
            let pair = (try encoder.prompt(source), encoder.response(r, after: source))
            if pair.0.isEmpty { throw UsageError(message: "score: the prompt is empty; the first response token needs a context") }
            let context = loaded.model.config.contextLength
            if pair.0.count + pair.1.count > context {
                throw UsageError(message: "score: \(input.map { "line \(encoded.count + 1) of \($0)" } ?? "the pair") is \(pair.0.count) prompt and \(pair.1.count) response tokens, past the model's context of \(context) tokens")
            }
            encoded.append(pair)
        }
        // All pairs in one batched session; pairs that share a prompt share its cache.
        let scored = BatchSession.scorePairs(model: loaded.model, encoded)
        // NaN is not JSON and no score: refuse before printing anything (an infinite -logprob is a score).
        if let bad = scored.firstIndex(where: { $0.contains { $0.isNaN } }) {
            throw CommandFailure(description: "\(model ?? ""): the model gives a NaN log-probability for \(input.map { "line \(bad + 1) of \($0)" } ?? "this pair") (its weights hold NaN or infinite values)")
        }
        for (pair, lps) in zip(encoded, scored) {
            let total = lps.reduce(0.0) { $0 + Double($1) }
            let n = pair.response.count
            if jsonLines {
                var o: [String: JSONValue] = ["logprob": .number(total), "n_tokens": .number(Double(n)), "mean_logprob": .number(n > 0 ? total / Double(n) : 0)]
                if tokens {
                    o["token_ids"] = .array(pair.response.map { .number(Double($0)) })
                    o["token_logprobs"] = .array(lps.map { .number(Double($0)) })
                }
                print(JSONValue.object(o).canonical)
            } else {
                print(String(format: "logprob %.4f over %d tokens (mean %.4f)", total, n, n > 0 ? total / Double(n) : 0))
                if tokens {
                    for (id, lp) in zip(pair.response, lps) {
                        print(String(format: "  %6d %10.4f  %@", id, lp, loaded.tokenizer.decode([id]).debugDescription))
                    }
                }
            }
        }
        return 0
    }

}

extension GenerateVerb {
    func run() throws -> Int32 {
        guard let prompt = self.prompt else { throw UsageError(message: "--prompt: missing") }
        let loaded = try Commands.loadPretrained(model, capacity: 64)
        let maxTokens = sampling.maxTokens
        let ids = try ChatEncoder(tokenizer: loaded.tokenizer, template: template ?? .raw)
            .prompt(PromptSource(messages: [ChatMessage(role: "user", content: prompt)], text: prompt))
        guard !ids.isEmpty else { throw UsageError(message: "--prompt: empty") }
        let context = loaded.model.config.contextLength
        guard ids.count + maxTokens <= context else {
            throw UsageError(message: "--max-tokens: the prompt (\(ids.count) tokens) and \(maxTokens) new tokens exceed the model's context of \(context) tokens; expected --max-tokens <= \(max(0, context - ids.count))")
        }
        let session = InferenceSession(model: loaded.model, capacity: ids.count + maxTokens + 1)
        let stop = ChatEncoder.stopTokens(loaded.tokenizer)
        var produced: [Int32] = []
        var printed = ""
        _ = Model.generate(session: session, prompt: ids,
                           options: SamplingOptions(maxTokens: maxTokens, temperature: Float(sampling.temperature), topP: Float(sampling.topP),
                                                    seed: UInt64(sampling.seed), stop: stop)) { token in
            // Decode the whole continuation and print what is new, so multi-token characters come out whole.
            produced.append(token)
            let text = loaded.tokenizer.decode(produced)
            if text.hasPrefix(printed), !text.hasSuffix("\u{FFFD}") {
                FileHandle.standardOutput.write(Data(String(text.dropFirst(printed.count)).utf8))
                printed = text
            }
            return true
        }
        let final = loaded.tokenizer.decode(produced)
        if final.count > printed.count, final.hasPrefix(printed) { FileHandle.standardOutput.write(Data(String(final.dropFirst(printed.count)).utf8)) }
        print("")
        return 0
    }
}

extension ProbesVerb {
    func run() throws -> Int32 {
        let input = file
        guard FileManager.default.fileExists(atPath: input) else { throw UsageError(message: "\(input): no such file") }
        var model = self.model
        if model == nil, FileManager.default.fileExists(atPath: Commands.defaultModelPath) { model = Commands.defaultModelPath }
        switch action {
        case .build:
            guard let out = self.out else { throw UsageError(message: "probes build: --out FILE is required") }
            let specModel = input.hasSuffix(".json5") || input.hasSuffix(".json") ? self.model : model
            let (n, categories) = try ProbeTools.build(input: input, out: out, modelPath: specModel, seed: seed)
            print("wrote \(n) probes to \(out) (categories: \(categories.joined(separator: ", ")))")
            return 0
        case .show:
            print(try ProbeTools.show(path: input, line: line, template: template.with(system: system), modelPath: self.model, json: json), terminator: "")
            return 0
        case .audit:
            let report = try ProbeTools.audit(path: input, modelPath: model)
            print(report.rendered, terminator: report.rendered.hasSuffix("\n") ? "" : "\n")
            return report.flags.isEmpty ? 0 : 1
        }
    }
}

extension BenchVerb {
    func run() throws -> Int32 {
        var model = self.model
        if model == nil, FileManager.default.fileExists(atPath: Commands.defaultModelPath) { model = Commands.defaultModelPath }
        if let m = model, !FileManager.default.fileExists(atPath: m) { throw UsageError(message: "\(m): no such model file") }
        // a model with weights through the one loader; a directory with only a config.json at its shapes
        let benchModel: BenchModel
        if let m = model {
            let configOnly = ModelPathKind.of(m) == .huggingFaceDirectory
                && !((try? FileManager.default.contentsOfDirectory(atPath: m)) ?? []).contains { $0.hasSuffix(".safetensors") }
            benchModel = configOnly ? .configShapes(m) : .loaded(try ModelLoader.load(path: m, capacity: BenchModel.tokens, maxSequenceLength: BenchModel.sequenceLength,
                                                                                     checkpointActivations: checkpointActivations).model,
                                                                 name: (m as NSString).lastPathComponent)
        } else {
            benchModel = .tiny
        }
        let display = ProgressDisplay(quiet: json)
        if let counts = threadCounts {
            let scaling = try runThreadScaling(benchModel, counts: counts, repeats: repeats) { display.show($0) }
            display.finish()
            try output(scaling)
            return 0
        }
        let report = try runBenchmarks(benchModel, repeats: repeats, checkpointActivations: checkpointActivations) { display.show($0) }
        display.finish()
        try output(report)
        return 0
    }

    /// A bench's report on stdout: pretty JSON with --json, else its text.
    private func output<Report: Encodable & CustomStringConvertible>(_ report: Report) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.description)
        }
    }
}

extension LabelVerb {
    func run() throws -> Int32 {
        // validate() made sure of these; bound once, never force-unwrapped
        guard let data, let policy, let out else { throw UsageError(message: "label: --data, --policy and --out are required") }
        let chat = template
        var examples = try loadExamples(path: data)
        if limit > 0 { examples = Array(examples.prefix(limit)) }
        guard !examples.isEmpty else { throw UsageError(message: "--data: \(data) has no prompts") }
        let policyModel = try Commands.loadPretrained(policy, capacity: 64)
        let scorer: Labeller.Scorer
        var agreementLine: String?
        if let rewardModel {
            let rm = try Commands.loadPretrained(rewardModel, capacity: 64)
            guard rm.model.config.rewardHead else {
                throw UsageError(message: "--reward-model: \(rewardModel) has no reward head (export a run of objective kind \"reward\" with --format gguf)")
            }
            scorer = .rewardModel(model: rm.model, tokenizer: rm.tokenizer, name: (rewardModel as NSString).lastPathComponent)
        } else {
            let j = try Commands.loadPretrained(judge, capacity: 64)
            let question = try judgeTemplate.map { try TextFile.readText($0) } ?? Judge.defaultTemplate
            let judged = try Judge(model: j.model, tokenizer: j.tokenizer, template: question, chat: chat)
            scorer = .judge(judged, name: "judge:" + ((judge ?? "") as NSString).lastPathComponent)
            if let agreement {
                if let a = judged.agreement(try loadExamples(path: agreement)) {
                    agreementLine = String(format: "judge agreement with the chosen/rejected labels of %@: %.3f over %d pairs", agreement, a.agreement, a.pairs)
                    print(agreementLine ?? "")
                } else {
                    throw UsageError(message: "--agreement: \(agreement) has no line with both chosen and rejected")
                }
            }
        }
        let settings = Labeller.Settings(samples: samples, temperature: Float(sampling.temperature), topP: Float(sampling.topP),
                                         maxTokens: sampling.maxTokens, seed: UInt64(sampling.seed), template: chat)
        let labeller = Labeller(policy: policyModel.model, tokenizer: policyModel.tokenizer,
                                policyName: (policy as NSString).lastPathComponent, scorer: scorer, settings: settings)
        StopRequest.installHandlers()
        let inputs = try labeller.inputs(data: data, prompts: examples.count)
        let display = ProgressDisplay(quiet: false)
        let summary = try labeller.label(examples, out: out, inputs: inputs,
                                         wayOn: "give a new --out, or the inputs it was begun with to resume it") { event in
            display.show(event)
            return StopRequest.isSet ? .stop : .more
        }
        display.finish()
        try Labeller.writeSummary(out: out, inputs: inputs, summary: summary,
                                  paths: ["policy_path": policy, "scorer_path": rewardModel ?? judge ?? ""], judgeAgreement: agreementLine)
        print("label: wrote \(summary.written) pairs to \(out)" + (summary.alreadyDone > 0 ? " (\(summary.alreadyDone) prompts were already done)" : "")
              + (summary.allEqual > 0 ? "; skipped \(summary.allEqual) prompts whose samples all scored the same (lines \(summary.tiedLines.map(String.init).joined(separator: ", ")))" : ""))
        return 0
    }
}
