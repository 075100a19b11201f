import Base
import Foundation

// The output head (logits = x W^T over the vocabulary) fused with the log-softmax gathered at the target,
// computed over chunks of vocabulary columns. Two ways to hold the logits: one chunk at a time in a scratch
// block that every chunk reuses (backward then recomputes each chunk's logits: one more head product,
// 2 m v c FLOPs), or `kept`, every chunk in its own block, which backward reads back (for SmolLM2 at
// 4 x 256 that is 1020 x 49152 floats, 192 MiB, and saves 0.3 s of a 6 s training step). The arithmetic is
// the same either way, so both give bit-identical results.

/// Floats of scratch the head needs: one chunk's block, or with `kept` one block per chunk.
public func outputHeadScratchCount(m: Int, v: Int, chunk: Int, kept: Bool) -> Int {
    let block = m * min(chunk, v)
    return kept ? block * ((v + chunk - 1) / chunk) : block
}

/// x: (m, c) hidden rows; w: (v, c) head weights, row-major; targets: (m), each in 0..<v.
/// lp: (m) = log softmax(x W^T)[r][targets[r]]; lse: (m) = logsumexp of each row of logits, for backward.
/// scratch: `outputHeadScratchCount(m:v:chunk:kept:)` floats; with `kept` it holds every chunk's logits
/// afterwards (chunk i as an (m, cols) block at scratch + i * m * min(chunk, v)) for `outputHeadBackward`.
/// The logsumexp is combined chunk by chunk (running maximum and rescaled sum), so each row's result depends
/// only on that row and `chunk`, not on m, the thread count or `kept`.
/// With `logSumSquares` (m floats), also log sum_j p_j^2 of each row's softmax p (the log collision probability, WPO's
/// per-token normaliser): log sum_j e^(2 z_j) - 2 logsumexp(z), its sum kept beside the logsumexp's, rescaled alike.
public func outputHeadForward(
    _ lp: UnsafeMutablePointer<Float>, _ lse: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
    _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ targets: UnsafePointer<Int32>,
    m: Int, v: Int, c: Int, chunk: Int, kept: Bool = false, precision: Precision = .fp32,
    logSumSquares: UnsafeMutablePointer<Float>? = nil
) {
    precondition(chunk > 0, "outputHeadForward: chunk must be positive")
    if m == 0 { return }
    let runMax = UnsafeMutablePointer<Float>.allocate(capacity: m)
    defer { runMax.deallocate() }
    runMax.initialize(repeating: -.infinity, count: m)
    lse.update(repeating: 0, count: m)  // the running sum of exp(logit - runMax) until the end
    logSumSquares?.update(repeating: 0, count: m)  // likewise of exp(2 (logit - runMax))
    let l = SendablePointer(lp), s = SendablePointer(lse), mxp = SendablePointer(runMax), tg = SendablePointer(targets)
    let squares = logSumSquares.map { SendablePointer($0) }
    let block = m * min(chunk, v)
    var j0 = 0
    while j0 < v {
        let cols = min(chunk, v - j0), first = j0
        let logits = kept ? scratch + (j0 / chunk) * block : scratch, z = SendablePointer(logits)
        matmul(logits, x, w + j0 * c, m: m, n: cols, k: c, transB: true, precision: precision)
        parallelFor(m, grain: max(1, 8192 / cols)) { rows in
            for r in rows {
                let row = z.p + r * cols
                let mx = rowMax(row, cols)
                let sum = rowExpSum(row, cols, shift: mx, write: false)
                let old = mxp.p[r], top = max(old, mx)
                s.p[r] = s.p[r] * expApprox(old - top) + sum * expApprox(mx - top)
                if let q = squares {
                    var sum2: Float = 0
                    for j in 0..<cols { sum2 += expApprox(2 * (row[j] - mx)) }
                    q.p[r] = q.p[r] * expApprox(2 * (old - top)) + sum2 * expApprox(2 * (mx - top))
                }
                mxp.p[r] = top
                let t = Int(tg.p[r]) - first
                if t >= 0 && t < cols { l.p[r] = row[t] }
            }
        }
        j0 += cols
    }
    for r in 0..<m {
        if let q = logSumSquares { q[r] = logf(q[r]) - 2 * logf(lse[r]) }
        lse[r] = runMax[r] + logf(lse[r])
        lp[r] -= lse[r]
    }
}

/// Backward of `outputHeadForward`: with dlp (m) = dLoss/dlp, ADDS dLoss/dx into dx (m, c) and dLoss/dW into
/// dw (v, c) unless dw is nil (frozen weights), and the weight gradient of each of `dwSegments`' row ranges into its
/// own (v, c) buffer, written rather than added (per-sequence gradients, `LlamaModel.backward(_:segments:)`). Each chunk of logits is read back (`kept`: the forward's blocks in scratch, with the same m, v,
/// chunk) or recomputed exactly as the forward computed it, turned in place into
/// dlp[r] * (onehot(targets[r]) - softmax), and multiplied out. scratch: as for `outputHeadForward`.
public func outputHeadBackward(
    _ dx: UnsafeMutablePointer<Float>, _ dw: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>,
    _ dlp: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ lse: UnsafePointer<Float>,
    _ targets: UnsafePointer<Int32>, m: Int, v: Int, c: Int, chunk: Int, kept: Bool = false,
    precision: Precision = .fp32, dwSegments: [(rows: Range<Int>, dw: UnsafeMutablePointer<Float>)] = []
) {
    precondition(chunk > 0, "outputHeadBackward: chunk must be positive")
    if m == 0 { return }
    let d = SendablePointer(dlp), s = SendablePointer(lse), tg = SendablePointer(targets)
    let block = m * min(chunk, v)
    var j0 = 0
    while j0 < v {
        let cols = min(chunk, v - j0), first = j0
        let logits = kept ? scratch + (j0 / chunk) * block : scratch, z = SendablePointer(logits)
        if !kept { matmul(logits, x, w + j0 * c, m: m, n: cols, k: c, transB: true, precision: precision) }
        parallelFor(m, grain: max(1, 8192 / cols)) { rows in
            for r in rows {
                let row = z.p + r * cols, g = d.p[r], e = s.p[r]
                if g == 0 {
                    row.update(repeating: 0, count: cols)
                    continue
                }
                for j in 0..<cols { row[j] = -g * expApprox(row[j] - e) }
                let t = Int(tg.p[r]) - first
                if t >= 0 && t < cols { row[t] += g }
            }
        }
        // dx += dZ W[chunk]; dW[chunk] += dZ^T x
        matmul(dx, logits, w + j0 * c, m: m, n: c, k: cols, beta: 1, precision: precision)
        if let dw { matmul(dw + j0 * c, logits, x, m: cols, n: c, k: m, transA: true, beta: 1, precision: precision) }
        for s in dwSegments {
            let r0 = s.rows.lowerBound
            matmul(s.dw + j0 * c, logits + r0 * cols, x + r0 * c, m: cols, n: c, k: s.rows.count, transA: true, beta: 0, precision: precision)
        }
        j0 += cols
    }
}
