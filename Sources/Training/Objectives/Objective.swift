/// Which tokens an SFT loss trains on.
public enum LossOn: String, Codable, Sendable, CaseIterable {
    /// Only the response tokens (prompt masked).
    case response
    /// Every token after the first.
    case all
}

/// A training objective. Every objective is built on the one log-prob primitive (`LlamaModel.forward`):
/// it sees per-token log-probabilities, per-token weights and per-sequence spans, and returns the loss,
/// diagnostics and dLoss/dlogprob per token.
///
/// Preference objectives (`dpo`, `ipo`, `hinge`) read a batch of pairs packed by `PreferencePair.pack`:
/// spans alternate chosen, rejected (pair i is spans 2i and 2i+1). With pi_s = sum of w_t * lp_t over span s
/// and ref_s the reference model's same sum, each pair has the log-ratio margin
/// h = (pi_c - ref_c) - (pi_r - ref_r); the loss is the mean over pairs of a function of h.
public enum Objective: Sendable {
    /// Weighted negative log-likelihood: loss = -sum(w * lp) / sum(w), trained on the `target` response.
    case sft(lossOn: LossOn, target: ResponseTarget = .chosen)
    /// A loss over (chosen, rejected) pairs (`PairObjective`: DPO, IPO, hinge, ...), one file each in `Objectives/`.
    case pair(any PairObjective)
    /// Chain of Hindsight (Liu et al. 2023): each pair becomes one sequence built by `HindsightTemplate`
    /// (helpful and unhelpful answers both trained on), with the weighted NLL of `sft`; probes are scored
    /// after `HindsightTemplate.evaluationPrefix`.
    case coh(template: HindsightTemplate)
    /// A reward model (Bradley-Terry, as TRL's RewardTrainer): a scalar head on the final hidden state at each
    /// sequence's last token (the end of turn) scores chosen (r+) and rejected (r-) responses of each pair;
    /// loss = mean over pairs of -log sigmoid(r+ - r- - m) + centerRewards * mean((r+ + r-)^2), with m the
    /// pair's `margin` field (0 without one). `headSeed` seeds the head's N(0, 0.02^2) initial weights.
    /// Computed by `bradleyTerryLoss`.
    case reward(margin: String?, centerRewards: Double, headSeed: Int)
    /// KTO (`ktoLoss`): unpaired desirable/undesirable completions against the reference model, with the
    /// batch's KL estimate from mismatched pairs. Needs batches of at least 2 examples.
    /// `ratingThreshold`: rated lines are desirable when their rating is at least this (`RatedFeedback.unpaired`).
    case kto(beta: Double, desirableWeight: Double, undesirableWeight: Double, ratingThreshold: Double? = nil)
    /// SPIN (Chen et al. 2024): `iterations` runs (`.../iter=k`), each from the previous one's final weights;
    /// iteration k generates a response to every training prompt with its starting weights (temperature 0:
    /// greedy), then trains with the DPO loss (beta, no label smoothing) on (data response, generated response)
    /// against those starting weights as reference.
    case spin(iterations: Int, beta: Double, temperature: Double, topP: Double, maxTokens: Int)
    /// Online policy optimisation from a reward (PPO's clipped surrogate with group baselines, GRPO/RLOO; no value
    /// network): each step samples `samplesPerPrompt` responses to each of `train.batch_size` prompts from the
    /// current policy, scores them (`PolicyReward`), subtracts `klCoef` times the summed per-token KL estimate to
    /// the reference (the starting weights), turns the rewards into advantages per prompt (`policyAdvantages`)
    /// and takes `epochs` passes of `clippedSurrogate` over the samples in `miniBatches` updates. `Trainer.ppoStep`.
    case ppo(PolicyOptimization)
}


extension Objective: Equatable {
    public static func == (a: Objective, b: Objective) -> Bool {
        switch (a, b) {
        case let (.sft(l1, t1), .sft(l2, t2)): return l1 == l2 && t1 == t2
        case let (.pair(p), .pair(q)): return p.isEqual(to: q)
        case let (.coh(x), .coh(y)): return x == y
        case let (.reward(m1, c1, h1), .reward(m2, c2, h2)): return m1 == m2 && c1 == c2 && h1 == h2
        case let (.kto(b1, d1, u1, r1), .kto(b2, d2, u2, r2)): return b1 == b2 && d1 == d2 && u1 == u2 && r1 == r2
        case let (.spin(i1, b1, t1, p1, m1), .spin(i2, b2, t2, p2, m2)): return i1 == i2 && b1 == b2 && t1 == t2 && p1 == p2 && m1 == m2
        case let (.ppo(x), .ppo(y)): return x == y
        default: return false
        }
    }
}

/// What an objective returns besides the gradient.
public struct ObjectiveResult: Sendable {
    public var loss: Double
    /// Diagnostics named like "logps/mean_token" (objective-specific).
    public var metrics: [String: Double]
}

