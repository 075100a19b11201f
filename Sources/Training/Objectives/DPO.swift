import Base

/// DPO (Rafailov et al. 2023), TRL's `sigmoid` loss: loss = -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h),
/// h the reference-normalised margin. `labelSmoothing` eps > 0 is conservative DPO (cDPO: labels flipped with
/// probability eps), as TRL's `label_smoothing`. Keys: `beta` (> 0, default 0.1), `label_smoothing` ([0, 0.49], 0).
public struct DPO: PairObjective, Equatable {
    public static let kind = "dpo"
    public static let keys = ["beta", "label_smoothing"]
    public var beta: Double
    public var labelSmoothing: Double

    public init(beta: Double, labelSmoothing: Double = 0) {
        precondition(beta > 0 && labelSmoothing >= 0 && labelSmoothing < 0.5, "DPO: needs beta > 0 and 0 <= labelSmoothing < 0.5")
        self.beta = beta
        self.labelSmoothing = labelSmoothing
    }

    public init(spec f: SpecFields) throws {
        self.init(beta: try f.double("beta", default: 0.1, min: 0, exclusiveMin: true),
                  labelSmoothing: try f.double("label_smoothing", default: 0, min: 0, max: 0.49))
    }

    public func encode(spec c: inout KeyedEncodingContainer<SpecKey>) throws {
        try c.encode(beta, "beta")
        try c.encode(labelSmoothing, "label_smoothing")
    }

    public var rewardScale: Double { beta }

    public func pairLoss(_ q: PairQuantities) -> (loss: Double, dChosen: Double, dRejected: Double) {
        let x = beta * q.margin, eps = labelSmoothing
        // -log sigmoid(x) = softplus(-x); d/dx = -sigmoid(-x).
        let loss = (1 - eps) * softplus(-x) + eps * softplus(x)
        let dh = beta * (-(1 - eps) * sigmoid(-x) + eps * sigmoid(x))
        return (loss, dh, -dh)
    }
}
