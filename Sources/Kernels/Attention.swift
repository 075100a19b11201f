import Foundation

/// Causal attention of one head over one sequence (or a block of queries against a key prefix).
///
/// q: (nq, hd) row stride ldq; k, v: (nk, hd) row strides ldk, ldv; out: (nq, hd) row stride ldo (written).
/// Query i sits at key position `offset + i` and attends to keys 0...offset+i.
/// probs: (nq, nk) contiguous, written with the softmax (zero above the causal limit).
public func attentionHeadForward(
    _ out: UnsafeMutablePointer<Float>, ldo: Int, _ probs: UnsafeMutablePointer<Float>,
    _ q: UnsafePointer<Float>, ldq: Int, _ k: UnsafePointer<Float>, ldk: Int,
    _ v: UnsafePointer<Float>, ldv: Int, nq: Int, nk: Int, offset: Int, headDim hd: Int
) {
    precondition(offset + nq <= nk, "attention: queries beyond the keys")
    let scale = 1 / Float(hd).squareRoot()
    matmul(probs, q, k, m: nq, n: nk, k: hd, transB: true, lda: ldq, ldb: ldk, ldc: nk, alpha: scale)
    let pp = SendablePointer(probs)
    parallelFor(nq, grain: max(1, 16384 / max(nk, 1))) { rows in
        for i in rows {
            let row = pp.p + i * nk
            let valid = offset + i + 1
            let mx = rowMax(row, valid)
            let inv = 1 / rowExpSum(row, valid, shift: mx, write: true)
            for j in 0..<valid { row[j] *= inv }
            if valid < nk { (row + valid).update(repeating: 0, count: nk - valid) }
        }
    }
    matmul(out, probs, v, m: nq, n: hd, k: nk, lda: nk, ldb: ldv, ldc: ldo)
}

/// Total floats of the probability blocks `attentionForward` stores for this packing:
/// heads * sum over sequences of length^2.
public func attentionProbsCount(sequenceStarts: [Int], n: Int, heads: Int) -> Int {
    var total = 0
    for s in 0..<sequenceStarts.count {
        let len = (s + 1 < sequenceStarts.count ? sequenceStarts[s + 1] : n) - sequenceStarts[s]
        total += heads * len * len
    }
    return total
}

/// Block-causal grouped-query attention over a packed batch.
///
/// q: (n, heads*hd) already rotated; k, v: (n, kvHeads*hd); out: (n, heads*hd) (written). q, k and v have
/// row strides ldq, ldk, ldv (defaults heads*hd, kvHeads*hd, kvHeads*hd), so they may be column blocks of
/// one fused QKV projection.
/// Sequence s spans sequenceStarts[s] ..< sequenceStarts[s+1] (the last ends at n); a token attends only
/// to tokens of its own sequence at or before it. Query head h uses KV head h / (heads / kvHeads).
/// probs: for sequence s of length T and head h, a (T, T) block at offset
/// heads * (sum of earlier sequences' T^2) + h * T^2 (see `attentionProbsCount`).
public func attentionForward(
    _ out: UnsafeMutablePointer<Float>, _ probs: UnsafeMutablePointer<Float>,
    _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
    sequenceStarts: [Int], n: Int, heads: Int, kvHeads: Int, headDim hd: Int,
    ldq: Int? = nil, ldk: Int? = nil, ldv: Int? = nil
) {
    let ow = heads * hd, qw = ldq ?? heads * hd, kw = ldk ?? kvHeads * hd, vw = ldv ?? kvHeads * hd
    let group = heads / kvHeads
    var base = 0
    for s in 0..<sequenceStarts.count {
        let start = sequenceStarts[s]
        let len = (s + 1 < sequenceStarts.count ? sequenceStarts[s + 1] : n) - start
        for h in 0..<heads {
            let g = h / group
            attentionHeadForward(
                out + start * ow + h * hd, ldo: ow, probs + base + h * len * len,
                q + start * qw + h * hd, ldq: qw, k + start * kw + g * hd, ldk: kw,
                v + start * vw + g * hd, ldv: vw, nq: len, nk: len, offset: 0, headDim: hd)
        }
        base += heads * len * len
    }
}

/// Backward of `attentionForward`: dq, dk, dv (same shapes and row strides as q, k, v) are ADDED to.
/// dout: (n, heads*hd). scratch: at least (longest sequence)^2 floats.
public func attentionBackward(
    _ dq: UnsafeMutablePointer<Float>, _ dk: UnsafeMutablePointer<Float>, _ dv: UnsafeMutablePointer<Float>,
    scratch: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ probs: UnsafePointer<Float>,
    _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
    sequenceStarts: [Int], n: Int, heads: Int, kvHeads: Int, headDim hd: Int,
    ldq: Int? = nil, ldk: Int? = nil, ldv: Int? = nil
) {
    let ow = heads * hd, qw = ldq ?? heads * hd, kw = ldk ?? kvHeads * hd, vw = ldv ?? kvHeads * hd
    let group = heads / kvHeads
    let scale = 1 / Float(hd).squareRoot()
    var base = 0
    for s in 0..<sequenceStarts.count {
        let start = sequenceStarts[s]
        let len = (s + 1 < sequenceStarts.count ? sequenceStarts[s + 1] : n) - start
        for h in 0..<heads {
            let g = h / group
            let p = probs + base + h * len * len
            let doh = dout + start * ow + h * hd
            let qh = q + start * qw + h * hd, kg = k + start * kw + g * hd, vg = v + start * vw + g * hd
            // dP = dO V^T: (T, T)
            matmul(scratch, doh, vg, m: len, n: len, k: hd, transB: true, lda: ow, ldb: vw, ldc: len)
            // dS = P * (dP - rowsum(P * dP)), in place
            let sp = SendablePointer(scratch), pp = SendablePointer(p)
            parallelFor(len, grain: max(1, 16384 / max(len, 1))) { rows in
                for i in rows {
                    let pr = pp.p + i * len, dr = sp.p + i * len
                    var dot: Float = 0
                    for j in 0...i { dot += pr[j] * dr[j] }
                    for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) }
                    if i + 1 < len { (dr + i + 1).update(repeating: 0, count: len - i - 1) }
                }
            }
            // S = scale * Q K^T, so dQ += scale dS K and dK += scale dS^T Q; dV += P^T dO
            matmul(dq + start * qw + h * hd, scratch, kg, m: len, n: hd, k: len,
                   lda: len, ldb: kw, ldc: qw, alpha: scale, beta: 1)
            matmul(dk + start * kw + g * hd, scratch, qh, m: len, n: hd, k: len, transA: true,
                   lda: len, ldb: qw, ldc: kw, alpha: scale, beta: 1)
            matmul(dv + start * vw + g * hd, p, doh, m: len, n: hd, k: len, transA: true,
                   lda: len, ldb: ow, ldc: vw, beta: 1)
        }
        base += heads * len * len
    }
}
