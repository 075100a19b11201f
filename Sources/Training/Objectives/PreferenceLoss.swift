import Foundation
import Model

/// Summed log-probability of each span: pi_s = sum over t in span s of w_t * lp_t, in Double.
/// The one sequence-level primitive shared by the preference losses, their metrics and the reference pass.
public func sequenceLogprobs(
    logprobs: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, spans: [SequenceSpan]
) -> [Double] {
    spans.map { s in
        precondition(s.start >= 0 && s.start + s.count <= logprobs.count, "sequenceLogprobs: span \(s) outside the batch")
        var sum = 0.0
        for t in s.range where weights[t] != 0 { sum += Double(weights[t]) * Double(logprobs[t]) }
        return sum
    }
}

/// WPO's weight of each span: w_s = exp(mean over the span's trained tokens (weight != 0, each counted once, whatever its
/// weight) of (lp_t - lss_t)), lss_t = log sum_v p_t(v)^2 (`LlamaModel.lastLogSumSquares`), in Double; 1 for a span
/// without trained tokens (TRL clamps the count at 1: exp(0)).
public func wpoSequenceWeights(
    logprobs: UnsafeBufferPointer<Float>, logSumSquares: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>,
    spans: [SequenceSpan]
) -> [Double] {
    spans.map { s in
        var sum = 0.0, n = 0.0
        for t in s.range where weights[t] != 0 {
            sum += Double(logprobs[t]) - Double(logSumSquares[t])
            n += 1
        }
        return exp(sum / max(n, 1))
    }
}

extension Objective {
    /// Whether the loss reads WPO's weights (`DPO.useWeighting`): the forward then computes each position's
    /// log sum_v p(v)^2 (`LlamaModel.forward(_:training:logSumSquares:)`).
    public var readsLogSumSquares: Bool { dpo?.useWeighting ?? false }

    /// The pair loss of a pairwise objective: its own (`PairObjective`), or SPIN's (the DPO loss, no label smoothing).
    var pairObjective: any PairObjective {
        switch self {
        case .pair(let p): return p
        case let .spin(_, beta, _, _, _): return DPO(beta: beta, labelSmoothing: 0)
        case .sft, .coh, .reward, .kto, .ppo: preconditionFailure("Objective.pairObjective: \(kind) trains on no pairs")
        }
    }

    /// Scale of the implicit rewards in the metrics: the pair objective's (beta, or for IPO tau), KTO's beta, else 1.
    var rewardScale: Double {
        switch self {
        case .pair, .spin: return pairObjective.rewardScale
        case .kto(let beta, _, _, _): return beta
        case .sft, .coh, .reward, .ppo: return 1
        }
    }

    /// Mean over pairs of the pair objective's loss (`PairObjective.pairLoss`: summed log-probabilities of the policy and
    /// the reference, token counts). Writes dLoss/dlp_t = w_t * dLoss/dpi_c / P on chosen spans and w_t * dLoss/dpi_r / P
    /// on rejected spans (0 elsewhere); for the margin losses dLoss/dpi_r = -dLoss/dpi_c = -dh.
    /// Metrics (TRL names, means over pairs): rewards/chosen = s (pi_c - ref_c), rewards/rejected =
    /// s (pi_r - ref_r), rewards/margins = their difference, rewards/accuracy (and TRL's plural rewards/accuracies, the same
    /// value) = fraction of pairs with
    /// rewards/chosen > rewards/rejected, logps/chosen = pi_c, logps/rejected = pi_r; s is `rewardScale`; a loss on
    /// per-token averages (SimPO) reports those averages instead of the sums, and a reference-free one no ref
    /// (`PairObjective.logps`, `rewards`).
    /// With `sequenceWeights` (WPO's, one per span), each pair's `PairQuantities.weight` is w_c w_r and the metric
    /// `wpo/weight` their mean.
    func preferenceLoss(
        logprobs: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, spans: [SequenceSpan], reference: [Double],
        sequenceWeights: [Double]? = nil, dLogprobs: UnsafeMutableBufferPointer<Float>
    ) -> ObjectiveResult {
        let objective = pairObjective
        precondition(spans.count % 2 == 0, "Objective: preference batches hold (chosen, rejected) span pairs")
        precondition(reference.count == spans.count, "Objective: \(reference.count) reference values for \(spans.count) spans")
        let pairs = spans.count / 2
        dLogprobs.update(repeating: 0)
        guard pairs > 0 else { return ObjectiveResult(loss: 0, metrics: ["pairs": 0]) }
        let pi = sequenceLogprobs(logprobs: logprobs, weights: weights, spans: spans)
        // token counts: the trained positions (LD-DPO's tail weighs alpha in the sums but counts as a token)
        let n = spans.map { s in Double(s.range.filter { weights[$0] != 0 }.count) }
        let inv = 1 / Double(pairs)
        var rc = 0.0, rr = 0.0, acc = 0.0, lc = 0.0, lr = 0.0
        let quantities = (0..<pairs).map { i in
            PairQuantities(policyChosen: pi[2 * i], policyRejected: pi[2 * i + 1], referenceChosen: reference[2 * i],
                           referenceRejected: reference[2 * i + 1], chosenTokens: n[2 * i], rejectedTokens: n[2 * i + 1],
                           weight: sequenceWeights.map { $0[2 * i] * $0[2 * i + 1] } ?? 1)
        }
        let (loss, gc, gr) = objective.batchLoss(quantities)
        for (i, q) in quantities.enumerated() {
            let rewards = objective.rewards(q), logps = objective.logps(q)
            rc += rewards.chosen
            rr += rewards.rejected
            if rewards.chosen > rewards.rejected { acc += 1 }
            lc += logps.chosen
            lr += logps.rejected
            for t in spans[2 * i].range { dLogprobs[t] += Float(Double(weights[t]) * gc[i]) }
            for t in spans[2 * i + 1].range { dLogprobs[t] += Float(Double(weights[t]) * gr[i]) }
        }
        var metrics = [
            "pairs": Double(pairs),
            "rewards/chosen": rc * inv, "rewards/rejected": rr * inv, "rewards/margins": (rc - rr) * inv,
            "rewards/accuracy": acc * inv, "rewards/accuracies": acc * inv, "logps/chosen": lc * inv, "logps/rejected": lr * inv,
        ]
        if sequenceWeights != nil { metrics["wpo/weight"] = quantities.reduce(0) { $0 + $1.weight } * inv }
        metrics.merge(objective.metrics(quantities)) { shared, _ in shared }
        return ObjectiveResult(loss: loss, metrics: metrics)
    }
}

/// log(1 + e^x) without overflow.
func softplus(_ x: Double) -> Double { max(x, 0) + log1p(exp(-abs(x))) }

func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }
