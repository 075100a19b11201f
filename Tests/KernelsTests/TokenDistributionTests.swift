import Base
import Foundation
@testable import Kernels
import XCTest

/// `tokenDistributions` and `measureValues` against a naive computation over the full softmax in Double.
final class TokenDistributionTests: XCTestCase {
    /// Everything the measures need, computed the obvious way: p = softmax(z) in Double.
    struct Naive {
        var logprob, logMax, logExceptMax, entropy, oneMinusTarget, norm, distance: Double
        var argmax: Int
        var targetIsMax: Bool

        init(_ z: [Float], target y: Int) {
            let zd = z.map(Double.init)
            let m = zd.max()!
            let e = zd.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            let p = e.map { $0 / s }
            let top = zd.firstIndex(of: m)!
            argmax = top
            targetIsMax = zd[y] == m
            logprob = Foundation.log(p[y])
            logMax = Foundation.log(p[top])
            // 1 - max p as the sum of the other entries (1 - p in Double would lose the small ones)
            logExceptMax = Foundation.log(p.enumerated().filter { $0.offset != top }.map(\.element).reduce(0, +))
            entropy = -p.reduce(0) { $0 + ($1 > 0 ? $1 * Foundation.log($1) : 0) }
            oneMinusTarget = p.enumerated().filter { $0.offset != y }.map(\.element).reduce(0, +)
            norm = p.reduce(0) { $0 + $1 * $1 }.squareRoot()
            distance = p.enumerated().reduce(0) { $0 + ($1.offset == y ? (1 - $1.element) * (1 - $1.element) : $1.element * $1.element) }.squareRoot()
        }
    }

    /// Rows at several temperatures (flat to nearly one-hot), with ties, targets at and away from the
    /// argmax, and a vocabulary that is not a multiple of 16 (the tail loop runs).
    func rows(v: Int, seed: UInt64) -> (logits: [Float], targets: [Int32], m: Int) {
        var rng = TestRNG(seed)
        var logits: [Float] = [], targets: [Int32] = []
        let scales: [Float] = [0.01, 1, 4, 12, 30]
        for (i, scale) in scales.enumerated() {
            for variant in 0..<4 {
                var row = rng.array(v, scale)
                var top = row.indices.max { row[$0] < row[$1] }!
                if variant == 1 {  // a tie for the maximum, the second copy in the tail
                    row[v - 1] = row[top]
                } else if variant == 2 {  // a dominant token: p(max) within 1e-6 of 1 in Double
                    top = (i * 131) % v
                    row[top] = (row.max() ?? 0) + 40
                }
                logits += row
                let target = variant == 3 ? (top + 7) % v : (variant == 1 ? v - 1 : top)
                targets.append(Int32(target))
            }
        }
        return (logits, targets, targets.count)
    }

    func testEveryFieldMatchesTheNaiveDoubleSoftmax() {
        for v in [1, 17, 1000, 4099] {
            let (logits, targets, m) = rows(v: v, seed: UInt64(v))
            let out = [TokenDistribution](unsafeUninitializedCapacity: m) { buffer, count in
                tokenDistributions(buffer.baseAddress!, logits, targets, m: m, v: v)
                count = m
            }
            for r in 0..<m {
                let row = Array(logits[r * v..<(r + 1) * v])
                let naive = Naive(row, target: Int(targets[r]))
                let got = out[r]
                let label = "v=\(v) row \(r)"
                XCTAssertEqual(Int(got.argmax), naive.argmax, label)
                XCTAssertEqual(got.targetIsMax, naive.targetIsMax, label)
                close(Double(got.logprob), naive.logprob, 2e-5, "\(label) logprob")
                close(got.logMax, naive.logMax, 2e-5, "\(label) logMax")
                if v > 1 {
                    // log of a small mass: compare relative to the mass itself (its log to ~1e-4)
                    close(got.logExceptMax, naive.logExceptMax, 1e-4, "\(label) logExceptMax")
                } else {
                    XCTAssertEqual(got.logExceptMax, -.infinity, label)
                }
                close(got.entropy, naive.entropy, 2e-5 + 1e-5 * naive.entropy, "\(label) entropy")
                close(got.oneMinusTarget, naive.oneMinusTarget, 1e-6 + 1e-4 * naive.oneMinusTarget, "\(label) 1 - p(y)")
                close(got.norm, naive.norm, 1e-6, "\(label) norm")
                close(got.distanceToTarget, naive.distance, 1e-6 + 1e-4 * naive.distance, "\(label) distance")
            }
        }
    }

    /// The logprob is the number the plain log-softmax gather gives, bit for bit (recorded log-probabilities
    /// do not move because the measures are computed beside them).
    func testLogprobIsBitIdenticalToTheGather() {
        let v = 4099
        let (logits, targets, m) = rows(v: v, seed: 3)
        var lp = [Float](repeating: 0, count: m), lse = [Float](repeating: 0, count: m)
        logSoftmaxGatherForward(&lp, &lse, logits, targets, m: m, v: v)
        let out = [TokenDistribution](unsafeUninitializedCapacity: m) { buffer, count in
            tokenDistributions(buffer.baseAddress!, logits, targets, m: m, v: v)
            count = m
        }
        for r in 0..<m { XCTAssertEqual(out[r].logprob.bitPattern, lp[r].bitPattern, "row \(r)") }
    }

    /// The per-response measures against their definitions, computed from the naive per-position values.
    func testMeasuresOfAResponseMatchTheirDefinitions() {
        let v = 1000
        let (logits, targets, m) = rows(v: v, seed: 11)
        let out = [TokenDistribution](unsafeUninitializedCapacity: m) { buffer, count in
            tokenDistributions(buffer.baseAddress!, logits, targets, m: m, v: v)
            count = m
        }
        let naive = (0..<m).map { Naive(Array(logits[$0 * v..<($0 + 1) * v]), target: Int(targets[$0])) }
        let l = Double(m)
        let expected: [Measure: Double] = [
            .meanTokenLogprob: naive.reduce(0) { $0 + $1.logprob } / l,
            .argmaxLogprob: naive.reduce(0) { $0 + $1.logMax },
            .argmaxMatch: Double(naive.filter(\.targetIsMax).count) / l,
            .exceptArgmax: naive.reduce(0) { $0 + $1.logExceptMax },
            .entropy: naive.reduce(0) { $0 + $1.entropy } / l,
            .energy: naive.reduce(0) { $0 + $1.oneMinusTarget } / l,
            .pE: naive.reduce(0) { $0 + $1.distance } / l,
            .peakiness: naive.reduce(0) { $0 + $1.norm } / l,
        ]
        let got = measureValues(out)
        XCTAssertEqual(got.map(\.measure), Measure.distributional)
        for (measure, value) in got {
            let want = expected[measure]!
            close(value, want, 1e-4 * max(1, abs(want)), measure.rawValue)
        }
        // a match share strictly between 0 and 1: the rows above mix targets at and away from the argmax
        XCTAssert(expected[.argmaxMatch]! > 0 && expected[.argmaxMatch]! < 1)
    }

    func close(_ a: Double, _ b: Double, _ tol: Double, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        // written so that NaN fails
        if !(abs(a - b) <= tol) || a.isNaN || (a.isInfinite != b.isInfinite) {
            XCTFail("\(label): \(a) vs naive \(b) (tolerance \(tol))", file: file, line: line)
        }
    }
}
