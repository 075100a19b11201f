import Base
import Foundation
import Model
import Probes
import Tokenizer

/// Synthetic preference pairs from a policy's own samples (`alignscope label`): for each prompt of a data
/// file, `samples` responses sampled from the policy (temperature, top-p, max tokens, seeded per prompt and
/// sample, all samples of several prompts in lock step), each scored by a reward model or an AI judge; the
/// best becomes `chosen`, the worst `rejected`. Every sample is kept with its score, and the provenance
/// (policy, scorer, sampling settings, seed) is the line's `origins`, so the file reads back as training data.
/// Prompts whose samples all score the same are reported and skipped.
///
/// Resumable: lines are appended and flushed to disk one prompt at a time, each carrying its input line
/// (`label_line`); a run over an existing output skips the prompts it holds (a partial last line, left by a
/// crash, is cut off first), and samples are seeded by input line, so what is added is what an
/// uninterrupted run would have written.
public struct Labeller {
    public struct Settings: Sendable {
        public var samples: Int
        public var temperature: Float
        public var topP: Float
        public var maxTokens: Int
        public var seed: UInt64
        public var template: ChatTemplate
        /// Prompts sampled together in lock step.
        public var promptsPerPass = 8

        public init(samples: Int, temperature: Float, topP: Float, maxTokens: Int, seed: UInt64, template: ChatTemplate) {
            self.samples = samples
            self.temperature = temperature
            self.topP = topP
            self.maxTokens = maxTokens
            self.seed = seed
            self.template = template
        }

        var origin: String {
            "temperature=\(temperature),top_p=\(topP),max_tokens=\(maxTokens),samples=\(samples),seed=\(seed)"
        }
    }

    /// What scores a sample.
    public enum Scorer {
        /// A reward model (a model with `reward_head.weight`): r(x, y) at the response's end of turn.
        case rewardModel(model: LlamaModel, tokenizer: any TextTokenizer, name: String)
        /// An AI judge asked which of two responses is better (`Judge`); a sample's score is its mean
        /// preference margin over the other samples.
        case judge(Judge, name: String)

        var name: String {
            switch self {
            case .rewardModel(_, _, let name), .judge(_, let name): return name
            }
        }
    }

    public struct Summary: Equatable, Sendable {
        /// Prompts written in this call.
        public var written = 0
        /// Prompts skipped because every sample scored the same.
        public var allEqual = 0
        /// Prompts already in the output (or skipped before) when the call began.
        public var alreadyDone = 0
        /// Input lines skipped as ties, by line number.
        public var tiedLines: [Int] = []
    }

    let policy: LlamaModel
    let policyTokenizer: any TextTokenizer
    let policyName: String
    let stop: Set<Int32>
    let scorer: Scorer
    let settings: Settings

    public init(policy: LlamaModel, tokenizer: any TextTokenizer, policyName: String, scorer: Scorer, settings: Settings) {
        self.policy = policy
        policyTokenizer = tokenizer
        self.policyName = policyName
        stop = ChatEncoder.stopTokens(tokenizer)
        self.scorer = scorer
        self.settings = settings
    }

    /// What an output was labelled from: `OUT.inputs.json`, written before the output's first line.
    public static func inputsPath(_ out: String) -> String { out + ".inputs.json" }

    /// The inputs of a call: the data file's path and sha256 (and how many of its prompts), the policy, the scorer
    /// and every sampling setting. A call resumes an output only with the very same inputs.
    public func inputs(data: String, prompts: Int) throws -> [String: JSONValue] {
        let bytes: Data
        do { bytes = try TextFile.read(data) } catch { throw RunError.io(path: data, reason: "\(error)") }
        var out: [String: JSONValue] = [
            "data": .string(data), "data_sha256": .string(SHA256.hex(Array(bytes))), "prompts": .number(Double(prompts)),
            "policy": .string(policyName), "scorer": .string(scorer.name), "samples": .number(Double(settings.samples)),
            "temperature": .number(Double(settings.temperature)), "top_p": .number(Double(settings.topP)),
            "max_tokens": .number(Double(settings.maxTokens)), "seed": .number(Double(settings.seed)),
            "template": .string(settings.template.rawValue)]
        // a system message of the spec's own (the default leaves the inputs as they were, so earlier outputs resume)
        if let system = settings.template.system { out["system"] = .string(system) }
        return out
    }

