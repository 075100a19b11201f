import Foundation

/// Where an online policy's reward comes from (`objective.reward`).
public enum PolicyReward: Sendable, Equatable {
    /// A reward-model run of the experiment (`objective.kind` "reward"): r(x, y) at the response's end of turn.
    case run(String)
    /// An AI judge (`Judge`): a sample's reward is its mean preference over the prompt's other samples.
    case judge(path: String, template: String?)
    /// Built-in rule: the response's length in tokens (its end-of-turn token not counted).
    case length
    /// Built-in rule: 1 when the decoded response contains `text`, else 0.
    case contains(String)
}

/// How the samples of one prompt are turned into advantages (`objective.advantages`).
public enum AdvantageBaseline: String, Codable, Sendable, CaseIterable {
    /// GRPO: A_i = R_i - mean_j R_j over the prompt's samples.
    case group
    /// RLOO: A_i = R_i - mean_{j != i} R_j (the other samples of the prompt).
    case leaveOneOut = "leave_one_out"
}

/// The per-token KL estimator of the penalty (`objective.kl_estimator`), with d = log pi_ref(t) - log pi_old(t):
/// k1 = -d (the log-ratio; unbiased, can be negative), k3 = exp(d) - 1 - d (non-negative, unbiased, lower
/// variance; Schulman 2020). TRL's PPO/RLOO `kl_estimator` offers the same two.
public enum KLEstimator: String, Codable, Sendable, CaseIterable {
    case k1, k3

    public func value(logprob: Double, reference: Double) -> Double {
        let d = reference - logprob
        switch self {
        case .k1: return -d
        case .k3: return exp(d) - 1 - d
        }
    }
}

/// How the clipped surrogate's per-token terms are averaged into a mini-batch's loss (`objective.loss_averaging`).
public enum LossAveraging: String, Codable, Sendable, CaseIterable {
    /// Sum over every token of the mini-batch / number of tokens (TRL's `bnpo`/`dapo`: long samples weigh more).
    case token
    /// Mean over samples of each sample's mean over its tokens (the original GRPO: every sample weighs the same).
    case sequence
}

/// An online policy-optimisation objective's settings (`objective: { kind: "ppo", ... }`). See `Objective.ppo`.
public struct PolicyOptimization: Sendable, Equatable {
    public var reward: PolicyReward
    /// Responses sampled per prompt (>= 2: the baselines compare a prompt's samples).
    public var samplesPerPrompt: Int
    /// Passes of the clipped surrogate over each step's samples.
    public var epochs: Int
    /// Mini-batches per pass (one optimizer update each).
    public var miniBatches: Int
    public var temperature: Double
    public var topP: Double
    public var maxTokens: Int
    /// Weight of the KL penalty to the reference (the run's starting weights) in the reward.
    public var klCoef: Double
    public var klEstimator: KLEstimator
    public var advantages: AdvantageBaseline
    /// Divide each prompt's advantages by the standard deviation of its rewards (GRPO's scaling).
    public var scaleAdvantages: Bool
    /// epsilon of the clipped ratio: the ratio is kept in [1 - clip, 1 + clip].
    public var clip: Double
    public var lossAveraging: LossAveraging
    /// Subtracted from the reward of samples cut at `maxTokens` (not ended by the end-of-turn token); TRL's
    /// `missing_eos_penalty`.
    public var missingEOSPenalty: Double

    public init(reward: PolicyReward, samplesPerPrompt: Int = 4, epochs: Int = 1, miniBatches: Int = 1, temperature: Double = 1,
                topP: Double = 1, maxTokens: Int = 32, klCoef: Double = 0.05, klEstimator: KLEstimator = .k1,
                advantages: AdvantageBaseline = .group, scaleAdvantages: Bool = false, clip: Double = 0.2,
                lossAveraging: LossAveraging = .token, missingEOSPenalty: Double = 0) {
        self.reward = reward
        self.samplesPerPrompt = samplesPerPrompt
        self.epochs = epochs
        self.miniBatches = miniBatches
        self.temperature = temperature
        self.topP = topP
        self.maxTokens = maxTokens
        self.klCoef = klCoef
        self.klEstimator = klEstimator
        self.advantages = advantages
        self.scaleAdvantages = scaleAdvantages
        self.clip = clip
        self.lossAveraging = lossAveraging
        self.missingEOSPenalty = missingEOSPenalty
    }
}

