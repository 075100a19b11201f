import Base
import Foundation
import XCTest
@testable import Kernels

/// Each op: forward against a Double reference written from the formula, backward against finite differences.
final class KernelGradientTests: XCTestCase {
    func testRMSNorm() {
        var rng = TestRNG(2)
        let n = 4, c = 8, eps: Float = 1e-5
        var x = rng.array(n * c, 2), w = rng.array(c, 1.5)
        let r = rng.array(n * c)
        func fwd(_ x: [Float], _ w: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: n * c), rstd = [Float](repeating: 0, count: n)
            rmsnormForward(&out, &rstd, x, w, n: n, c: c, eps: eps)
            return out
        }
        let out = fwd(x, w)
        for t in 0..<n {
            var ss = 0.0
            for i in 0..<c { ss += Double(x[t * c + i]) * Double(x[t * c + i]) }
            let rs = 1 / (ss / Double(c) + Double(eps)).squareRoot()
            for i in 0..<c {
                XCTAssertEqual(Double(out[t * c + i]), Double(x[t * c + i]) * rs * Double(w[i]), accuracy: 1e-5)
            }
        }
        var tmp = [Float](repeating: 0, count: n * c), rstd = [Float](repeating: 0, count: n)
        rmsnormForward(&tmp, &rstd, x, w, n: n, c: c, eps: eps)
        // Backward adds: start from ones and subtract them afterwards.
        var dx = [Float](repeating: 1, count: n * c), dw = [Float](repeating: 1, count: c)
        rmsnormBackward(&dx, &dw, r, x, w, rstd, n: n, c: c)
        dx = dx.map { $0 - 1 }
        dw = dw.map { $0 - 1 }
        checkGradient("rmsnorm dx", &x, analytic: dx) { dot(r, fwd($0, w)) }
        checkGradient("rmsnorm dweight", &w, analytic: dw) { dot(r, fwd(x, $0)) }
    }

    /// The fused SwiGLU the model runs: gateUp rows are gate | up (one sgemm against adjacent weights).
    func testSwiGLU() {
        var rng = TestRNG(3)
        let n = 3, f = 8
        var gateUp = rng.array(n * 2 * f, 4)
        let r = rng.array(n * f)
        func fwd(_ gu: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: n * f)
            swigluFusedForward(&out, gu, n: n, f: f)
            return out
        }
        let out = fwd(gateUp)
        for t in 0..<n {
            for i in 0..<f {
                let g = Double(gateUp[t * 2 * f + i]), u = Double(gateUp[t * 2 * f + f + i])
                XCTAssertEqual(Double(out[t * f + i]), g / (1 + exp(-g)) * u, accuracy: 1e-5)
            }
        }
        var dGateUp = [Float](repeating: .nan, count: n * 2 * f)  // written, not added to
        swigluFusedBackward(&dGateUp, r, gateUp, n: n, f: f)
        checkGradient("swiglu dgate|dup", &gateUp, analytic: dGateUp) { dot(r, fwd($0)) }
    }

    /// The gradient check itself must fail on a wrong, a NaN or an infinite gradient.
    func testTheGradientCheckFailsOnNaNAndInfinity() {
        var x: [Float] = [0.5, -1, 2]
        let loss = { (x: [Float]) in x.reduce(0.0) { $0 + Double($1 * $1) } }
        XCTAssertNil(gradientMismatch("exact", &x, analytic: x.map { 2 * $0 }, loss))
        XCTAssertNotNil(gradientMismatch("wrong", &x, analytic: [1, -2, 4.5], loss))
        XCTAssertNotNil(gradientMismatch("nan", &x, analytic: [1, .nan, 4], loss))
        XCTAssertNotNil(gradientMismatch("inf", &x, analytic: [1, -2, .infinity], loss))
        XCTAssertNotNil(gradientMismatch("nan loss", &x, analytic: [1, -2, 4]) { _ in .nan })
    }

    func testResidual() {
        var rng = TestRNG(4)
        let a = rng.array(10), b = rng.array(10)
        var out = [Float](repeating: 0, count: 10)
        residualForward(&out, a, b, n: 10)
        for i in 0..<10 { XCTAssertEqual(out[i], a[i] + b[i]) }
    }

    func testRoPEMatchesFormulaAndBackwardIsInverse() {
        var rng = TestRNG(5)
        let n = 3, heads = 2, hd = 6, base: Float = 500
        let positions: [Int32] = [0, 4, 2]
        let table = ropeTable(positions: 5, headDim: hd, base: base)
        let x0 = rng.array(n * heads * hd)
        var x = x0
        ropeForward(&x, positions: positions, n: n, heads: heads, headDim: hd, cos: table.cos, sin: table.sin)
        for t in 0..<n {
            for h in 0..<heads {
                for i in 0..<(hd / 2) {
                    let theta = Double(positions[t]) * pow(Double(base), -2 * Double(i) / Double(hd))
                    let o = t * heads * hd + h * hd + 2 * i
                    let a = Double(x0[o]), b = Double(x0[o + 1])
                    XCTAssertEqual(Double(x[o]), a * cos(theta) - b * sin(theta), accuracy: 1e-6)
                    XCTAssertEqual(Double(x[o + 1]), a * sin(theta) + b * cos(theta), accuracy: 1e-6)
                }
            }
        }
        // A rotation's transpose is its inverse.
        ropeBackward(&x, positions: positions, n: n, heads: heads, headDim: hd, cos: table.cos, sin: table.sin)
        for i in x.indices { XCTAssertEqual(x[i], x0[i], accuracy: 1e-6) }
    }

    /// Grouped-query attention with RoPE over a packed batch of two sequences of different lengths:
    /// forward against a Double reference, backward (through RoPE) against finite differences.
    func testPackedGQAAttentionWithRoPE() {
        var rng = TestRNG(6)
        let starts = [0, 5], n = 8, heads = 4, kvHeads = 2, hd = 4
        let qw = heads * hd, kw = kvHeads * hd, base: Float = 100
        let positions: [Int32] = [0, 1, 2, 3, 4, 0, 1, 2]
        let table = ropeTable(positions: 5, headDim: hd, base: base)
        var qRaw = rng.array(n * qw, 1.5), kRaw = rng.array(n * kw, 1.5), v = rng.array(n * kw)
        let r = rng.array(n * qw)
        let probsCount = attentionProbsCount(sequenceStarts: starts, n: n, heads: heads)
        XCTAssertEqual(probsCount, heads * (25 + 9))

        func fwd(_ qRaw: [Float], _ kRaw: [Float], _ v: [Float]) -> (out: [Float], q: [Float], k: [Float], probs: [Float]) {
            var q = qRaw, k = kRaw
            ropeForward(&q, positions: positions, n: n, heads: heads, headDim: hd, cos: table.cos, sin: table.sin)
            ropeForward(&k, positions: positions, n: n, heads: kvHeads, headDim: hd, cos: table.cos, sin: table.sin)
            var out = [Float](repeating: 0, count: n * qw), probs = [Float](repeating: 0, count: probsCount)
            attentionForward(&out, &probs, q, k, v, sequenceStarts: starts, n: n, heads: heads, kvHeads: kvHeads, headDim: hd)
            return (out, q, k, probs)
        }

        // Reference: rotate in Double, then plain loops; token t attends to s of its own sequence with s <= t.
        func rot(_ x: [Float], _ width: Int) -> [Double] {
            var y = x.map(Double.init)
            for t in 0..<n {
                for o in stride(from: 0, to: width, by: 2) {
                    let i = (o % hd) / 2
                    let th = Double(positions[t]) * pow(Double(base), -2 * Double(i) / Double(hd))
                    let a = Double(x[t * width + o]), b = Double(x[t * width + o + 1])
                    y[t * width + o] = a * cos(th) - b * sin(th)
                    y[t * width + o + 1] = a * sin(th) + b * cos(th)
                }
            }
            return y
        }
        let qd = rot(qRaw, qw), kd = rot(kRaw, kw)
        let result = fwd(qRaw, kRaw, v)
        for t in 0..<n {
            let seqStart = t < 5 ? 0 : 5
            for h in 0..<heads {
                let g = h / (heads / kvHeads)
                var scores: [Double] = []
                for s in seqStart...t {
                    var d = 0.0
                    for i in 0..<hd { d += qd[t * qw + h * hd + i] * kd[s * kw + g * hd + i] }
                    scores.append(d / Double(hd).squareRoot())
                }
                let mx = scores.max()!
                let e = scores.map { exp($0 - mx) }
                let z = e.reduce(0, +)
                for i in 0..<hd {
                    var o = 0.0
                    for (j, s) in (seqStart...t).enumerated() { o += e[j] / z * Double(v[s * kw + g * hd + i]) }
                    XCTAssertEqual(Double(result.out[t * qw + h * hd + i]), o, accuracy: 1e-5, "t \(t) h \(h) i \(i)")
                }
            }
        }

        var dq = [Float](repeating: 0, count: n * qw), dk = [Float](repeating: 0, count: n * kw)
        var dv = [Float](repeating: 0, count: n * kw)
        attentionBackward(&dq, &dk, &dv, r, result.probs, result.q, result.k, v,
                          sequenceStarts: starts, n: n, heads: heads, kvHeads: kvHeads, headDim: hd)
        ropeBackward(&dq, positions: positions, n: n, heads: heads, headDim: hd, cos: table.cos, sin: table.sin)
        ropeBackward(&dk, positions: positions, n: n, heads: kvHeads, headDim: hd, cos: table.cos, sin: table.sin)
        checkGradient("attention dq", &qRaw, analytic: dq) { dot(r, fwd($0, kRaw, v).out) }
        checkGradient("attention dk", &kRaw, analytic: dk) { dot(r, fwd(qRaw, $0, v).out) }
        checkGradient("attention dv", &v, analytic: dv) { dot(r, fwd(qRaw, kRaw, $0).out) }
    }

    /// Tied head: the embedding matrix is used for the input lookup and the output projection; the loss is a
    /// weighted sum of target log-probabilities over a mask (one row has target -1, one has weight 0).
    func testTiedHeadAndMaskedLogSoftmax() {
        var rng = TestRNG(7)
        let vocab = 11, c = 6, n = 5
        let tokens: [Int32] = [3, 7, 3, 0, 10]
        let targets: [Int32] = [7, 3, -1, 10, 2]
        let weights: [Float] = [1, 0.5, 0, 0, 2]
        var w = rng.array(vocab * c, 1.5), x = rng.array(n * c)
        let rows = (0..<n).filter { targets[$0] >= 0 }
        let compactTargets = rows.map { targets[$0] }
        let m = rows.count

        func fwd(_ w: [Float], _ x: [Float]) -> (lp: [Float], lse: [Float], compact: [Float], logits: [Float]) {
            var e = [Float](repeating: 0, count: n * c)
            embeddingForward(&e, tokens, w, n: n, c: c)
            var h = [Float](repeating: 0, count: n * c)
            residualForward(&h, e, x, n: n * c)
            var compact = [Float](repeating: 0, count: m * c)
            for (i, t) in rows.enumerated() { for j in 0..<c { compact[i * c + j] = h[t * c + j] } }
            var lp = [Float](repeating: 0, count: m), lse = [Float](repeating: 0, count: m)
            var scratch = [Float](repeating: 0, count: outputHeadScratchCount(m: m, v: vocab, chunk: 4, kept: false))
            outputHeadForward(&lp, &lse, scratch: &scratch, compact, w, compactTargets, m: m, v: vocab, c: c, chunk: 4)
            return (lp, lse, compact, [])
        }
        func loss(_ w: [Float], _ x: [Float]) -> Double {
            let lp = fwd(w, x).lp
            return rows.enumerated().reduce(0.0) { $0 + Double(weights[$1.element]) * Double(lp[$1.offset]) }
        }

        let f = fwd(w, x)
        for (i, t) in rows.enumerated() {
            var z = [Double](repeating: 0, count: vocab)
            for j in 0..<vocab {
                for k in 0..<c { z[j] += Double(w[Int(tokens[t]) * c + k] + x[t * c + k]) * Double(w[j * c + k]) }
            }
            let lse = log(z.map { exp($0) }.reduce(0, +))
            XCTAssertEqual(Double(f.lp[i]), z[Int(targets[t])] - lse, accuracy: 1e-5)
        }

        let dlp = rows.map { weights[$0] }
        var dcompact = [Float](repeating: 0, count: m * c), dw = [Float](repeating: 0, count: vocab * c)
        var scratch = [Float](repeating: 0, count: outputHeadScratchCount(m: m, v: vocab, chunk: 4, kept: false))
        outputHeadBackward(&dcompact, &dw, scratch: &scratch, dlp, f.compact, w, f.lse, compactTargets, m: m, v: vocab, c: c, chunk: 4)
        var dh = [Float](repeating: 0, count: n * c)
        for (i, t) in rows.enumerated() { for j in 0..<c { dh[t * c + j] = dcompact[i * c + j] } }
        // The residual passes its gradient to both inputs unchanged.
        let dx = dh
        embeddingBackward(&dw, dh, tokens, n: n, c: c)

        for j in 0..<c {
            XCTAssertEqual(dx[2 * c + j], 0, "target -1 row has no gradient")
            XCTAssertEqual(dx[3 * c + j], 0, "weight 0 row has no gradient")
        }
        checkGradient("tied head dW", &w, analytic: dw) { loss($0, x) }
        checkGradient("head dx", &x, analytic: dx) { loss(w, $0) }
    }

    /// Kernels split work across threads; each output is computed by one chunk, so results do not depend
    /// on the thread count.
    func testResultsDoNotDependOnThreadCount() {
        var rng = TestRNG(8)
        let n = 300, c = 64
        let x = rng.array(n * c), w = rng.array(c), g = rng.array(n * c)
        func run() -> [Float] {
            var out = [Float](repeating: 0, count: n * c), rstd = [Float](repeating: 0, count: n)
            rmsnormForward(&out, &rstd, x, w, n: n, c: c, eps: 1e-5)
            var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: c)
            rmsnormBackward(&dx, &dw, g, x, w, rstd, n: n, c: c)
            var s = [Float](repeating: 0, count: n * c)
            var gateUp: [Float] = []
            for t in 0..<n {
                gateUp += out[t * c..<(t + 1) * c]
                gateUp += g[t * c..<(t + 1) * c]
            }
            swigluFusedForward(&s, gateUp, n: n, f: c)
            return out + dx + dw + s
        }
        let saved = Threads.count
        Threads.count = 1
        let one = run()
        Threads.count = 2
        let two = run()
        Threads.count = saved
        XCTAssertEqual(one, two)
    }
}