    /// Before anything is written: an existing output (or its inputs file) is resumed only when its inputs file
    /// records these very inputs; a file without one was not written by `label` and is refused, untouched; other
    /// inputs are refused naming each that differs, with `wayOn`. A new output gets its inputs file first.
    static func checkResumable(out: String, inputs: [String: JSONValue], wayOn: String) throws {
        let sidecar = inputsPath(out)
        guard OutputPath.exists(out) || OutputPath.exists(sidecar) else {
            try AtomicFile.write(JSONValue.object(inputs).canonical + "\n", to: sidecar)
            return
        }
        guard let data = FileManager.default.contents(atPath: sidecar),
              case .object(let recorded)? = try? JSONValue.parse(Substring(String(decoding: data, as: UTF8.self))) else {
            throw RunError.io(path: out, reason: "exists and was not written by alignscope label (it has no \((sidecar as NSString).lastPathComponent)); nothing was changed; \(wayOn)")
        }
        let differ = Set(recorded.keys).union(inputs.keys).sorted().filter { recorded[$0] != inputs[$0] }
        guard differ.isEmpty else {
            let what = differ.map { "\($0) \(recorded[$0]?.canonical ?? "none") then, \(inputs[$0]?.canonical ?? "none") now" }.joined(separator: "; ")
            throw RunError.io(path: out, reason: "was labelled from other inputs (\(what)); resuming would mix both in one file; \(wayOn)")
        }
    }

    /// Labels every example of `examples` not yet in `out`, appending to it. `progress` is told `.labelled` after each
    /// pass and answers `.stop` to stop there (what was written stays, and a later call resumes).
    /// `inputs` (`inputs(data:prompts:)`) must be those the output was begun with (`checkResumable`).
    public func label(_ examples: [PreferenceExample], out: String, inputs: [String: JSONValue], wayOn: String, name: String = "label",
                      progress: (ProgressEvent) -> ProgressDisposition = { _ in .more }) throws -> Summary {
        let clock = Date()
        try Self.checkResumable(out: out, inputs: inputs, wayOn: wayOn)
        var summary = Summary()
        let state = try Self.state(out)
        let finished = state.written.union(state.skipped)
        summary.alreadyDone = examples.filter { finished.contains($0.line) }.count
        let todo = examples.filter { !finished.contains($0.line) }
        let output = try AppendFile(path: out, keepBytes: state.validBytes)
        let skippedFile = try AppendFile(path: Self.skippedPath(out), keepBytes: nil)
        let encoder = ChatEncoder(tokenizer: policyTokenizer, template: settings.template)
        let prompts = try todo.map { (ex) throws -> [Int32] in
            do {
                return try encoder.prompt(ex.promptSource)
            } catch {
                throw DataError(file: ex.file, line: ex.line, reason: "\(error)")
            }
        }
        let context = (prompts.map(\.count).max() ?? 0) + settings.maxTokens
        if context > policy.config.contextLength, let k = prompts.indices.max(by: { prompts[$0].count < prompts[$1].count }) {
            throw DataError(file: todo[k].file, line: todo[k].line, reason: "the prompt (\(prompts[k].count) tokens) and max_tokens \(settings.maxTokens) exceed the policy's context of \(policy.config.contextLength) tokens")
        }
        let session = BatchSession(model: policy, slots: max(4096, settings.promptsPerPass * (context + settings.samples * settings.maxTokens)),
                                   context: context)
        let options = SamplingOptions(maxTokens: settings.maxTokens, temperature: settings.temperature, topP: settings.topP,
                                      seed: settings.seed, stop: stop)
        var first = 0
        while first < todo.count {
            let end = min(todo.count, first + settings.promptsPerPass)
            // seeded by input line, so a resumed run samples what an uninterrupted one would
            let sampled = session.sample(prompts: Array(prompts[first..<end]), count: settings.samples, options: options,
                                         ids: todo[first..<end].map(\.line))
            let texts = sampled.map { $0.map { policyTokenizer.decode($0) } }
            for (offset, k) in (first..<end).enumerated() {
                let ex = todo[k]
                let scores = score(ex, texts[offset])
                guard let best = scores.indices.max(by: { scores[$0] < scores[$1] }),
                      let worst = scores.indices.min(by: { scores[$0] < scores[$1] }), scores[best] > scores[worst] else {
                    summary.allEqual += 1
                    summary.tiedLines.append(ex.line)
                    try skippedFile.append("\(ex.line)\n")
                    continue
                }
                try output.append(line(ex, texts[offset], scores, best: best, worst: worst))
                summary.written += 1
            }
            first = end
            let event = ProgressEvent.labelled(run: name, done: summary.alreadyDone + first, total: examples.count, elapsed: Date().timeIntervalSince(clock))
            if progress(event) == .stop { break }
        }
        return summary
    }

