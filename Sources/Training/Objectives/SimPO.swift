import Base

/// SimPO (Meng et al. 2024) as TRL computes it (`CPOTrainer`, `loss_type: "simpo"`, `cpo_alpha: 0`): reference-free, on
/// each response's average per-token log-probability. With m = pi_c / N_c - pi_r / N_r - gamma / beta (pi the summed
/// log-probability, N the response's trained tokens),
///     loss = -(1 - eps) log sigmoid(beta m) - eps log sigmoid(-beta m),
///     dLoss/dpi_c = g / N_c, dLoss/dpi_r = -g / N_r, g = beta (-(1 - eps) sigmoid(-beta m) + eps sigmoid(beta m)).
/// Keys and TRL's defaults: `beta` (> 0, 0.1), `simpo_gamma` (>= 0, 0.5: the target margin is gamma / beta),
/// `label_smoothing` ([0, 0.5), 0). Its metrics' rewards and log-probabilities are the averages the loss consumed:
/// rewards/chosen = beta pi_c / N_c, logps/chosen = pi_c / N_c.
public struct SimPO: PairObjective, Equatable {
    public static let kind = "simpo"
    public static let keys = ["beta", "simpo_gamma", "label_smoothing"]
    public var beta: Double
    public var gamma: Double
    public var labelSmoothing: Double

    public init(beta: Double, gamma: Double, labelSmoothing: Double = 0) {
        precondition(beta > 0 && gamma >= 0 && labelSmoothing >= 0 && labelSmoothing < 0.5, "SimPO: needs beta > 0, gamma >= 0, 0 <= eps < 0.5")
        self.beta = beta
        self.gamma = gamma
        self.labelSmoothing = labelSmoothing
    }

    public init(spec f: SpecFields) throws {
        self.init(beta: try f.double("beta", default: 0.1, min: 0, exclusiveMin: true),
                  gamma: try f.double("simpo_gamma", default: 0.5, min: 0),
                  labelSmoothing: try f.double("label_smoothing", default: 0, min: 0, max: 0.5, exclusiveMax: true))
    }

    public func encode(spec c: inout KeyedEncodingContainer<SpecKey>) throws {
        try c.encode(beta, "beta")
        try c.encode(gamma, "simpo_gamma")
        try c.encode(labelSmoothing, "label_smoothing")
    }

    public var needsReference: Bool { false }
    public var rewardScale: Double { beta }

    public func logps(_ q: PairQuantities) -> (chosen: Double, rejected: Double) {
        (q.policyChosen / max(q.chosenTokens, 1), q.policyRejected / max(q.rejectedTokens, 1))
    }

    public func pairLoss(_ q: PairQuantities) -> (loss: Double, dChosen: Double, dRejected: Double) {
        let (nc, nr) = (max(q.chosenTokens, 1), max(q.rejectedTokens, 1))
        let m = q.policyChosen / nc - q.policyRejected / nr - gamma / beta
        let x = beta * m, eps = labelSmoothing
        let loss = (1 - eps) * softplus(-x) + eps * softplus(x)
        let g = beta * (-(1 - eps) * sigmoid(-x) + eps * sigmoid(x))
        return (loss, g / nc, -g / nr)
    }
}
