import Foundation
import Base
import XCTest
@testable import Kernels

final class OutputHeadTests: XCTestCase {
    /// WPO's log sum_j p_j^2 per row, chunked (4 + 4 + 3 columns, spread logits so the chunks' maxima differ), against a
    /// naive Double softmax of the same logits; the log-probabilities stay those of the head without it (bit for bit).
    /// Tolerance 1e-5: float32 exponentials (the head's expApprox, ~2 ulp) summed over 11 terms.
    func testLogSumSquaresMatchesANaiveDoubleSoftmax() {
        var rng = TestRNG(5)
        let m = 4, v = 11, c = 6, chunk = 4
        let targets: [Int32] = [1, 9, 4, 10]
        let w = rng.array(v * c, 3), x = rng.array(m * c, 3)
        var lp = [Float](repeating: 0, count: m), lse = [Float](repeating: 0, count: m), squares = [Float](repeating: .nan, count: m)
        var scratch = [Float](repeating: .nan, count: m * chunk)
        outputHeadForward(&lp, &lse, scratch: &scratch, x, w, targets, m: m, v: v, c: c, chunk: chunk, logSumSquares: &squares)
        var lpPlain = [Float](repeating: 0, count: m), lsePlain = [Float](repeating: 0, count: m)
        outputHeadForward(&lpPlain, &lsePlain, scratch: &scratch, x, w, targets, m: m, v: v, c: c, chunk: chunk)
        XCTAssertEqual(lp, lpPlain)
        XCTAssertEqual(lse, lsePlain)
        for r in 0..<m {
            let z = (0..<v).map { j in (0..<c).reduce(0.0) { $0 + Double(x[r * c + $1]) * Double(w[j * c + $1]) } }
            let top = z.max()!, total = z.reduce(0.0) { $0 + Foundation.exp($1 - top) }
            let naive = Foundation.log(z.reduce(0.0) { let p = Foundation.exp($1 - top) / total; return $0 + p * p })
            XCTAssertEqual(Double(squares[r]), naive, accuracy: 1e-5, "row \(r)")
            XCTAssertLessThanOrEqual(naive, 0)
            XCTAssertFalse(squares[r].isNaN)
        }
    }

    /// The chunked head (chunks of 4 columns over a vocabulary of 11: 4 + 4 + 3) against the whole-logits path
    /// (matmul, then logSoftmaxGather), forward and backward; one row has dlp 0. Then dW and dx against
    /// finite differences of the weighted sum of target log-probabilities.
    func testChunkedHeadMatchesWholeLogitsAndFiniteDifferences() {
        var rng = TestRNG(21)
        let m = 5, v = 11, c = 6, chunk = 4
        let targets: [Int32] = [7, 3, 10, 0, 4]
        let weights: [Float] = [1, 0.5, 0, -1, 2]
        var w = rng.array(v * c, 1.5), x = rng.array(m * c, 1.5)

        func chunked(_ w: [Float], _ x: [Float]) -> (lp: [Float], lse: [Float]) {
            var lp = [Float](repeating: 0, count: m), lse = [Float](repeating: 0, count: m)
            var scratch = [Float](repeating: .nan, count: m * chunk)
            outputHeadForward(&lp, &lse, scratch: &scratch, x, w, targets, m: m, v: v, c: c, chunk: chunk)
            return (lp, lse)
        }
        var logits = [Float](repeating: 0, count: m * v)
        matmul(&logits, x, w, m: m, n: v, k: c, transB: true)
        var lpRef = [Float](repeating: 0, count: m), lseRef = [Float](repeating: 0, count: m)
        logSoftmaxGatherForward(&lpRef, &lseRef, logits, targets, m: m, v: v)
        let f = chunked(w, x)
        for r in 0..<m {
            XCTAssertEqual(f.lp[r], lpRef[r], accuracy: 1e-5, "row \(r)")
            XCTAssertEqual(f.lse[r], lseRef[r], accuracy: 1e-5, "row \(r)")
        }
        // One chunk covering the whole vocabulary gives the same numbers too.
        var lp1 = [Float](repeating: 0, count: m), lse1 = [Float](repeating: 0, count: m)
        var big = [Float](repeating: 0, count: m * v)
        outputHeadForward(&lp1, &lse1, scratch: &big, x, w, targets, m: m, v: v, c: c, chunk: 1000)
        for r in 0..<m { XCTAssertEqual(lp1[r], lpRef[r], accuracy: 1e-5) }

        var dx = [Float](repeating: 0.25, count: m * c), dw = [Float](repeating: -0.5, count: v * c)
        var scratch = [Float](repeating: .nan, count: m * chunk)
        outputHeadBackward(&dx, &dw, scratch: &scratch, weights, x, w, f.lse, targets, m: m, v: v, c: c, chunk: chunk)
        // Reference: dlogits = dlp * (onehot(target) - softmax), from the reference logits.
        var dlogits = logits
        for r in 0..<m {
            for j in 0..<v {
                let p = exp(logits[r * v + j] - lseRef[r])
                dlogits[r * v + j] = weights[r] * ((j == Int(targets[r]) ? 1 : 0) - p)
            }
        }
        var dxRef = [Float](repeating: 0.25, count: m * c), dwRef = [Float](repeating: -0.5, count: v * c)
        matmul(&dxRef, dlogits, w, m: m, n: c, k: v, beta: 1)
        matmul(&dwRef, dlogits, x, m: v, n: c, k: m, transA: true, beta: 1)
        for i in dx.indices { XCTAssertEqual(dx[i], dxRef[i], accuracy: 1e-5, "dx \(i)") }
        for i in dw.indices { XCTAssertEqual(dw[i], dwRef[i], accuracy: 1e-5, "dw \(i)") }
        for j in 0..<c { XCTAssertEqual(dx[2 * c + j], 0.25, "a row with dlp 0 gets no gradient") }

        func loss(_ w: [Float], _ x: [Float]) -> Double {
            zip(chunked(w, x).lp, weights).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        checkGradient("head dW", &w, analytic: dw.map { $0 + 0.5 }) { loss($0, x) }
        checkGradient("head dx", &x, analytic: dx.map { $0 - 0.25 }) { loss(w, $0) }
    }
}

final class AttentionRecomputeTests: XCTestCase {
    /// With probs nil the forward keeps nothing and the backward recomputes the probabilities; outputs and
    /// gradients must be bit-identical to the stored path (uneven packed lengths, fused QKV strides, 1 and 2 threads).
    func testRecomputedProbabilitiesGiveIdenticalResults() {
        var rng = TestRNG(22)
        let starts = [0, 130, 200], n = 233, heads = 4, kvHeads = 2, hd = 8
        let c = heads * hd, kv = kvHeads * hd, w3 = c + 2 * kv
        let qkv = rng.array(n * w3, 2), dout = rng.array(n * c)
        func run(store: Bool) -> [Float] {
            var out = [Float](repeating: 0, count: n * c)
            var probs = [Float](repeating: 0, count: attentionProbsCount(sequenceStarts: starts, n: n, heads: heads))
            var d = [Float](repeating: 0, count: n * w3)
            qkv.withUnsafeBufferPointer { x in
                let q = x.baseAddress!
                probs.withUnsafeMutableBufferPointer { pb in
                    let p = store ? pb.baseAddress! : nil
                    attentionForward(&out, p, q, q + c, q + c + kv, sequenceStarts: starts, n: n, heads: heads,
                                     kvHeads: kvHeads, headDim: hd, ldq: w3, ldk: w3, ldv: w3)
                    d.withUnsafeMutableBufferPointer { g in
                        let dq = g.baseAddress!
                        attentionBackward(dq, dq + c, dq + c + kv, dout, p, q, q + c, q + c + kv,
                                          sequenceStarts: starts, n: n, heads: heads, kvHeads: kvHeads, headDim: hd,
                                          ldq: w3, ldk: w3, ldv: w3)
                    }
                }
            }
            return out + d
        }
        let saved = Threads.count
        defer { Threads.count = saved }
        for threads in [1, 2] {
            Threads.count = threads
            let stored = run(store: true), recomputed = run(store: false)
            XCTAssertTrue(stored.allSatisfy { $0.isFinite })
            XCTAssertTrue(stored.contains { $0 != 0 })
            XCTAssertEqual(stored, recomputed, "threads \(threads)")
        }
    }
}
