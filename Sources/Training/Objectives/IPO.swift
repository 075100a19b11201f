import Base

/// IPO (Azar et al. 2023, eq. 17): loss = (h - 1/(2 tau))^2, with h in sequence log-probability SUMS as in the paper.
/// (TRL's `ipo` divides each sequence's log-probabilities by its length first; we do not.) The minimum is at
/// h = 1/(2 tau). Key: `tau` (> 0, default 0.1). Its implicit rewards are scaled by tau (TRL passes IPO's tau as beta).
public struct IPO: PairObjective, Equatable {
    public static let kind = "ipo"
    public static let keys = ["tau"]
    public var tau: Double

    public init(tau: Double) {
        precondition(tau > 0, "IPO: needs tau > 0")
        self.tau = tau
    }

    public init(spec f: SpecFields) throws {
        self.init(tau: try f.double("tau", default: 0.1, min: 0, exclusiveMin: true))
    }

    public func encode(spec c: inout KeyedEncodingContainer<SpecKey>) throws {
        try c.encode(tau, "tau")
    }

    public var rewardScale: Double { tau }

    public func pairLoss(_ q: PairQuantities) -> (loss: Double, dChosen: Double, dRejected: Double) {
        let d = q.margin - 1 / (2 * tau)
        return (d * d, 2 * d, -(2 * d))
    }
}
