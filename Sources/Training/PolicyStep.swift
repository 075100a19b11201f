import Base
import Foundation
import Model

/// What an online policy optimiser needs besides its prompts (`Objective.ppo`): the reference model (the run's
/// starting weights, frozen), the tokens that end a response, each prompt's id (its data line: samples are seeded
/// by it) and the reward. The reward is given every step's prompts (indices into the run's prompts) and their
/// samples (tokens without the stop token) and returns one score per sample.
public struct PolicyRollout {
    public var reference: LlamaModel
    public var stop: Set<Int32>
    public var ids: [Int]
    public var reward: (_ prompts: [Int], _ responses: [[[Int32]]]) -> [[Double]]

    public init(reference: LlamaModel, stop: Set<Int32>, ids: [Int], reward: @escaping (_ prompts: [Int], _ responses: [[[Int32]]]) -> [[Double]]) {
        self.reference = reference
        self.stop = stop
        self.ids = ids
        self.reward = reward
    }
}

/// One sampled response of an online step, as the run store records it (`samples` table).
public struct PolicySample: Sendable, Equatable {
    /// Index of the prompt in the run's prompts, and of the sample among that prompt's samples.
    public var prompt: Int
    public var sample: Int
    /// The response's tokens, with the stop token when it ended with one.
    public var tokens: [Int32]
    public var ended: Bool
    /// The reward source's score (before the missing-EOS penalty and the KL penalty).
    public var score: Double
    /// Summed per-token KL estimate to the reference.
    public var kl: Double
    public var advantage: Double
}

extension Trainer {
    /// The seed of a step's samples: sample j of prompt p at step s draws from
    /// `BatchSession.sampleSeed(stepSeed(seed, s), prompt: ids[p], sample: j)`, a pure function of the run's seed,
    /// the step, the prompt's data line and j. The checkpoint's step is therefore the whole sampling state: a run
    /// resumed after a kill samples what the uninterrupted run sampled.
    public static func stepSeed(_ seed: Int, step: Int) -> UInt64 {
        var g = SplitMix64(seed: UInt64(seed), stream: UInt64(step))
        return g.next()
    }

