import Base
import Foundation
import Kernels
import Model
import Training

/// What the measures of issue 38 cost on the bench's model: a training step with `eval.attribution` against the same
/// step without it (per training example and per followed response), and an evaluation with `eval.kl` against one
/// without (`BatchSession.scoreDistributions` of the probe-set workload with and without a held comparison).
public struct AttributionBench: Codable, Sendable, Equatable {
    /// The step: `examples` SFT sequences of `exampleTokens` tokens (prompt and response halves); the followed
    /// responses: the first two probes of the probe-set workload (`ProbeSetWorkload`), `responses` of them. Medians of up
    /// to 2 attributed steps after one to warm up.
    public var examples: Int
    public var exampleTokens: Int
    public var responses: Int
    public var stepSeconds: Double
    /// The attributed step: the step, then `Attribution.attribute` (exact, no sketch).
    public var attributedStepSeconds: Double
    /// Its parts: the forwards over the responses at theta_{t+1}, each example's gradient, each response's gradient and
    /// its share of the passes over the parameters (the responses go in batches of up to `Attribution.gradientSlots`).
    public var scoringSeconds: Double
    public var perExampleSeconds: Double
    public var perResponseSeconds: Double
    /// Of it, the pass over the parameters (the rest is the response's forward and backward).
    public var perResponsePassSeconds: Double
    /// The same with `project: 8192` (a CountSketch).
    public var sketchedPerResponseSeconds: Double
    /// The probe-set workload scored with its distributions (what every evaluation does), and with a held set compared
    /// at every position plus the hidden states CHES reads (what `eval.kl` adds).
    public var distributionsSeconds: Double
    public var comparedSeconds: Double
}

func measureAttribution(_ model: LlamaModel, repeats: Int, progress: (String) -> Void) throws -> AttributionBench {
    let w = ProbeSetWorkload.self
    let vocab = model.config.vocabSize
    let examples = 4, half = 64
    let pairs = (0..<examples).map {
        EncodedPair(prompt: Workload.tokens(half, salt: 500 + UInt64($0), vocab: vocab), response: Workload.tokens(half, salt: 600 + UInt64($0), vocab: vocab), promptCut: 0)
    }
    let train = try JSONDecoder().decode(TrainSettings.self, from: Data(#"{"steps": 1000, "batch_size": 4, "lr": 1e-30, "warmup": 0, "weight_decay": 0}"#.utf8))
    let trainer = Trainer(model: model, train: train, objective: .sft(lossOn: .response), seed: 1, data: .sequences(pairs))
    let items = probeSetItems(vocab: vocab)
    // two probes' six responses each: the costs are per response and per example
    let responses = items.prefix(2).flatMap { item in item.responses.map { (context: item.prompt, continuation: $0) } }
    var step = 0
    let plain = timeMedian(repeats) {
        step += 1
        _ = trainer.step(step)
    }
    func attributed(_ sketch: CountSketch?) -> (seconds: Double, timings: (scoring: Double, examples: Double, responses: Double), pass: Double) {
        var parts: [(Double, (scoring: Double, examples: Double, responses: Double), Double)] = []
        let attribution = Attribution(model: model, sketch: sketch)  // kept across steps, as a run keeps it
        for round in 0...min(2, max(1, repeats)) {
            let t0 = now()
            step += 1
            attribution.begin(optimizer: trainer.optimizer)
            trainer.recordsExampleTerms = true
            let result = trainer.step(step)
            trainer.recordsExampleTerms = false
            _ = attribution.attribute(optimizer: trainer.optimizer, lr: result.lr, clipScale: 1, terms: trainer.lastExampleTerms, responses: responses)
            if round > 0 { parts.append((now() - t0, attribution.timings, attribution.passSeconds)) }  // round 0 warms up
        }
        let best = parts.sorted { $0.0 < $1.0 }[parts.count / 2]
        return best
    }
    let exact = attributed(nil)
    let sketched = attributed(CountSketch(dimension: 8192, seed: 1))
    progress("attribution: step \(String(format: "%.3f", plain)) s; attributed \(String(format: "%.3f", exact.seconds)) s "
             + "(\(String(format: "%.3f", exact.timings.examples / Double(examples))) s per example, "
             + "\(String(format: "%.3f", exact.timings.responses / Double(responses.count))) s per response, of which "
             + "\(String(format: "%.3f", exact.pass / Double(responses.count))) s the pass over the parameters; sketched "
             + "\(String(format: "%.3f", sketched.timings.responses / Double(responses.count))) s per response)")
    // eval.kl: the same scoring pass with a held set compared at every position
    let longest = w.promptTokens + w.responseTokens.max()!
    let batch = BatchSession(model: model, slots: 4096, context: longest + 1)
    let (held, rows) = batch.hold(items)
    let firstRows: [[Int?]] = rows.map { $0.map { Optional($0) } }
    var distributions: [Double] = [], compared: [Double] = []
    for round in 0...repeats {
        let t0 = now()
        _ = batch.scoreDistributions(items)
        let t1 = now()
        _ = batch.scoreDistributions(items, comparing: [held], firstRows: firstRows, hiddenStates: true)
        if round > 0 {
            distributions.append(t1 - t0)
            compared.append(now() - t1)
        }
    }
    progress("eval.kl: probe set distributions \(String(format: "%.3f", median(distributions))) s, compared with a held set "
             + "\(String(format: "%.3f", median(compared))) s")
    return AttributionBench(
        examples: examples, exampleTokens: 2 * half, responses: responses.count, stepSeconds: plain, attributedStepSeconds: exact.seconds,
        scoringSeconds: exact.timings.scoring, perExampleSeconds: exact.timings.examples / Double(examples),
        perResponseSeconds: exact.timings.responses / Double(responses.count), perResponsePassSeconds: exact.pass / Double(responses.count),
        sketchedPerResponseSeconds: sketched.timings.responses / Double(responses.count),
        distributionsSeconds: median(distributions), comparedSeconds: median(compared))
}
