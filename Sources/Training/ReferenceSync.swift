import Model

/// TR-DPO's moving reference (`objective.sync_ref_model`, Gorbatovski et al. 2024, arXiv 2404.09656, as TRL's
/// `SyncRefModelCallback` does it): the reference is a second copy of the weights, theta_ref, starting as the policy's
/// starting weights; after every `every`-th optimizer step, theta_ref <- alpha theta + (1 - alpha) theta_ref.
///
/// The reference's version before optimizer step s (1-based) is the number of syncs so far, (s - 1) / every. Version 0
/// is the starting weights, whose values come from the shared reference cache under its usual key (so a run that never
/// syncs computes what a plain DPO run computes, bit for bit). A later version's weights exist only inside this run (a
/// mixture of its own trajectory) and live in its checkpoint beside the AdamW moments; their values are computed per
/// micro-batch from those weights (one more forward per micro-batch, no backward) and never read from or written to the
/// shared cache, where no other run could use them.
public final class ReferenceSync {
    public struct Settings: Equatable, Sendable {
        /// The weight of the policy in each mix, in (0, 1] (TRL's `ref_model_mixup_alpha`, default 0.6).
        public var alpha: Double
        /// Optimizer steps between syncs, >= 1 (TRL's `ref_model_sync_steps`, default 512).
        public var every: Int

        public init(alpha: Double, every: Int) {
            precondition(alpha > 0 && alpha <= 1 && every >= 1, "ReferenceSync: needs 0 < alpha <= 1 and every >= 1")
            self.alpha = alpha
            self.every = every
        }
    }

    public let settings: Settings
    /// The model that holds theta_ref (the policy's architecture and buffers sized like it).
    public let model: LlamaModel

    /// - Parameter model: a model of the policy's architecture whose parameters are the starting weights.
    public init(_ settings: Settings, model: LlamaModel) {
        self.settings = settings
        self.model = model
    }

    /// The number of syncs before optimizer step `step` (1-based).
    public func version(before step: Int) -> Int { (step - 1) / settings.every }

    /// After optimizer step `step`: mixes the policy into the reference when `step` is a multiple of `every`.
    func afterStep(_ step: Int, policy: LlamaModel) {
        guard step % settings.every == 0 else { return }
        precondition(policy.parameterCount == model.parameterCount, "ReferenceSync: the reference and the policy differ in size")
        let a = Float(settings.alpha), keep = Float(1 - settings.alpha)
        let ref = model.parameters, theta = policy.parameters
        for i in 0..<ref.count { ref[i] = keep * ref[i] + a * theta[i] }
    }
}
