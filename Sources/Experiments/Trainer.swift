import Model
import Training

/// One tokenized (prompt, response) pair; the prompt was cut from the left to fit `max_length`.
struct EncodedPair: Sendable {
    var prompt: [Int32]
    var response: [Int32]
    /// Prompt tokens removed from the left to fit.
    var promptCut: Int
}

/// Tokenized training data and the optimizer state of one run. The loop itself lives in
/// `RunExecutor`: step, evaluate, record and checkpoint are separate functions.
final class Trainer {
    let model: LlamaModel
    let config: RunConfig
    let examples: [EncodedPair]
    let optimizer: AdamW
    private var order: DataOrder
    let objective: Objective
    private var dLogprobs: [Float]
    private var weights: [Float]

    init(model: LlamaModel, config: RunConfig, examples: [EncodedPair]) {
        self.model = model
        self.config = config
        self.examples = examples
        self.order = DataOrder(count: examples.count, seed: config.seed)
        self.optimizer = AdamW(
            parameterCount: model.parameterCount,
            config: AdamWConfig(lr: config.train.lr, beta1: config.train.beta1, beta2: config.train.beta2,
                                eps: 1e-8, weightDecay: config.train.weightDecay))
        self.objective = .sft(lossOn: LossOn(rawValue: config.objective.lossOn)!)
        let capacity = config.train.batchSize * config.train.maxLength
        self.dLogprobs = [Float](repeating: 0, count: capacity)
        self.weights = [Float](repeating: 0, count: capacity)
    }

    struct StepResult {
        var loss: Double
        var lr: Double
        var gradNorm: Double
        var tokens: Int
        var targetTokens: Int
    }

    /// The packed batch of micro-batch `micro` of optimizer step `step` (1-based).
    func batch(step: Int, micro: Int) -> (TokenBatch, targetCount: Int) {
        let b = config.train.batchSize
        var tokens: [Int32] = []
        var targets: [Int32] = []
        var starts: [Int] = []
        let first = ((step - 1) * config.train.gradAccum + micro) * b
        for k in 0..<b {
            let ex = examples[order.index(at: first + k)]
            starts.append(tokens.count)
            let seq = ex.prompt + ex.response
            tokens += seq
            let firstTarget = config.objective.lossOn == "all" ? 1 : ex.prompt.count
            for t in 0..<seq.count {
                let next = t + 1
                targets.append(next < seq.count && next >= max(1, firstTarget) ? seq[next] : -1)
            }
        }
        let n = targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        return (TokenBatch(tokens: tokens, targets: targets, sequenceStarts: starts), n)
    }

    /// One optimizer step (forward, backward over `grad_accum` micro-batches, clip, AdamW).
    /// The loss is the mean negative log-likelihood over the target tokens of the step.
    func step(_ step: Int) -> StepResult {
        model.zeroGradients()
        var micro: [(TokenBatch, Int)] = []
        for m in 0..<config.train.gradAccum { micro.append(batch(step: step, micro: m)) }
        let totalTargets = max(1, micro.reduce(0) { $0 + $1.1 })
        var lossSum = 0.0
        var tokens = 0
        for (batch, targetCount) in micro {
            let n = batch.tokens.count
            tokens += n
            let lp = model.forward(batch, training: true)
            for t in 0..<n { weights[t] = batch.targets[t] >= 0 ? 1 : 0 }
            let spans = batch.sequenceStarts.indices.map { SequenceSpan(start: batch.sequenceStarts[$0], count: batch.sequenceLength($0)) }
            let result = weights.withUnsafeBufferPointer { w in
                dLogprobs.withUnsafeMutableBufferPointer { d in
                    objective.evaluate(logprobs: lp, weights: UnsafeBufferPointer(rebasing: w[0..<n]), spans: spans,
                                       dLogprobs: UnsafeMutableBufferPointer(rebasing: d[0..<n]))
                }
            }
            // The objective averages over this micro-batch's targets; weight it by its share of the step's.
            let share = Float(targetCount) / Float(totalTargets)
            for t in 0..<n { dLogprobs[t] *= share }
            lossSum += result.loss * Double(share)
            dLogprobs.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
        }
        let norm = config.train.gradClip > 0
            ? clipGradients(model.gradients, maxNorm: Float(config.train.gradClip))
            : clipGradients(model.gradients, maxNorm: .infinity)
        let lr = learningRate(step: step - 1, totalSteps: config.train.steps, warmup: config.train.warmup,
                              peak: config.train.lr, schedule: LRSchedule(rawValue: config.train.schedule)!,
                              minRatio: config.train.minLRRatio)
        optimizer.step(params: model.parameters, grads: model.gradients, lr: lr)
        return StepResult(loss: lossSum, lr: lr, gradNorm: Double(norm), tokens: tokens, targetTokens: totalTargets)
    }
}