final class AttentionThreadingTests: XCTestCase {
    /// Attention splits (sequence, head) work across threads by cost and blocks the causal square by 64 query
    /// rows; the results must be bit-identical for 1, 2 and 3 threads (uneven lengths, fused QKV strides).
    func testAttentionDoesNotDependOnThreadCount() {
        var rng = TestRNG(11)
        let starts = [0, 150, 220, 240], n = 300, heads = 4, kvHeads = 2, hd = 8
        let c = heads * hd, kv = kvHeads * hd, w3 = c + 2 * kv
        let qkv = rng.array(n * w3, 2), dout = rng.array(n * c)
        func run() -> [Float] {
            var out = [Float](repeating: 0, count: n * c)
            var probs = [Float](repeating: 0, count: attentionProbsCount(sequenceStarts: starts, n: n, heads: heads))
            var d = [Float](repeating: 0, count: n * w3)
            qkv.withUnsafeBufferPointer { x in
                let q = x.baseAddress!
                attentionForward(&out, &probs, q, q + c, q + c + kv, sequenceStarts: starts, n: n, heads: heads,
                                 kvHeads: kvHeads, headDim: hd, ldq: w3, ldk: w3, ldv: w3)
                d.withUnsafeMutableBufferPointer { g in
                    let dq = g.baseAddress!
                    attentionBackward(dq, dq + c, dq + c + kv, dout, probs, q, q + c, q + c + kv,
                                      sequenceStarts: starts, n: n, heads: heads, kvHeads: kvHeads, headDim: hd,
                                      ldq: w3, ldk: w3, ldv: w3)
                }
            }
            return out + probs + d
        }
        let saved = Threads.count
        defer { Threads.count = saved }
        Threads.count = 1
        let one = run()
        Threads.count = 2
        let two = run()
        Threads.count = 3
        let three = run()
        XCTAssertTrue(one.allSatisfy { $0.isFinite })
        XCTAssertEqual(one, two)
        XCTAssertEqual(one, three)
    }
}

