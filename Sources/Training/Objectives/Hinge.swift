import Base

/// SLiC-style hinge on the reference-normalised margin (TRL's `hinge`): loss = max(0, 1 - beta h). At the kink
/// (beta h = 1) and beyond, the gradient is 0. Key: `beta` (> 0, default 0.1).
public struct Hinge: PairObjective, Equatable {
    public static let kind = "hinge"
    public static let keys = ["beta"]
    public var beta: Double

    public init(beta: Double) {
        precondition(beta > 0, "Hinge: needs beta > 0")
        self.beta = beta
    }

    public init(spec f: SpecFields) throws {
        self.init(beta: try f.double("beta", default: 0.1, min: 0, exclusiveMin: true))
    }

    public func encode(spec c: inout KeyedEncodingContainer<SpecKey>) throws {
        try c.encode(beta, "beta")
    }

    public var rewardScale: Double { beta }

    public func pairLoss(_ q: PairQuantities) -> (loss: Double, dChosen: Double, dRejected: Double) {
        let m = 1 - beta * q.margin
        return m > 0 ? (m, -beta, beta) : (0, 0, 0)
    }
}
