import Base

/// What a pair loss sees of one (chosen, rejected) pair: the policy's summed log-probabilities of each response,
/// the reference model's (0 for an objective that needs no reference), and each response's trained token count.
public struct PairQuantities: Sendable {
    public var policyChosen: Double
    public var policyRejected: Double
    public var referenceChosen: Double
    public var referenceRejected: Double
    public var chosenTokens: Double
    public var rejectedTokens: Double
    /// WPO's weight of the pair, w_c w_r (`DPO.useWeighting`; 1 otherwise): a constant, no gradient flows through it.
    public var weight: Double = 1

    /// The reference-normalised log-ratio margin h = (pi_c - ref_c) - (pi_r - ref_r).
    public var margin: Double { (policyChosen - referenceChosen) - (policyRejected - referenceRejected) }
}

/// A loss over (chosen, rejected) pairs, one file each in this folder (`DPO.swift`, `IPO.swift`, `Hinge.swift`):
/// its spec keys with their defaults and ranges (`init(spec:)`, `encode(spec:)`), whether it reads a reference
/// model, the scale of its implicit rewards, and its loss with the derivatives with respect to the policy's summed
/// log-probabilities of the chosen and the rejected response. `PreferenceLoss.swift` applies it to a batch
/// (per-token gradients, TRL's metrics); a new one is a file here and a line in `PairObjectives.all`.
public protocol PairObjective: Sendable {
    /// The spec's `objective.kind`.
    static var kind: String { get }
    /// The spec keys it takes besides `kind`.
    static var keys: [String] { get }
    /// Decodes its keys (defaults and ranges); `SpecFields` has refused keys of other kinds already.
    init(spec f: SpecFields) throws
    /// Writes every key with its resolved value (run identities hash this).
    func encode(spec c: inout KeyedEncodingContainer<SpecKey>) throws
    /// Whether the loss reads the reference model's log-probabilities (they are computed and cached when it does).
    var needsReference: Bool { get }
    /// Scale of the implicit rewards in the metrics (`rewards/chosen` = scale (pi_c - ref_c), ...).
    var rewardScale: Double { get }
    /// The loss of one pair, and dLoss/dpi_c, dLoss/dpi_r.
    func pairLoss(_ q: PairQuantities) -> (loss: Double, dChosen: Double, dRejected: Double)
    /// The loss of a batch of pairs (the mean of `pairLoss` unless a loss reads the batch as a whole: DPO's `aot`, which
    /// sorts, and `sft`, the NLL of all chosen tokens), and its derivatives with respect to each pair's summed policy
    /// log-probabilities of the chosen and the rejected response.
    func batchLoss(_ pairs: [PairQuantities]) -> (loss: Double, dChosen: [Double], dRejected: [Double])
    /// The log-probabilities the loss consumes, as the metrics `logps/chosen` and `logps/rejected` report them (default:
    /// the sums; a loss on per-token averages reports those). Its implicit rewards are `rewardScale` times these minus
    /// the reference's (which a reference-free loss does not have).
    func logps(_ q: PairQuantities) -> (chosen: Double, rejected: Double)
    /// Metrics of its own beside the shared ones (`nll_loss`, ORPO's odds), over a batch; default none.
    func metrics(_ pairs: [PairQuantities]) -> [String: Double]
}

extension PairObjective {
    public var needsReference: Bool { true }

    public func batchLoss(_ pairs: [PairQuantities]) -> (loss: Double, dChosen: [Double], dRejected: [Double]) { meanPairLoss(pairs) }

    /// The mean of `pairLoss` over a batch and its derivatives (each pair's over the batch size).
    public func meanPairLoss(_ pairs: [PairQuantities]) -> (loss: Double, dChosen: [Double], dRejected: [Double]) {
        let inv = 1 / Double(max(pairs.count, 1))
        var loss = 0.0, dc: [Double] = [], dr: [Double] = []
        for q in pairs {
            let (l, c, r) = pairLoss(q)
            loss += l
            dc.append(c * inv)
            dr.append(r * inv)
        }
        return (loss * inv, dc, dr)  // summed, then scaled: the same floating-point steps as before batchLoss existed
    }

    public func logps(_ q: PairQuantities) -> (chosen: Double, rejected: Double) { (q.policyChosen, q.policyRejected) }

    public func metrics(_ pairs: [PairQuantities]) -> [String: Double] { [:] }

    /// The implicit rewards of the metrics: `rewardScale` (logps - the reference's, for a loss that reads one).
    func rewards(_ q: PairQuantities) -> (chosen: Double, rejected: Double) {
        let (c, r) = logps(q)
        return needsReference ? (rewardScale * (c - q.referenceChosen), rewardScale * (r - q.referenceRejected)) : (rewardScale * c, rewardScale * r)
    }

    /// Equal objectives write equal specs.
    func isEqual(to other: any PairObjective) -> Bool {
        type(of: self).kind == type(of: other).kind && Objective.pair(self).specJSON == Objective.pair(other).specJSON
    }
}

/// The registry of pair objectives: one line each.
public enum PairObjectives {
    public static let all: [any PairObjective.Type] = [DPO.self, IPO.self, Hinge.self, SimPO.self, CPO.self, ORPO.self]

    public static func named(_ kind: String) -> (any PairObjective.Type)? { all.first { $0.kind == kind } }
}