    /// One online step (`Objective.ppo`): sample, score, advantages, then `epochs` x `miniBatches` optimizer updates
    /// of the clipped surrogate. Metrics (TRL's names): `reward` (mean score), `reward_std` (mean over prompts of the
    /// standard deviation of their samples' scores), `kl` (mean summed KL estimate), `objective/non_score_reward`
    /// (mean -klCoef * kl), `objective/rlhf_reward` (mean reward the advantages start from: score - missing-EOS
    /// penalty - klCoef * kl), `entropy` (mean next-token entropy at the sampled tokens), `clip_ratio` (share of
    /// update tokens whose gradient the clip zeroed), `completions/mean_length` (tokens, the stop token included),
    /// `completions/eos_rate`, `time/sampling`, `time/scoring`, `time/update`, `step_time` (seconds).
    func ppoStep(_ step: Int, _ settings: PolicyOptimization, prompts: [[Int32]]) -> StepResult {
        guard let rollout else { preconditionFailure("Trainer: a ppo objective needs its rollout (reference, stop tokens, reward)") }
        let t0 = Date()
        let n = settings.samplesPerPrompt
        let idx = indices(step: step, micro: 0)
        let chosen = idx.map { prompts[$0] }
        // sessions sized for any step's prompts (the same in a resumed run, so that passes are shaped alike)
        let longest = prompts.map(\.count).max() ?? 1
        let need = idx.count * (longest + n * settings.maxTokens)
        // sampling: every sample of the step's prompts in lock step, with the policy's own log-probabilities
        if policySession == nil {
            policySession = BatchSession(model: model, slots: max(4096, need), context: longest + settings.maxTokens)
        }
        policySession!.precision = model.precision
        let options = SamplingOptions(maxTokens: settings.maxTokens, temperature: Float(settings.temperature), topP: Float(settings.topP),
                                      seed: Self.stepSeed(seed, step: step), stop: rollout.stop)
        let sampled = policySession!.sampleTraced(prompts: chosen, count: n, options: options, ids: idx.map { rollout.ids[$0] })
        let t1 = Date()
        // scoring: the reference's log-probabilities of every sampled token, and the reward
        if referenceSession == nil {
            // the base without adapters: with LoRA and no objective.reference, the reference is the policy's own base weights
            referenceSession = BatchSession(model: rollout.reference, slots: max(4096, need), context: longest + settings.maxTokens, adapters: false)
        }
        referenceSession!.precision = model.precision
        let reference = referenceSession!.scoreResponses(zip(chosen, sampled).map { ($0, $1.map(\.tokens)) })
        let scores = rollout.reward(idx, sampled.map { $0.map { $0.ended ? Array($0.tokens.dropLast()) : $0.tokens } })
        var samples: [PolicySample] = []
        var rewardStd = 0.0, rlhfReward = 0.0
        for (k, responses) in sampled.enumerated() {
            precondition(scores[k].count == n, "Trainer.ppoStep: the reward gave \(scores[k].count) scores for \(n) samples")
            var total: [Double] = []
            for (j, r) in responses.enumerated() {
                var kl = 0.0
                for t in r.tokens.indices { kl += settings.klEstimator.value(logprob: Double(r.logprobs[t]), reference: Double(reference[k][j][t])) }
                samples.append(PolicySample(prompt: idx[k], sample: j, tokens: r.tokens, ended: r.ended, score: scores[k][j], kl: kl, advantage: 0))
                total.append(scores[k][j] - (r.ended ? 0 : settings.missingEOSPenalty) - settings.klCoef * kl)
            }
            let a = policyAdvantages(total, baseline: settings.advantages, scale: settings.scaleAdvantages)
            for j in 0..<n { samples[k * n + j].advantage = a[j] }
            rlhfReward += total.reduce(0, +)
            rewardStd += sampleStandardDeviation(scores[k]) / Double(sampled.count)
        }
        let t2 = Date()
        // updates: epochs x mini-batches over the samples, in an order drawn per (step, epoch)
        let flat = sampled.flatMap { $0 }
        var loss = 0.0, norms = 0.0, clipped = 0, updateTokens = 0, tokens = 0, updates = 0.0
        let lr = Self.rate(train, step: step)
        for epoch in 0..<settings.epochs {
            var order = Array(flat.indices)
            var g = SplitMix64(seed: Self.stepSeed(seed, step: step), stream: UInt64(epoch + 1))
            g.shuffle(&order)
            let size = (order.count + settings.miniBatches - 1) / settings.miniBatches
            for first in stride(from: 0, to: order.count, by: size) {
                let members = Array(order[first..<min(order.count, first + size)])
                // LoRA's dropout masks: a function of (step, epoch, mini-batch)
                model.lora?.dropoutKey = SplitMix64.mix(UInt64(step) << 32 ^ UInt64(epoch) << 20 ^ UInt64(first))
                model.zeroGradients()
                let result = Self.surrogate(model: model, members.map { (chosen[$0 / n], flat[$0].tokens, flat[$0].logprobs, samples[$0].advantage) },
                                            settings, dLogprobs: &dLogprobs)
                let norm = Self.update(model: model, optimizer: optimizer, train: train, step: step).gradNorm
                loss += result.loss
                norms += Double(norm)
                clipped += result.clipped
                updateTokens += result.responseTokens
                tokens += result.tokens
                updates += 1
            }
        }
        let t3 = Date()
        let sampledTokens = flat.reduce(0) { $0 + $1.tokens.count }
        let count = Double(samples.count)
        let meanKL = samples.reduce(0) { $0 + $1.kl } / count
        let metrics: [String: Double] = [
            "reward": samples.reduce(0) { $0 + $1.score } / count,
            "reward_std": rewardStd,
            "kl": meanKL,
            "objective/non_score_reward": -settings.klCoef * meanKL,
            "objective/rlhf_reward": rlhfReward / count,
            "entropy": flat.reduce(0) { $0 + $1.entropies.reduce(0) { $0 + Double($1) } } / Double(max(1, sampledTokens)),
            "clip_ratio": Double(clipped) / Double(max(1, updateTokens)),
            "completions/mean_length": Double(sampledTokens) / count,
            "completions/eos_rate": Double(samples.filter(\.ended).count) / count,
            "time/sampling": t1.timeIntervalSince(t0), "time/scoring": t2.timeIntervalSince(t1), "time/update": t3.timeIntervalSince(t2),
            "step_time": t3.timeIntervalSince(t0),
        ]
        return StepResult(loss: loss / max(1, updates), lr: lr, gradNorm: norms / max(1, updates), tokens: tokens, targetTokens: updateTokens,
                          metrics: metrics, samples: samples)
    }

    /// One mini-batch of the clipped surrogate through the model: the (prompt, response) sequences packed, the
    /// policy's log-probabilities of the response tokens (all trained, the stop token included), `clippedSurrogate`
    /// against the sampling pass's `old` values, and with `backward` its gradient added into `model.gradients`
    /// (`dLogprobs`: scratch of the model's token capacity). Without `backward` only the loss (a forward pass in
    /// inference mode: the same numbers).
    static func surrogate(model: LlamaModel, _ sequences: [(prompt: [Int32], response: [Int32], old: [Float], advantage: Double)],
                          _ settings: PolicyOptimization, dLogprobs: inout [Float], backward: Bool = true)
        -> (loss: Double, clipped: Int, responseTokens: Int, tokens: Int) {
        let packed = LossOn.response.pack(sequences.map { ($0.prompt, $0.response) })
        let lp = model.forward(packed.batch, training: backward)
        // the weighted positions of each span are its response tokens, in order
        var positions: [Int] = []
        for span in packed.spans { for t in span.range where packed.weights[t] != 0 { positions.append(t) } }
        let result = clippedSurrogate(logprobs: positions.map { Double(lp[$0]) }, old: sequences.flatMap { $0.old.map(Double.init) },
                                      advantages: sequences.map(\.advantage), sampleTokens: sequences.map(\.response.count),
                                      clip: settings.clip, averaging: settings.lossAveraging)
        if backward {
            for t in 0..<packed.batch.count { dLogprobs[t] = 0 }
            for (k, t) in positions.enumerated() { dLogprobs[t] = Float(result.dLogprobs[k]) }
            dLogprobs.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
        }
        return (result.loss, result.clipped, positions.count, packed.batch.count)
    }
}