final class VectorMathTests: XCTestCase {
    func testFastExpAccuracy() {
        var worst = 0.0
        var x: Float = -87
        while x < 88 {
            let rel = abs(Double(fastExp(x)) - exp(Double(x))) / exp(Double(x))
            worst = max(worst, rel)
            x += 0.01731
        }
        XCTAssertLessThan(worst, 5e-7)
        XCTAssertEqual(fastExp(-100), 0)
        XCTAssertEqual(fastExp(0), 1)
    }

    /// The 16-lane exp the row loops use is bit-identical to the scalar one, lane by lane, across the whole
    /// range, the clamps, and NaN.
    func testSixteenLaneExpMatchesScalarBitForBit() {
        var inputs: [Float] = [-1000, -87.31, -87.3, -87.29, -20, -1e-7, 0, 1e-7, 0.5, 88.69, 88.7, 88.71, 1000, .nan]
        var x: Float = -90
        while x < 90 { inputs.append(x); x += 0.0137 }
        while inputs.count % 16 != 0 { inputs.append(1) }
        for i in stride(from: 0, to: inputs.count, by: 16) {
            var v = SIMD16<Float>()
            for l in 0..<16 { v[l] = inputs[i + l] }
            let e = fastExp16(v)
            for l in 0..<16 {
                XCTAssertEqual(e[l].bitPattern, fastExp(v[l]).bitPattern, "x = \(v[l])")
            }
        }
    }

