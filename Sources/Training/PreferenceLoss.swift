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

extension Objective {
    /// Loss of one pair at log-ratio margin h, and dLoss/dh.
    func pairLoss(h: Double) -> (loss: Double, dh: Double) {
        switch self {
        case let .spin(_, beta, _, _, _):
            return Objective.dpo(beta: beta, labelSmoothing: 0).pairLoss(h: h)
        case let .dpo(beta, eps):
            let x = beta * h
            // -log sigmoid(x) = softplus(-x); d/dx = -sigmoid(-x).
            let loss = (1 - eps) * softplus(-x) + eps * softplus(x)
            let dx = -(1 - eps) * sigmoid(-x) + eps * sigmoid(x)
            return (loss, beta * dx)
        case let .ipo(tau):
            let d = h - 1 / (2 * tau)
            return (d * d, 2 * d)
        case let .hinge(beta):
            let m = 1 - beta * h
            return m > 0 ? (m, -beta) : (0, 0)
        case .sft, .coh, .reward, .kto, .ppo:
            preconditionFailure("Objective.pairLoss: \(self) is not a preference objective")
        }
    }

    /// Scale of the implicit rewards in the metrics: beta, or for IPO tau (TRL passes IPO's tau as `beta`).
    var rewardScale: Double {
        switch self {
        case let .dpo(beta, _), let .hinge(beta), let .spin(_, beta, _, _, _): return beta
        case let .ipo(tau): return tau
        case .kto(let beta, _, _, _): return beta
        case .sft, .coh, .reward, .ppo: return 1
        }
    }

    func validatePreferenceParameters() {
        switch self {
        case let .dpo(beta, eps):
            precondition(beta > 0 && eps >= 0 && eps < 0.5, "Objective.dpo: needs beta > 0 and 0 <= labelSmoothing < 0.5")
        case let .ipo(tau):
            precondition(tau > 0, "Objective.ipo: needs tau > 0")
        case let .hinge(beta), let .spin(_, beta, _, _, _):
            precondition(beta > 0, "Objective: needs beta > 0")
        case .sft, .coh, .reward, .kto, .ppo:
            break
        }
    }

    /// Mean over pairs of `pairLoss(h)`, with h = (pi_c - ref_c) - (pi_r - ref_r). Writes
    /// dLoss/dlp_t = +w_t * dh / P on chosen spans and -w_t * dh / P on rejected spans (0 elsewhere).
    /// Metrics (TRL names, means over pairs): rewards/chosen = s (pi_c - ref_c), rewards/rejected =
    /// s (pi_r - ref_r), rewards/margins = their difference, rewards/accuracy = fraction of pairs with
    /// rewards/chosen > rewards/rejected, logps/chosen = pi_c, logps/rejected = pi_r; s is `rewardScale`.
    func preferenceLoss(
        logprobs: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, spans: [SequenceSpan], reference: [Double],
        dLogprobs: UnsafeMutableBufferPointer<Float>
    ) -> ObjectiveResult {
        validatePreferenceParameters()
        precondition(spans.count % 2 == 0, "Objective: preference batches hold (chosen, rejected) span pairs")
        precondition(reference.count == spans.count, "Objective: \(reference.count) reference values for \(spans.count) spans")
        let pairs = spans.count / 2
        dLogprobs.update(repeating: 0)
        guard pairs > 0 else { return ObjectiveResult(loss: 0, metrics: ["pairs": 0]) }
        let pi = sequenceLogprobs(logprobs: logprobs, weights: weights, spans: spans)
        let s = rewardScale, inv = 1 / Double(pairs)
        var loss = 0.0, rc = 0.0, rr = 0.0, acc = 0.0, lc = 0.0, lr = 0.0
        for i in 0..<pairs {
            let c = 2 * i, r = 2 * i + 1
            let dc = pi[c] - reference[c], dr = pi[r] - reference[r]
            let (l, dh) = pairLoss(h: dc - dr)
            loss += l
            rc += s * dc
            rr += s * dr
            if s * dc > s * dr { acc += 1 }
            lc += pi[c]
            lr += pi[r]
            let g = dh * inv
            for t in spans[c].range { dLogprobs[t] += Float(Double(weights[t]) * g) }
            for t in spans[r].range { dLogprobs[t] -= Float(Double(weights[t]) * g) }
        }
        return ObjectiveResult(loss: loss * inv, metrics: [
            "pairs": Double(pairs),
            "rewards/chosen": rc * inv, "rewards/rejected": rr * inv, "rewards/margins": (rc - rr) * inv,
            "rewards/accuracy": acc * inv, "logps/chosen": lc * inv, "logps/rejected": lr * inv,
        ])
    }
}

/// log(1 + e^x) without overflow.
func softplus(_ x: Double) -> Double { max(x, 0) + log1p(exp(-abs(x))) }

func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }
