import Base

/// What a run's plan asks of its objective: the checks of its settings against `train`, the tokens a micro-batch
/// packs, how many runs it becomes, the runs it reads, and how probes are scored. The run's config (Experiments)
/// asks these instead of switching on the kind.
extension Objective {
    /// Checks the objective's settings against the training settings.
    /// Why `eval.attribution` cannot decompose this objective's steps over its examples (nil: it can): KTO's batches pair each
    /// example with another's completion, a reward model's loss reads no log-probabilities, ppo's steps are sampled.
    public var attributionRefusal: String? {
        switch self {
        case .kto: return "kto (each batch also scores other examples' completions)"
        case .reward: return "reward (its loss reads a scalar head, not log-probabilities)"
        case .ppo: return "ppo (its step is several updates on sampled responses)"
        default: return nil
        }
    }

    public func check(train: TrainSettings) throws(SpecIssue) {
        switch self {
        case .kto where train.batchSize < 2:
            throw .invalid(path: "train.batch_size", expected: "at least 2 for objective kto (its KL estimate pairs each prompt with another example's completion)",
                           found: "\(train.batchSize)")
        case let .spin(_, _, _, _, maxTokens) where maxTokens >= train.maxLength - 1:
            throw .invalid(path: "objective.max_tokens", expected: "a token count < train.max_length - 1 (\(train.maxLength - 1)), so a generated response with its end-of-turn token fits with a token of its prompt",
                           found: "\(maxTokens)")
        case .ppo(let p):
            if p.maxTokens >= train.maxLength {
                throw .invalid(path: "objective.max_tokens", expected: "a token count < train.max_length (\(train.maxLength)), so the prompt keeps a token",
                               found: "\(p.maxTokens)")
            }
            if train.gradAccum != 1 {
                throw .invalid(path: "train.grad_accum", expected: "1 for objective ppo (a step's prompts are train.batch_size; split its updates with objective.mini_batches)",
                               found: "\(train.gradAccum)")
            }
            if p.miniBatches > train.batchSize * p.samplesPerPrompt {
                throw .invalid(path: "objective.mini_batches", expected: "at most the samples of a step (train.batch_size x samples_per_prompt = \(train.batchSize * p.samplesPerPrompt))",
                               found: "\(p.miniBatches)")
            }
        default:
            break
        }
    }

    /// Most tokens one micro-batch packs: `batch_size` examples of up to `max_length` tokens, two sequences per
    /// example for pair objectives; for ppo one update's mini-batch of sampled responses, each with its prompt.
    public func batchTokens(train: TrainSettings) -> Int {
        if case .ppo(let p) = self {
            return (train.batchSize * p.samplesPerPrompt + p.miniBatches - 1) / p.miniBatches * train.maxLength
        }
        return sequencesPerExample * train.batchSize * train.maxLength
    }

    /// Whether the objective samples its own responses as it trains (online optimisation): a label stage cannot be one.
    public var isOnline: Bool { onlineSettings != nil }

    /// An online objective's settings (what its rollout samples and scores with), if it is one.
    public var onlineSettings: PolicyOptimization? {
        if case .ppo(let p) = self { return p }
        return nil
    }

    /// The longest sequence one training batch packs.
    public func longestSequence(train: TrainSettings) -> Int {
        if case .ppo = self { return train.maxLength }
        return sequencesPerExample * train.maxLength
    }

    /// How many runs one planned config becomes: SPIN's iterations (`.../iter=k`, each from the previous one's
    /// final weights), else 1 (nil).
    public var iterations: Int? {
        if case let .spin(iterations, _, _, _, _) = self { return iterations }
        return nil
    }

    /// The reward-model run an online objective scores with (`objective.reward: { run }`), if any.
    public var rewardRun: String? {
        if case .ppo(let p) = self, case .run(let r) = p.reward { return r }
        return nil
    }

    /// The objective with its reward-model run named in full (`Experiment.parse` resolves stage names).
    public func withRewardRun(_ run: String) -> Objective {
        guard case .ppo(var p) = self, case .run = p.reward else { return self }
        p.reward = .run(run)
        return .ppo(p)
    }

    /// The judge an online objective scores with (`objective.reward: { judge, template? }`), if any.
    public var rewardJudge: (model: String, question: String?)? {
        if case .ppo(let p) = self, case let .judge(judge, question) = p.reward { return (judge, question) }
        return nil
    }

    /// A reward model's head seed: the trained model gets a scalar head (`LlamaModel.withRewardHead`), else nil.
    public var rewardHeadSeed: Int? {
        if case .reward(_, _, let headSeed) = self { return headSeed }
        return nil
    }

    /// How an objective that generates its training responses samples them (SPIN's rejected side), if it does.
    public var generation: (temperature: Double, topP: Double, maxTokens: Int)? {
        if case let .spin(_, _, temperature, topP, maxTokens) = self { return (temperature, topP, maxTokens) }
        return nil
    }

    /// A warning about the training data's balance for this objective (KTO's class weights), if any.
    public func dataWarning(desirable: Int, undesirable: Int) -> String? {
        guard case let .kto(_, wD, wU, _) = self else { return nil }
        return ktoWeightWarning(desirable: desirable, undesirable: undesirable, desirableWeight: wD, undesirableWeight: wU)
    }

    /// Whether runs of this objective train a reward model (the runs a label stage or ppo may score with).
    public var trainsRewardModel: Bool {
        if case .reward = self { return true }
        return false
    }

    /// The prefix probes are scored after (Chain of Hindsight's helpful prefix), if any.
    public var probeTemplate: HindsightTemplate? {
        if case .coh(let template) = self { return template }
        return nil
    }
}

extension Objective {
    /// Whether `objective.reference` may name another reference model than the starting weights: the pair objectives
    /// that read a reference, kto, and ppo (the reference of its KL penalty).
    public var takesReferenceModel: Bool {
        switch self {
        case .pair(let p): return p.needsReference
        case .kto, .ppo: return true
        case .sft, .coh, .reward, .spin: return false
        }
    }
}

extension Objective {
    /// The DPO loss of a `dpo` objective (its loss types' settings), else nil.
    var dpo: DPO? {
        if case .pair(let p) = self { return p as? DPO }
        return nil
    }

    /// TR-DPO's reference updates (`objective.sync_ref_model`), if any.
    public var referenceSync: ReferenceSync.Settings? { dpo?.referenceSync }

    /// LD-DPO's alpha (`objective.ld_alpha`): the weight of each response's tokens beyond the pair's shared length, in
    /// the policy's and the reference's sums alike; nil without it.
    public var tailWeight: Float? { dpo?.ldAlpha.map(Float.init) }
}