    func testLogSumExpOfLongRow() {
        var rng = TestRNG(9)
        let row = rng.array(1003, 20)
        let mx = Double(row.max()!)
        let ref = mx + log(row.reduce(0.0) { $0 + exp(Double($1) - mx) })
        XCTAssertEqual(Double(logSumExp(row, count: row.count)), ref, accuracy: 1e-5)
    }
}

final class LongAttentionTests: XCTestCase {
    /// Long sequences take the multi-threaded softmax path; forward against plain Double loops, and the
    /// backward's dV against its closed form P^T dO.
    func testLongPackedSequencesMatchReference() {
        var rng = TestRNG(10)
        let starts = [0, 300], n = 450, heads = 2, kvHeads = 1, hd = 8
        let q = rng.array(n * heads * hd, 2), k = rng.array(n * kvHeads * hd, 2), v = rng.array(n * kvHeads * hd)
        var out = [Float](repeating: 0, count: n * heads * hd)
        var probs = [Float](repeating: 0, count: attentionProbsCount(sequenceStarts: starts, n: n, heads: heads))
        attentionForward(&out, &probs, q, k, v, sequenceStarts: starts, n: n, heads: heads, kvHeads: kvHeads, headDim: hd)
        var worst = 0.0
        for t in stride(from: 0, to: n, by: 7) {
            let s0 = t < 300 ? 0 : 300
            for h in 0..<heads {
                var sc: [Double] = []
                for s in s0...t {
                    var d = 0.0
                    for i in 0..<hd { d += Double(q[(t * heads + h) * hd + i]) * Double(k[s * hd + i]) }
                    sc.append(d / Double(hd).squareRoot())
                }
                let mx = sc.max()!
                let e = sc.map { exp($0 - mx) }
                let z = e.reduce(0, +)
                for i in 0..<hd {
                    var o = 0.0
                    for (j, s) in (s0...t).enumerated() { o += e[j] / z * Double(v[s * hd + i]) }
                    worst = max(worst, abs(o - Double(out[(t * heads + h) * hd + i])))
                }
            }
        }
        XCTAssertLessThan(worst, 1e-5)
        // dV = sum over heads of P^T dO; with dO = 1 everywhere, dV[s] = (sum of column s of P over rows and heads) * 1.
        let ones = [Float](repeating: 1, count: n * heads * hd)
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count)
        var dv = [Float](repeating: 0, count: v.count)
        attentionBackward(&dq, &dk, &dv, ones, probs, q, k, v, sequenceStarts: starts, n: n,
                          heads: heads, kvHeads: kvHeads, headDim: hd)
        var base = 0
        for (s0, len) in [(0, 300), (300, 150)] {
            for j in stride(from: 0, to: len, by: 13) {
                var col = 0.0
                for h in 0..<heads { for i in 0..<len { col += Double(probs[base + h * len * len + i * len + j]) } }
                XCTAssertEqual(Double(dv[(s0 + j) * hd]), col, accuracy: 1e-3 * max(1, col))
            }
            base += heads * len * len
        }
        XCTAssertTrue(dq.allSatisfy { $0.isFinite } && dk.allSatisfy { $0.isFinite })
    }
}
