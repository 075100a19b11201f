import Base
import Foundation
import Kernels
import Model
import RunStore

/// The evaluation workload of a run: a probe set whose prompts each have six responses, scored the
/// three ways AlignScope could, and greedy decoding of all prompts in lock step.
public struct ProbeSetBench: Codable, Sendable, Equatable {
    public var probes: Int
    public var promptTokens: Int
    /// Token counts of the six responses of every probe (the default probe set's category means).
    public var responseTokens: [Int]
    /// Every (prompt, response) pair from an empty `InferenceSession` cache: the baseline.
    public var separateSeconds: Double
    /// One `InferenceSession` per probe: its prompt once, the cache shared by its responses.
    public var sharedSeconds: Double
    /// `BatchSession.scoreResponses`: the cache shared within each probe and the rows of all probes
    /// run through the network together (what the evaluator does).
    public var batchedSeconds: Double
    /// separateSeconds / batchedSeconds (issue 8's target: at least 2).
    public var batchedSpeedup: Double
    /// separateSeconds / sharedSeconds.
    public var sharedSpeedup: Double
    /// Greedy decoding of `generatedTokens` tokens after each prompt, one prompt at a time.
    public var greedyOneAtATimeSeconds: Double
    /// The same decodes in lock step through `BatchSession.greedy`.
    public var greedyLockStepSeconds: Double
    public var generatedTokens: Int
    /// An evaluation as the evaluator records it, scoring and store included (a fresh store in a temporary
    /// folder): log-probabilities only (`scoreResponses`, `logprobs` rows), the three variants timed in turn.
    public var recordLogprobsSeconds: Double
    /// The same with the measures (`scoreDistributions`, `measureValues`, `measures` rows): what every
    /// evaluation now does.
    public var recordMeasuresSeconds: Double
    /// The same with `eval.tokens` (`token_logprobs` rows too).
    public var recordTokensSeconds: Double
}

enum ProbeSetWorkload {
    static let probes = 8
    static let promptTokens = 48
    /// chosen, rejected, paraphrased_rejected, variant, random, non_response in the default probe set.
    static let responseTokens = [64, 24, 24, 60, 64, 20]
    static let generatedTokens = 24
}

/// The probe-set workload's token ids.
func probeSetItems(vocab: Int) -> [(prompt: [Int32], responses: [[Int32]])] {
    let w = ProbeSetWorkload.self
    return (0..<w.probes).map { p in
        (prompt: Workload.tokens(w.promptTokens, salt: 100 + UInt64(p), vocab: vocab),
         responses: w.responseTokens.enumerated().map { Workload.tokens($0.element, salt: 1000 + UInt64(10 * p + $0.offset), vocab: vocab) })
    }
}

func measureProbeSet(_ model: LlamaModel, repeats: Int, progress: (String) -> Void) -> ProbeSetBench {
    let w = ProbeSetWorkload.self
    let items = probeSetItems(vocab: model.config.vocabSize)
    let longest = w.promptTokens + max(w.responseTokens.max()!, w.generatedTokens)
    let session = InferenceSession(model: model, capacity: longest)
    let batch = BatchSession(model: model, slots: 4096, context: longest + 1)
    var check: (Float, Float) = (0, 0)
    let separate = timeMedian(repeats) {
        for item in items {
            for r in item.responses {
                session.reset()
                _ = session.append(item.prompt)
                check.0 = session.score(r).last!
            }
        }
    }
    let shared = timeMedian(repeats) {
        for item in items {
            session.reset()
            _ = session.append(item.prompt)
            for r in item.responses { check.0 = session.score(r).last! }
        }
    }
    let batched = timeMedian(repeats) { check.1 = batch.scoreResponses(items).last!.last!.last! }
    // The three must compute the same thing: a cheap guard against a benchmark that measures a broken path.
    precondition(abs(check.0 - check.1) < 1e-2, "bench: batched scoring disagrees with InferenceSession (\(check.0) vs \(check.1))")
    progress("probe set scoring: separate \(String(format: "%.3f", separate)) s, shared \(String(format: "%.3f", shared)) s, batched \(String(format: "%.3f", batched)) s")

    let prompts = items.map(\.prompt)
    var one: [[Int32]] = [], lock: [[Int32]] = []
    let oneAtATime = timeMedian(repeats) {
        one = prompts.map { prompt in
            session.reset()
            return generate(session: session, prompt: prompt, options: SamplingOptions(maxTokens: w.generatedTokens)) { _ in true }
        }
    }
    let lockStep = timeMedian(repeats) { lock = batch.greedy(prompts: prompts, maxTokens: w.generatedTokens, stop: []) }
    precondition(one.count == lock.count, "bench: greedy decodes differ in number")
    progress("greedy, \(w.probes) prompts x \(w.generatedTokens) tokens: one at a time \(String(format: "%.3f", oneAtATime)) s, lock step \(String(format: "%.3f", lockStep)) s")
    let recorded = measureRecording(batch: batch, items: items, repeats: repeats)
    progress("probe set recorded: log-probabilities \(String(format: "%.3f", recorded.logprobs)) s, with measures \(String(format: "%.3f", recorded.measures)) s, with tokens \(String(format: "%.3f", recorded.tokens)) s")
    return ProbeSetBench(
        probes: w.probes, promptTokens: w.promptTokens, responseTokens: w.responseTokens,
        separateSeconds: separate, sharedSeconds: shared, batchedSeconds: batched,
        batchedSpeedup: separate / batched, sharedSpeedup: separate / shared,
        greedyOneAtATimeSeconds: oneAtATime, greedyLockStepSeconds: lockStep, generatedTokens: w.generatedTokens,
        recordLogprobsSeconds: recorded.logprobs, recordMeasuresSeconds: recorded.measures, recordTokensSeconds: recorded.tokens)
}

