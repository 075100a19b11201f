import Foundation

/// The Bradley-Terry loss of a reward model (`Objective.reward`), as TRL's RewardTrainer computes it, over
/// P pairs with rewards r+_i (chosen) and r-_i (rejected), margins m_i (0 without a margin field) and
/// centering coefficient c:
///
///     z_i  = r+_i - r-_i - m_i
///     loss = (1/P) sum_i -log sigmoid(z_i)  +  c (1/P) sum_i (r+_i + r-_i)^2
///     dloss/dr+_i = (-sigmoid(-z_i) + 2c (r+_i + r-_i)) / P
///     dloss/dr-_i = ( sigmoid(-z_i) + 2c (r+_i + r-_i)) / P
///
/// In Double throughout (-log sigmoid(z) as softplus(-z)). Metrics, TRL's names: `accuracy` (share of pairs
/// with r+ > r-), `margin` (mean r+ - r-), `mean_reward`, `min_reward`, `max_reward` (over both responses of
/// every pair), `pairs`.
public func bradleyTerryLoss(chosen: [Float], rejected: [Float], margins: [Double], center: Double)
    -> (result: ObjectiveResult, dChosen: [Float], dRejected: [Float]) {
    let n = chosen.count
    precondition(rejected.count == n && margins.count == n, "bradleyTerryLoss: \(n) chosen, \(rejected.count) rejected, \(margins.count) margins")
    guard n > 0 else { return (ObjectiveResult(loss: 0, metrics: ["pairs": 0]), [], []) }
    let inv = 1 / Double(n)
    var loss = 0.0, correct = 0.0, gap = 0.0, sum = 0.0
    var lo = Double.infinity, hi = -Double.infinity
    var dc = [Float](repeating: 0, count: n), dr = [Float](repeating: 0, count: n)
    for i in 0..<n {
        let rc = Double(chosen[i]), rr = Double(rejected[i])
        let z = rc - rr - margins[i]
        let s = rc + rr
        loss += softplus(-z) + center * s * s
        let pull = sigmoid(-z)  // = 1 - sigmoid(z)
        dc[i] = Float((-pull + 2 * center * s) * inv)
        dr[i] = Float((pull + 2 * center * s) * inv)
        if rc > rr { correct += 1 }
        gap += rc - rr
        sum += s
        lo = min(lo, rc, rr)
        hi = max(hi, rc, rr)
    }
    let metrics = ["pairs": Double(n), "accuracy": correct * inv, "margin": gap * inv, "mean_reward": sum * inv / 2,
                   "min_reward": lo, "max_reward": hi]
    return (ObjectiveResult(loss: loss * inv, metrics: metrics), dc, dr)
}