extension Objective {
    /// True for the objectives that train on preference pairs against reference log-probabilities
    /// (`dpo`, `ipo`, `hinge`): their batches come from `PreferencePair.pack` and `evaluate` needs
    /// `referenceLogprobs`.
    public var needsReference: Bool {
        switch self {
        case .sft, .coh, .reward, .kto, .ppo: return false
        case .spin: return true
        case .pair(let p): return p.needsReference
        }
    }

    /// True for the objectives that train on (chosen, rejected) pairs packed two sequences per example.
    public var isPairwise: Bool {
        switch self {
        case .reward, .spin, .pair: return true
        case .sft, .coh, .kto, .ppo: return false
        }
    }

    /// DPO (`DPO`): TRL's sigmoid loss, conservative with `labelSmoothing` > 0.
    public static func dpo(beta: Double, labelSmoothing: Double) -> Objective { .pair(DPO(beta: beta, labelSmoothing: labelSmoothing)) }
    /// IPO (`IPO`).
    public static func ipo(tau: Double) -> Objective { .pair(IPO(tau: tau)) }
    /// SLiC-style hinge (`Hinge`).
    public static func hinge(beta: Double) -> Objective { .pair(Hinge(beta: beta)) }

    /// Evaluates the objective.
    /// - Parameters:
    ///   - logprobs: (N) per-token log-probabilities from `forward`.
    ///   - weights: (N) per-token weights (0 where a token is not trained on, e.g. target -1).
    ///   - spans: the sequences of the batch (used by sequence-level objectives; SFT ignores them). For
    ///     preference objectives: chosen, rejected, chosen, rejected, ... (see `PreferencePair.pack`).
    ///   - referenceLogprobs: preference objectives only: the reference model's summed log-probability of
    ///     each span (same order and weights as `spans`, e.g. from `referenceLogprobs(model:pairs:batchSize:)`).
    ///   - logSumSquares: (N) log sum_v p(v)^2 per position, for an objective that `readsLogSumSquares` (WPO).
    ///   - dLogprobs: (N) written with dLoss/dlogprob.
    public func evaluate(
        logprobs: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, spans: [SequenceSpan],
        referenceLogprobs: [Double]? = nil, logSumSquares: UnsafeBufferPointer<Float>? = nil,
        dLogprobs: UnsafeMutableBufferPointer<Float>
    ) -> ObjectiveResult {
        precondition(weights.count == logprobs.count && dLogprobs.count == logprobs.count, "Objective: size mismatch")
        switch self {
        case .sft, .coh:
            return sftLoss(logprobs: logprobs, weights: weights, dLogprobs: dLogprobs)
        case .reward:
            preconditionFailure("Objective.evaluate: a reward model is trained on rewards (bradleyTerryLoss), not log-probabilities")
        case .kto:
            preconditionFailure("Objective.evaluate: KTO is evaluated by the Trainer (ktoLoss, with its mismatched pairs)")
        case .ppo:
            preconditionFailure("Objective.evaluate: PPO is evaluated by the Trainer (ppoStep: sampled responses, clippedSurrogate)")
        case .pair, .spin:
            guard let reference = referenceLogprobs else {
                preconditionFailure("Objective.evaluate: \(self) needs referenceLogprobs")
            }
            // WPO's weights, when the loss reads them
            let wpo = readsLogSumSquares ? logSumSquares.map {
                wpoSequenceWeights(logprobs: logprobs, logSumSquares: $0, weights: weights, spans: spans)
            } : nil
            return preferenceLoss(logprobs: logprobs, weights: weights, spans: spans, reference: reference,
                                  sequenceWeights: wpo, dLogprobs: dLogprobs)
        }
    }
}

/// loss = -sum(w * lp) / sum(w); dLoss/dlp_t = -w_t / sum(w). With sum(w) = 0 the loss and gradient are 0.
public func sftLoss(
    logprobs: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, dLogprobs: UnsafeMutableBufferPointer<Float>
) -> ObjectiveResult {
    var sw = 0.0, swl = 0.0
    for t in 0..<logprobs.count where weights[t] != 0 {
        sw += Double(weights[t])
        swl += Double(weights[t]) * Double(logprobs[t])
    }
    guard sw > 0 else {
        dLogprobs.update(repeating: 0)
        return ObjectiveResult(loss: 0, metrics: ["tokens": 0])
    }
    for t in 0..<logprobs.count { dLogprobs[t] = Float(-Double(weights[t]) / sw) }
    return ObjectiveResult(loss: -swl / sw, metrics: ["tokens": sw, "logps/mean_token": swl / sw])
}

import Model

extension LossOn {
    /// Packs (prompt, response) token sequences into one batch for SFT. The target at position t is token t+1
    /// of the same sequence; with `.response` only positions whose next token belongs to the response get a
    /// target (so logits are computed only there), with `.all` every position but the last does.
    /// Returns the batch, per-token weights (1 where there is a target) and each sequence's span.
    public func pack(_ examples: [(prompt: [Int32], response: [Int32])]) -> (batch: TokenBatch, weights: [Float], spans: [SequenceSpan]) {
        TokenBatch.pack(examples.map { prompt, response in
            self == .all ? [(prompt + response, true)] : [(prompt, false), (response, true)]
        })
    }
}
