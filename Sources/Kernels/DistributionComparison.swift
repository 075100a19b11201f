import Base
import Foundation

// Two next-token distributions over the same vocabulary at one position, p = softmax(z) (the model now) and
// q = softmax(w) (held: the reference model, or these weights at the start), compared from their logits.
// With a = z - max z, b = w - max w, S_p = sum e^a, S_q = sum e^b:
//   KL(q || p) = sum q (log q - log p) = (1/S_q) sum e^b (b - a) - log S_q + log S_p
//   KL(p || q) = sum p (log p - log q) = (1/S_p) sum e^a (a - b) - log S_p + log S_q
// summed in sixteen float lanes then in Double (identical rows give exactly 0: b - a = 0 and S_p = S_q), and
//   the gain: argmax_v p(v) - q(v) (the first on ties), with its value p(v) - q(v).

/// How one position's distribution compares with the held one.
public struct DistributionComparison: Sendable, Equatable {
    /// KL(held || now) in nats.
    public var klFromHeld: Double
    /// KL(now || held) in nats.
    public var klToHeld: Double
    /// The token whose probability rose most (now minus held), and by how much.
    public var gainToken: Int32
    public var gain: Double

    public init(klFromHeld: Double, klToHeld: Double, gainToken: Int32, gain: Double) {
        self.klFromHeld = klFromHeld
        self.klToHeld = klToHeld
        self.gainToken = gainToken
        self.gain = gain
    }
}

/// For each of m rows, `now` (m, v) against `held` (m, v) logits: `DistributionComparison`. Rows split over threads.
public func compareDistributions(_ out: UnsafeMutablePointer<DistributionComparison>, now: UnsafePointer<Float>,
                                 held: UnsafePointer<Float>, m: Int, v: Int) {
    let o = SendablePointer(out), z = SendablePointer(now), w = SendablePointer(held)
    parallelFor(m, grain: max(1, 8192 / max(v, 1))) { rows in
        for r in rows {
            (o.p + r).initialize(to: compareRow(z.p + r * v, w.p + r * v, v: v))
        }
    }
}

@inline(__always)
private func compareRow(_ z: UnsafePointer<Float>, _ w: UnsafePointer<Float>, v: Int) -> DistributionComparison {
    let mz = rowMax(z, v), mw = rowMax(w, v)
    let mzv = Float16x(repeating: mz), mwv = Float16x(repeating: mw)
    var sp16 = Float16x(), sq16 = Float16x(), fromHeld16 = Float16x(), toHeld16 = Float16x()
    var j = 0
    while j + 16 <= v {
        let a = load16(z + j) - mzv, b = load16(w + j) - mwv
        let ea = expApprox(a), eb = expApprox(b)
        sp16 += ea
        sq16 += eb
        fromHeld16 += eb * (b - a)
        toHeld16 += ea * (a - b)
        j += 16
    }
    var sp = laneSum(sp16), sq = laneSum(sq16), fromHeld = laneSum(fromHeld16), toHeld = laneSum(toHeld16)
    while j < v {
        let a = z[j] - mz, b = w[j] - mw
        let ea = expApprox(a), eb = expApprox(b)
        sp += ea
        sq += eb
        fromHeld += eb * (b - a)
        toHeld += ea * (a - b)
        j += 1
    }
    let logSp = log(Double(sp)), logSq = log(Double(sq))
    // the gain: p(v) - q(v) = e^a / S_p - e^b / S_q
    let ip = 1 / sp, iq = 1 / sq
    let ip16 = Float16x(repeating: ip), iq16 = Float16x(repeating: iq)
    var best16 = Float16x(repeating: -.infinity), at16 = SIMD16<Int32>(repeating: 0)
    let lane = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    j = 0
    while j + 16 <= v {
        let d = expApprox(load16(z + j) - mzv) * ip16 - expApprox(load16(w + j) - mwv) * iq16
        let better = d .> best16
        best16 = best16.replacing(with: d, where: better)
        at16 = at16.replacing(with: lane &+ Int32(j), where: better)
        j += 16
    }
    var best = -Float.infinity, bestIndex = Int32.max
    for i in 0..<16 where best16[i] > best || (best16[i] == best && at16[i] < bestIndex) {
        best = best16[i]
        bestIndex = at16[i]
    }
    while j < v {
        let d = expApprox(z[j] - mz) * ip - expApprox(w[j] - mw) * iq
        if d > best { best = d; bestIndex = Int32(j) }
        j += 1
    }
    return DistributionComparison(
        klFromHeld: max(0, Double(fromHeld) / Double(sq) - logSq + logSp),
        klToHeld: max(0, Double(toHeld) / Double(sp) - logSp + logSq),
        gainToken: bestIndex, gain: Double(best))
}
