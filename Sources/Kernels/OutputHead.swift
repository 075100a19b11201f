import Foundation

// The output head (logits = x W^T over the vocabulary) fused with the log-softmax gathered at the target,
// computed over chunks of vocabulary columns so the (m, v) logits are never held: for SmolLM2 at 4 x 256 they
// would be 1020 x 49152 floats (192 MiB). Backward recomputes each chunk's logits (one more head product,
// 2 m v c FLOPs) instead of keeping them.

/// x: (m, c) hidden rows; w: (v, c) head weights, row-major; targets: (m), each in 0..<v.
/// lp: (m) = log softmax(x W^T)[r][targets[r]]; lse: (m) = logsumexp of each row of logits, for backward.
/// scratch: at least m * min(chunk, v) floats. The logsumexp is combined chunk by chunk (running maximum and
/// rescaled sum), so each row's result depends only on that row and `chunk`, not on m or the thread count.
public func outputHeadForward(
    _ lp: UnsafeMutablePointer<Float>, _ lse: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
    _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ targets: UnsafePointer<Int32>,
    m: Int, v: Int, c: Int, chunk: Int
) {
    precondition(chunk > 0, "outputHeadForward: chunk must be positive")
    if m == 0 { return }
    let runMax = UnsafeMutablePointer<Float>.allocate(capacity: m)
    defer { runMax.deallocate() }
    runMax.initialize(repeating: -.infinity, count: m)
    lse.update(repeating: 0, count: m)  // the running sum of exp(logit - runMax) until the end
    let l = SendablePointer(lp), s = SendablePointer(lse), mxp = SendablePointer(runMax)
    let z = SendablePointer(scratch), tg = SendablePointer(targets)
    var j0 = 0
    while j0 < v {
        let cols = min(chunk, v - j0), first = j0
        matmul(scratch, x, w + j0 * c, m: m, n: cols, k: c, transB: true)
        parallelFor(m, grain: max(1, 8192 / cols)) { rows in
            for r in rows {
                let row = z.p + r * cols
                let mx = rowMax(row, cols)
                let sum = rowExpSum(row, cols, shift: mx, write: false)
                let old = mxp.p[r], top = max(old, mx)
                s.p[r] = s.p[r] * expApprox(old - top) + sum * expApprox(mx - top)
                mxp.p[r] = top
                let t = Int(tg.p[r]) - first
                if t >= 0 && t < cols { l.p[r] = row[t] }
            }
        }
        j0 += cols
    }
    for r in 0..<m {
        lse[r] = runMax[r] + logf(lse[r])
        lp[r] -= lse[r]
    }
}

/// Backward of `outputHeadForward`: with dlp (m) = dLoss/dlp, ADDS dLoss/dx into dx (m, c) and dLoss/dW into
/// dw (v, c). Each chunk of logits is recomputed exactly as the forward computed it, turned in place into
/// dlp[r] * (onehot(targets[r]) - softmax), and multiplied out. scratch: at least m * min(chunk, v) floats.
public func outputHeadBackward(
    _ dx: UnsafeMutablePointer<Float>, _ dw: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
    _ dlp: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ lse: UnsafePointer<Float>,
    _ targets: UnsafePointer<Int32>, m: Int, v: Int, c: Int, chunk: Int
) {
    precondition(chunk > 0, "outputHeadBackward: chunk must be positive")
    if m == 0 { return }
    let z = SendablePointer(scratch), d = SendablePointer(dlp), s = SendablePointer(lse), tg = SendablePointer(targets)
    var j0 = 0
    while j0 < v {
        let cols = min(chunk, v - j0), first = j0
        matmul(scratch, x, w + j0 * c, m: m, n: cols, k: c, transB: true)
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
        matmul(dx, scratch, w + j0 * c, m: m, n: c, k: cols, beta: 1)
        matmul(dw + j0 * c, scratch, x, m: cols, n: c, k: m, transA: true, beta: 1)
        j0 += cols
    }
}
