import Base
import Foundation

/// ORPO (Hong et al. 2024) as TRL's `ORPOTrainer` computes it: reference-free, on per-token average log-probabilities
/// a = pi / N. log_odds = (a_c - a_r) - (log(1 - e^a_c) - log(1 - e^a_r)); loss = NLL of the batch's chosen tokens -
/// beta mean over pairs of log sigmoid(log_odds). Key: `beta` (> 0, TRL's default 0.1; the paper's lambda).
/// Metrics as TRL's: rewards = beta a, logps = a, `nll_loss`, `log_odds_ratio` (the mean of log sigmoid(log_odds)),
/// `log_odds_chosen` (the mean of log_odds).
public struct ORPO: PairObjective, Equatable {
    public static let kind = "orpo"
    public static let keys = ["beta"]
    public var beta: Double

    public init(beta: Double = 0.1) { self.beta = beta }

    public init(spec f: SpecFields) throws {
        self.init(beta: try f.double("beta", default: 0.1, min: 0, exclusiveMin: true))
    }

    public func encode(spec c: inout KeyedEncodingContainer<SpecKey>) throws {
        try c.encode(beta, "beta")
    }

    public var needsReference: Bool { false }
    public var rewardScale: Double { beta }

    public func logps(_ q: PairQuantities) -> (chosen: Double, rejected: Double) {
        (q.policyChosen / max(q.chosenTokens, 1), q.policyRejected / max(q.rejectedTokens, 1))
    }

    /// log(1 - e^a) for a < 0, without cancellation.
    static func log1mexp(_ a: Double) -> Double { a > -0.6931471805599453 ? log(-expm1(a)) : log1p(-exp(a)) }

    func logOdds(_ q: PairQuantities) -> Double {
        let (ac, ar) = logps(q)
        return (ac - ar) - (Self.log1mexp(ac) - Self.log1mexp(ar))
    }

    /// The odds-ratio term of one pair, -beta log sigmoid(log_odds), and its derivatives in pi_c and pi_r.
    public func pairLoss(_ q: PairQuantities) -> (loss: Double, dChosen: Double, dRejected: Double) {
        let (nc, nr) = (max(q.chosenTokens, 1), max(q.rejectedTokens, 1))
        let (ac, ar) = logps(q)
        let lo = logOdds(q)
        let g = -beta * sigmoid(-lo)  // d(-beta log sigmoid(lo))/dlo
        // dlo/da_c = 1 + e^a_c / (1 - e^a_c) = 1 / (1 - e^a_c); dlo/da_r = -1 / (1 - e^a_r)
        return (beta * softplus(-lo), g / (-expm1(ac)) / nc, -g / (-expm1(ar)) / nr)
    }

    public func batchLoss(_ pairs: [PairQuantities]) -> (loss: Double, dChosen: [Double], dRejected: [Double]) {
        addingChosenNLL(meanPairLoss(pairs), pairs, weight: 1)
    }

    public func metrics(_ pairs: [PairQuantities]) -> [String: Double] {
        let inv = 1 / Double(max(pairs.count, 1))
        let odds = pairs.map(logOdds)
        return ["nll_loss": chosenNLL(pairs), "log_odds_ratio": odds.reduce(0) { $0 - softplus(-$1) } * inv,
                "log_odds_chosen": odds.reduce(0, +) * inv]
    }
}
