import Base

/// IPO (Azar et al. 2023, eq. 17): loss = (h - 1/(2 tau))^2. With `length_normalized` false (the default, what `kind:
/// "ipo"` has always meant) h is the margin of sequence log-probability SUMS, h = (pi_c - ref_c) - (pi_r - ref_r); with
/// it true each log-ratio is first divided by its response's token count, h = (pi_c - ref_c)/N_c - (pi_r - ref_r)/N_r,
/// as TRL's `ipo` loss type computes it (and as the IPO authors' reported results used). The minimum is at
/// h = 1/(2 tau). Keys: `tau` (> 0, default 0.1), `length_normalized` (default false; left out of run identities
/// while false). Its implicit rewards are scaled by tau (TRL passes IPO's tau as beta).
public struct IPO: PairObjective, Equatable {
    public static let kind = "ipo"
    public static let keys = ["tau", "length_normalized"]
    public var tau: Double
    public var lengthNormalized: Bool

    public init(tau: Double, lengthNormalized: Bool = false) {
        precondition(tau > 0, "IPO: needs tau > 0")
        self.tau = tau
        self.lengthNormalized = lengthNormalized
    }

    public init(spec f: SpecFields) throws {
        self.init(tau: try f.double("tau", default: 0.1, min: 0, exclusiveMin: true),
                  lengthNormalized: try f.bool("length_normalized", default: false))
    }

    public func encode(spec c: inout KeyedEncodingContainer<SpecKey>) throws {
        try c.encode(tau, "tau")
        try c.encode(lengthNormalized, "length_normalized")
    }

    public var rewardScale: Double { tau }

    public func pairLoss(_ q: PairQuantities) -> (loss: Double, dChosen: Double, dRejected: Double) {
        // TRL clamps the token counts at 1
        let (nc, nr) = lengthNormalized ? (max(q.chosenTokens, 1), max(q.rejectedTokens, 1)) : (1, 1)
        let h = (q.policyChosen - q.referenceChosen) / nc - (q.policyRejected - q.referenceRejected) / nr
        let d = h - 1 / (2 * tau)
        return (d * d, 2 * d / nc, -(2 * d) / nr)
    }
}
