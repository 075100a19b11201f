import Base
import Foundation
@testable import Kernels
import XCTest

/// `compareDistributions` (issue 38: KL to the reference, where the mass went) against the obvious Double computation.
final class DistributionComparisonTests: XCTestCase {
    /// KL(q || p), KL(p || q) and argmax_v p(v) - q(v) from p = softmax(z), q = softmax(w) in Double.
    func naive(_ z: [Float], _ w: [Float]) -> (fromHeld: Double, toHeld: Double, gainToken: Int, gain: Double, margin: Double) {
        func softmax(_ x: [Float]) -> [Double] {
            let m = Double(x.max()!)
            let e = x.map { Foundation.exp(Double($0) - m) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        let p = softmax(z), q = softmax(w)
        var from = 0.0, to = 0.0
        for i in p.indices {
            if q[i] > 0 { from += q[i] * (Foundation.log(q[i]) - Foundation.log(p[i])) }
            if p[i] > 0 { to += p[i] * (Foundation.log(p[i]) - Foundation.log(q[i])) }
        }
        let d = zip(p, q).map { $0 - $1 }
        let best = d.indices.max { d[$0] < d[$1] || (d[$0] == d[$1] && $0 > $1) }!
        let second = d.indices.filter { $0 != best }.map { d[$0] }.max()!
        return (from, to, best, d[best], d[best] - second)
    }

    /// Random rows of several widths (16-lane body and tail), near and far pairs: both KLs within 1e-6 + 1e-4 relative
    /// (float exponentials and lanes against Double), the gain's token where the runner-up is more than 1e-5 behind,
    /// its value within 1e-6.
    func testTheComparisonMatchesANaiveDoubleComputation() {
        var rng = SplitMix64(seed: 4)
        for (v, spread) in [(259, 0.1), (1000, 1.0), (4099, 3.0), (49152, 0.5)] {
            let m = 6
            var z: [Float] = [], w: [Float] = []
            for _ in 0..<(m * v) {
                let a = Float(rng.normal() * 3)
                z.append(a)
                w.append(a + Float(rng.normal() * spread))
            }
            var out = [DistributionComparison](repeating: DistributionComparison(klFromHeld: 0, klToHeld: 0, gainToken: 0, gain: 0), count: m)
            out.withUnsafeMutableBufferPointer { o in
                z.withUnsafeBufferPointer { zp in
                    w.withUnsafeBufferPointer { wp in
                        o.baseAddress!.deinitialize(count: m)
                        compareDistributions(o.baseAddress!, now: zp.baseAddress!, held: wp.baseAddress!, m: m, v: v)
                    }
                }
            }
            for r in 0..<m {
                let n = naive(Array(z[(r * v)..<((r + 1) * v)]), Array(w[(r * v)..<((r + 1) * v)]))
                XCTAssertGreaterThan(n.fromHeld, 1e-3, "the rows differ")
                XCTAssertEqual(out[r].klFromHeld, n.fromHeld, accuracy: 1e-6 + 1e-4 * n.fromHeld, "v \(v) row \(r)")
                XCTAssertEqual(out[r].klToHeld, n.toHeld, accuracy: 1e-6 + 1e-4 * n.toHeld, "v \(v) row \(r)")
                if n.margin > 1e-5 { XCTAssertEqual(Int(out[r].gainToken), n.gainToken, "v \(v) row \(r)") }
                XCTAssertEqual(out[r].gain, n.gain, accuracy: 1e-6, "v \(v) row \(r)")
            }
        }
    }

    /// A distribution compared with itself: both KLs exactly 0 (the same logits give the same sums).
    func testARowAgainstItselfIsZero() {
        var rng = SplitMix64(seed: 8)
        let v = 1003
        let z = (0..<v).map { _ in Float(rng.normal() * 4) }
        var out = DistributionComparison(klFromHeld: 1, klToHeld: 1, gainToken: 0, gain: 1)
        z.withUnsafeBufferPointer { zp in compareDistributions(&out, now: zp.baseAddress!, held: zp.baseAddress!, m: 1, v: v) }
        XCTAssertEqual(out.klFromHeld, 0)
        XCTAssertEqual(out.klToHeld, 0)
        XCTAssertEqual(out.gain, 0)
    }
}
