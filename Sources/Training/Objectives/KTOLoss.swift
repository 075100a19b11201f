import Foundation

/// KTO (Ethayarajh et al. 2024) as TRL's KTOTrainer computes it, for a batch of B unpaired examples
/// (x_i, y_i, desirable_i): with r_i = log pi(y_i|x_i) - log pi_ref(y_i|x_i) (sums over response tokens) and
/// the batch's KL estimate from mismatched pairs (each prompt with another example's completion,
/// `ktoMismatchedIndex`):
///
///     z    = max(0, (1/B) sum_i [log pi(y_m(i)|x_i) - log pi_ref(y_m(i)|x_i)])      (detached: no gradient)
///     v_i  = sigmoid(beta (r_i - z))  if desirable,   sigmoid(beta (z - r_i))  if not
///     loss = (1/B) sum_i w_i (1 - v_i),   w_i = desirableWeight or undesirableWeight
///     dloss/dlog pi(y_i|x_i) = -(w_i / B) beta v_i (1 - v_i)  (desirable),  +(w_i / B) beta v_i (1 - v_i)  (not)
///
/// In Double throughout. Metrics, TRL's names: `rewards/chosen` and `rewards/rejected` (mean beta r over the
/// desirable / undesirable examples), `logps/chosen`, `logps/rejected` (mean log pi), `kl` (z). The objective
/// `Objective.kto`; its batches and reference values: `Trainer.ktoSequences`, `Trainer.ktoReferenceLogprobs`.
public func ktoLoss(policy: [Double], reference: [Double], policyMismatched: [Double], referenceMismatched: [Double],
                    desirable: [Bool], beta: Double, desirableWeight: Double, undesirableWeight: Double)
    -> (result: ObjectiveResult, dPolicy: [Double]) {
    let n = policy.count
    precondition(n >= 2, "ktoLoss: KTO needs a batch of at least 2 (the KL estimate pairs each prompt with another's completion)")
    precondition(reference.count == n && policyMismatched.count == n && referenceMismatched.count == n && desirable.count == n,
                 "ktoLoss: every input needs one value per example")
    var kl = 0.0
    for i in 0..<n { kl += policyMismatched[i] - referenceMismatched[i] }
    let z = max(0, kl / Double(n))
    var loss = 0.0
    var d = [Double](repeating: 0, count: n)
    var sums = (chosenReward: 0.0, rejectedReward: 0.0, chosenLogp: 0.0, rejectedLogp: 0.0, chosen: 0.0, rejected: 0.0)
    for i in 0..<n {
        let r = policy[i] - reference[i]
        let w = desirable[i] ? desirableWeight : undesirableWeight
        let v = desirable[i] ? sigmoid(beta * (r - z)) : sigmoid(beta * (z - r))
        loss += w * (1 - v)
        let slope = w * beta * v * (1 - v) / Double(n)
        d[i] = desirable[i] ? -slope : slope
        if desirable[i] {
            sums.chosenReward += beta * r; sums.chosenLogp += policy[i]; sums.chosen += 1
        } else {
            sums.rejectedReward += beta * r; sums.rejectedLogp += policy[i]; sums.rejected += 1
        }
    }
    var metrics = ["kl": z, "examples": Double(n)]
    if sums.chosen > 0 {
        metrics["rewards/chosen"] = sums.chosenReward / sums.chosen
        metrics["logps/chosen"] = sums.chosenLogp / sums.chosen
    }
    if sums.rejected > 0 {
        metrics["rewards/rejected"] = sums.rejectedReward / sums.rejected
        metrics["logps/rejected"] = sums.rejectedLogp / sums.rejected
    }
    return (ObjectiveResult(loss: loss / Double(n), metrics: metrics), d)
}

/// The example whose completion example `i` of a batch of `count` is paired with for the KL estimate: the
/// previous one, cyclically (TRL rotates the completions of a batch by one: example 0 takes the last one's).
public func ktoMismatchedIndex(_ i: Int, count: Int) -> Int {
    precondition(count >= 2 && (0..<count).contains(i), "ktoMismatchedIndex: needs 0 <= i < count, count >= 2")
    return (i + count - 1) % count
}

/// TRL's advice on KTO's class weights: desirableWeight x desirable examples over undesirableWeight x
/// undesirable examples should lie in [1, 4/3]. A one-line warning when it does not, else nil.
public func ktoWeightWarning(desirable: Int, undesirable: Int, desirableWeight: Double, undesirableWeight: Double) -> String? {
    guard desirable > 0, undesirable > 0 else {
        return "KTO: the data has \(desirable) desirable and \(undesirable) undesirable examples; it learns from both kinds"
    }
    let ratio = desirableWeight * Double(desirable) / (undesirableWeight * Double(undesirable))
    guard ratio < 1 || ratio > 4.0 / 3 else { return nil }
    return String(format: "KTO: desirable_weight x %d desirable / (undesirable_weight x %d undesirable) = %.3f, outside [1, 4/3] (TRL's advice); adjust the weights", desirable, undesirable, ratio)
}
