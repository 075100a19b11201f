import Base
import Foundation

// The shape of one next-token distribution p = softmax(z) over the vocabulary, read at a response token y:
// everything the probe measures need (Base.Measure), from two passes over the row of logits.
//
// Pass 1 is `rowMax` (M = max z). Pass 2 computes e_j = exp(z_j - M) once per entry and accumulates, in
// sixteen lanes then the tail, in a fixed order:
//   S = sum_j e_j                       (exactly `rowExpSum`'s sum, so log p(y) is bit-identical to
//                                        `logSoftmaxGatherForward`'s)
//   O = sum_{j: z_j < M} e_j            (the mass outside the maxima, unnormalised)
//   Q = sum_{j: z_j < M} e_j^2
//   T = sum_j e_j (z_j - M)
// and counts the k entries equal to M (e = 1 each). Then, with p_j = e_j / S:
//   log max p      = -log S
//   1 - max p      = (O + k - 1) / S     (no cancellation: O is summed apart from the 1 of the maximum)
//   H(p)           = log S - T / S
//   sum_j p_j^2    = (Q + k) / S^2
//   1 - p(y)       = (O + k - 1) / S when z_y = M, else (S - e_y) / S (then p(y) <= 1/2)
//   ||p - e_y||^2  = sum_{j != y} p_j^2 + (1 - p(y))^2
// The argmax is the first index holding M (as `BatchSession.argmax` picks it).

/// What the probe measures read from one position's next-token distribution.
public struct TokenDistribution: Sendable, Equatable {
    /// log p(y): the response token's log-probability.
    public var logprob: Float
    /// The most likely token (the first one on ties).
    public var argmax: Int32
    /// Whether y is a most likely token (its logit is the maximum).
    public var targetIsMax: Bool
    /// log max_v p(v).
    public var logMax: Double
    /// log(1 - max_v p(v)); -infinity when the distribution is one-hot in float.
    public var logExceptMax: Double
    /// Entropy of p in nats.
    public var entropy: Double
    /// 1 - p(y).
    public var oneMinusTarget: Double
    /// ||p||_2.
    public var norm: Double
    /// ||p - onehot(y)||_2.
    public var distanceToTarget: Double

    public init(logprob: Float, argmax: Int32, targetIsMax: Bool, logMax: Double, logExceptMax: Double, entropy: Double,
                oneMinusTarget: Double, norm: Double, distanceToTarget: Double) {
        self.logprob = logprob
        self.argmax = argmax
        self.targetIsMax = targetIsMax
        self.logMax = logMax
        self.logExceptMax = logExceptMax
        self.entropy = entropy
        self.oneMinusTarget = oneMinusTarget
        self.norm = norm
        self.distanceToTarget = distanceToTarget
    }
}

/// For each of m rows of logits (m, v) and its target token: the row's `TokenDistribution`.
/// `out[r].logprob` equals `logSoftmaxGatherForward`'s lp[r] bit for bit.
public func tokenDistributions(
    _ out: UnsafeMutablePointer<TokenDistribution>, _ logits: UnsafePointer<Float>, _ targets: UnsafePointer<Int32>,
    m: Int, v: Int
) {
    let o = SendablePointer(out), z = SendablePointer(UnsafeMutablePointer(mutating: logits)), tg = SendablePointer(targets)
    parallelFor(m, grain: max(1, 8192 / max(v, 1))) { rows in
        for r in rows {
            (o.p + r).initialize(to: tokenDistribution(z.p + r * v, v: v, target: Int(tg.p[r])))
        }
    }
}

@inline(__always)
private func tokenDistribution(_ row: UnsafePointer<Float>, v: Int, target: Int) -> TokenDistribution {
    let mx = rowMax(row, v)
    let mxv = Float16x(repeating: mx)
    var s16 = Float16x(), o16 = Float16x(), q16 = Float16x(), t16 = Float16x()
    var ties16 = SIMD16<Int32>()
    var first = -1
    var j = 0
    while j + 16 <= v {
        let x = load16(row + j)
        let d = x - mxv
        let e = expApprox(d)
        s16 += e
        t16 += e * d
        let top = x .== mxv
        let rest = e.replacing(with: 0, where: top)
        o16 += rest
        q16 += rest * rest
        if any(top) {
            ties16 &+= SIMD16<Int32>(repeating: 0).replacing(with: 1, where: top)
            if first < 0 { for i in 0..<16 where top[i] { first = j + i; break } }
        }
        j += 16
    }
    var s = laneSum(s16), other = laneSum(o16), squares = laneSum(q16), tilt = laneSum(t16)
    var ties = Int(ties16.wrappedSum())
    while j < v {
        let d = row[j] - mx
        let e = expApprox(d)
        s += e
        tilt += e * d
        if row[j] == mx {
            ties += 1
            if first < 0 { first = j }
        } else {
            other += e
            squares += e * e
        }
        j += 1
    }
    let lse = mx + logf(s)
    let lp = row[target] - lse
    let sum = Double(s), k = Double(ties)
    let outside = Double(other) + (k - 1)  // unnormalised 1 - max p
    let isTop = row[target] == mx
    let eTarget = isTop ? 1.0 : Double(expApprox(row[target] - mx))
    let oneMinusTarget = isTop ? outside / sum : (sum - eTarget) / sum
    let sumSquares = (Double(squares) + k) / (sum * sum)
    let othersSquared = max(0, sumSquares - (eTarget * eTarget) / (sum * sum))
    return TokenDistribution(
        logprob: lp, argmax: Int32(max(first, 0)), targetIsMax: isTop, logMax: -log(sum), logExceptMax: log(outside) - log(sum),
        entropy: max(0, log(sum) - Double(tilt) / sum), oneMinusTarget: oneMinusTarget, norm: sumSquares.squareRoot(),
        distanceToTarget: (othersSquared + oneMinusTarget * oneMinusTarget).squareRoot())
}

/// The distributional measures (`Measure.distributional`) of one response from the distributions at its
/// positions, in that order; accumulated in Double. An empty response gives zeros.
public func measureValues(_ tokens: [TokenDistribution]) -> [(measure: Measure, value: Double)] {
    let n = Double(max(tokens.count, 1))
    var logprob = 0.0, logMax = 0.0, matches = 0.0, exceptMax = 0.0, entropy = 0.0, energy = 0.0, pE = 0.0, peak = 0.0
    for t in tokens {
        logprob += Double(t.logprob)
        logMax += t.logMax
        exceptMax += t.logExceptMax
        entropy += t.entropy
        energy += t.oneMinusTarget
        pE += t.distanceToTarget
        peak += t.norm
        if t.targetIsMax { matches += 1 }
    }
    return [
        (.meanTokenLogprob, logprob / n), (.argmaxLogprob, logMax), (.argmaxMatch, matches / n),
        (.exceptArgmax, exceptMax), (.entropy, entropy / n), (.energy, energy / n), (.pE, pE / n), (.peakiness, peak / n),
    ]
}