/// Scores the items and writes one evaluation step into a fresh store three ways (log-probabilities only;
/// with measures; with measures and tokens), taking turns so that drift in the machine's speed hits all
/// three alike; the median of `repeats` rounds each.
func measureRecording(batch: BatchSession, items: [(prompt: [Int32], responses: [[Int32]])], repeats: Int)
    -> (logprobs: Double, measures: Double, tokens: Double) {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("alignscope-bench-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: folder) }
    do {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let store = try RunStore(path: folder + "/bench.sqlite")
        let experiment = try store.recordExperiment(name: "bench", spec: "{}", specSHA256: "bench")
        let run = try store.recordRun(experimentID: experiment, name: "bench", config: "{}", configSHA256: "bench", seed: 0, params: [:])
        let ids = try store.recordProbeSet(name: "bench", probes: items.indices.map { p in
            ProbeEntry(idx: p, prompt: "prompt \(p)", split: "heldout",
                       responses: items[p].responses.indices.map { ProbeResponse(category: "c\($0)", text: "response \($0)", origin: "data") })
        })
        let responseIDs = items.indices.map { p in items[p].responses.indices.map { ids[ResponseKey(probeIdx: p, category: "c\($0)", text: "response \($0)")]! } }
        var step = 0
        func record(_ kind: Int) throws {
            var rows: [LogprobRow] = []
            if kind == 0 {
                let scored = batch.scoreResponses(items)
                for (p, responses) in scored.enumerated() {
                    for (r, lps) in responses.enumerated() {
                        rows.append(LogprobRow(responseID: responseIDs[p][r], logprob: lps.reduce(0.0) { $0 + Double($1) }, nTokens: lps.count))
                    }
                }
            } else {
                let scored = batch.scoreDistributions(items)
                for (p, responses) in scored.enumerated() {
                    for (r, positions) in responses.enumerated() {
                        var measures: [String: Double] = [:]
                        for (measure, value) in measureValues(positions) { measures[measure.rawValue] = value }
                        let tokens = kind == 2
                            ? zip(items[p].responses[r], positions).map { TokenRow(token: $0, logprob: Double($1.logprob), argmax: $1.argmax) } : []
                        rows.append(LogprobRow(responseID: responseIDs[p][r], logprob: positions.reduce(0.0) { $0 + Double($1.logprob) },
                                               nTokens: positions.count, measures: measures, tokens: tokens))
                    }
                }
            }
            step += 1
            try store.writeEvaluation(runID: run, step: step, rows: rows)
        }
        var times: [[Double]] = [[], [], []]
        for round in 0...repeats {
            for kind in 0..<3 {
                let t0 = now()
                try record(kind)
                if round > 0 { times[kind].append(now() - t0) }  // round 0 warms up
            }
        }
        return (median(times[0]), median(times[1]), median(times[2]))
    } catch {
        preconditionFailure("bench: recording an evaluation in \(folder) failed: \(error)")
    }
}