    /// Scores of one prompt's samples.
    func score(_ ex: PreferenceExample, _ texts: [String]) -> [Double] {
        switch scorer {
        case let .rewardModel(model, tokenizer, _):
            return RewardModelScorer(model: model, tokenizer: tokenizer, template: settings.template).scores([(ex.promptSource, texts)])[0]
        case let .judge(judge, _):
            return judge.scores(prompt: ex, responses: texts)
        }
    }

    /// The output line: prompt as the input gave it, chosen/rejected, every sample with its score, provenance.
    func line(_ ex: PreferenceExample, _ texts: [String], _ scores: [Double], best: Int, worst: Int) -> String {
        let origin = "label:policy=\(policyName);scorer=\(scorer.name);\(settings.origin)"
        let fields: [String: JSONValue] = [
            "prompt": ex.promptJSON,
            "chosen": .string(ex.separator + texts[best]), "rejected": .string(ex.separator + texts[worst]),
            "samples": .array(zip(texts, scores).map { .object(["text": .string($0), "score": .number($1)]) }),
            "origins": .object(["chosen": .string(origin + ";sample=\(best)"), "rejected": .string(origin + ";sample=\(worst)")]),
            "label_line": .number(Double(ex.line)),
        ]
        return JSONValue.object(fields).canonical + "\n"
    }

    /// `OUT.meta.json`: the call's inputs (`inputs(data:prompts:)`), the model paths as given, what the call wrote
    /// (`written_this_call`, `already_done`, `all_equal_lines`) and the judge's agreement line, if any.
    public static func writeSummary(out: String, inputs: [String: JSONValue], summary: Summary, paths: [String: String],
                                    judgeAgreement: String?) throws {
        var meta = inputs
        for (k, v) in paths { meta[k] = .string(v) }
        meta["written_this_call"] = .number(Double(summary.written))
        meta["already_done"] = .number(Double(summary.alreadyDone))
        meta["all_equal_lines"] = .array(summary.tiedLines.map { .number(Double($0)) })
        if let judgeAgreement { meta["judge_agreement"] = .string(judgeAgreement) }
        try AtomicFile.write(JSONValue.object(meta).canonical + "\n", to: out + ".meta.json")
    }

    /// Where the input lines skipped as ties are listed, one per line, beside the output `out`.
    static func skippedPath(_ out: String) -> String { out + ".skipped" }

    /// What an output holds so far: the input lines written to it, those skipped as ties, and the bytes of
    /// its complete lines (a partial last line, left by a crash, is cut when appending resumes).
    static func state(_ out: String) throws -> (written: Set<Int>, skipped: Set<Int>, validBytes: Int?) {
        let skipped = Set(((try? String(contentsOfFile: skippedPath(out), encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int($0) })
        let (written, valid) = try writtenLines(out)
        return (written, skipped, valid)
    }

    /// Input lines an existing output holds, and the bytes of its complete lines.
    private static func writtenLines(_ out: String) throws -> (lines: Set<Int>, validBytes: Int?) {
        guard let data = FileManager.default.contents(atPath: out) else { return ([], nil) }
        let bytes = [UInt8](data)
        let valid = (bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
        var done = Set<Int>()
        for line in String(decoding: bytes[0..<valid], as: UTF8.self).split(separator: "\n") {
            guard let value = try? JSONValue.parseLine(line), case let .object(o) = value, case let .number(n)? = o["label_line"] else {
                throw DataError(file: out, line: done.count + 1, reason: "not a line written by alignscope label (no label_line); give a new --out")
            }
            done.insert(Int(n))
        }
        return (done, valid)
    }
}

/// A file appended to line by line, each line flushed to disk before the next (`fsync`).
final class AppendFile {
    let path: String
    private let handle: FileHandle

    /// Opens (creating) `path`; with `keepBytes`, the file is first cut to that length.
    init(path: String, keepBytes: Int?) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw RunError.io(path: path, reason: "cannot create the file") }
        }
        guard let h = FileHandle(forUpdatingAtPath: path) else { throw RunError.io(path: path, reason: "cannot open the file for writing") }
        handle = h
        do {
            if let keepBytes { try handle.truncate(atOffset: UInt64(keepBytes)) }
            try handle.seekToEnd()
        } catch {
            throw RunError.io(path: path, reason: "\(error)")
        }
    }

    deinit { try? handle.close() }

    func append(_ text: String) throws {
        do {
            try handle.write(contentsOf: Data(text.utf8))
            try handle.synchronize()
        } catch {
            throw RunError.io(path: path, reason: "\(error)")
        }
    }
}