/// Advantages of one prompt's samples from their rewards R (the KL penalty already included):
///
///     group:          A_i = R_i - (1/n) sum_j R_j
///     leave_one_out:  A_i = R_i - (1/(n-1)) sum_{j != i} R_j   (= n/(n-1) times the group advantage)
///     scaled:         A_i / (s + 1e-4), s = the sample standard deviation of R (n - 1 in the denominator)
///
/// The scaling and its 1e-4 are GRPO's as TRL computes it (`scale_rewards`). Needs n >= 2.
public func policyAdvantages(_ rewards: [Double], baseline: AdvantageBaseline, scale: Bool) -> [Double] {
    let n = rewards.count
    precondition(n >= 2, "policyAdvantages: a baseline needs at least 2 samples of the prompt")
    let sum = rewards.reduce(0, +), mean = sum / Double(n)
    var a: [Double]
    switch baseline {
    case .group: a = rewards.map { $0 - mean }
    case .leaveOneOut: a = rewards.map { $0 - (sum - $0) / Double(n - 1) }
    }
    if scale {
        let s = sampleStandardDeviation(rewards)
        a = a.map { $0 / (s + 1e-4) }
    }
    return a
}

/// The sample standard deviation (n - 1 in the denominator) of at least two values.
public func sampleStandardDeviation(_ values: [Double]) -> Double {
    precondition(values.count >= 2, "sampleStandardDeviation: needs at least 2 values")
    let mean = values.reduce(0, +) / Double(values.count)
    return (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)).squareRoot()
}

/// PPO's clipped surrogate (Schulman et al. 2017) over the tokens of a mini-batch of samples. Token t of
/// sample i has its log-probability now (lp) and at sampling (old), the sample's advantage A_i and
/// rho = exp(lp - old):
///
///     L_t  = -min(rho A_i, clip(rho, 1 - eps, 1 + eps) A_i)
///     token averaging:     loss = sum_i sum_t L_t / sum_i T_i
///     sequence averaging:  loss = (1/N) sum_i (1/T_i) sum_t L_t
///     dL_t/dlp = -rho A_i where the unclipped term is the minimum, 0 where the clipped one is (rho outside
///     the range on the side A pushes it: rho > 1 + eps with A > 0, rho < 1 - eps with A < 0)
///
/// `clipped`: how many tokens had a zero gradient from the clip (TRL's `clip_ratio` is clipped / tokens).
/// In Double throughout; `sampleTokens` gives each sample's token count, in order, summing to `logprobs.count`.
public func clippedSurrogate(logprobs: [Double], old: [Double], advantages: [Double], sampleTokens: [Int],
                             clip: Double, averaging: LossAveraging) -> (loss: Double, dLogprobs: [Double], clipped: Int) {
    precondition(logprobs.count == old.count && sampleTokens.reduce(0, +) == logprobs.count && advantages.count == sampleTokens.count,
                 "clippedSurrogate: one log-probability per token and one advantage per sample")
    var loss = 0.0, clipped = 0
    var d = [Double](repeating: 0, count: logprobs.count)
    let total = Double(max(1, logprobs.count)), samples = Double(max(1, sampleTokens.count))
    var t0 = 0
    for (i, n) in sampleTokens.enumerated() {
        let a = advantages[i]
        let weight = averaging == .token ? 1 / total : 1 / (samples * Double(max(1, n)))
        for t in t0..<t0 + n {
            let rho = exp(logprobs[t] - old[t])
            let unclipped = rho * a, bounded = min(max(rho, 1 - clip), 1 + clip) * a
            if unclipped <= bounded {
                loss -= unclipped * weight
                d[t] = -unclipped * weight
            } else {
                loss -= bounded * weight
                clipped += 1
            }
        }
        t0 += n
    }
    return (loss, d, clipped)
}
