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

/// Query rows per block in the packed attention: a block of queries ending at row r needs only keys 0..<r,
/// so for a sequence of T = 4 blocks the score, softmax and value products cover 10/16 of the T x T square.
let attentionBlock = 64

/// The softmax probabilities of query rows r0..<r1 of one head of one sequence against keys 0..<r1.
/// q: the head's queries from row r0 (row stride ldq); k: the KV head's keys from row 0 (row stride ldk);
/// p: (r1 - r0, r1) with row stride ld, written (zero above the diagonal). Forward and the recomputing
/// backward both call this, so the recomputed probabilities are bit-identical to the forward's.
@inline(__always)
private func attentionBlockProbs(
    _ p: UnsafeMutablePointer<Float>, ld: Int, _ q: UnsafePointer<Float>, ldq: Int,
    _ k: UnsafePointer<Float>, ldk: Int, r0: Int, r1: Int, headDim hd: Int, scale: Float
) {
    matmul(p, q, k, m: r1 - r0, n: r1, k: hd, transB: true, lda: ldq, ldb: ldk, ldc: ld, alpha: scale)
    for i in r0..<r1 {
        let row = p + (i - r0) * ld, valid = i + 1
        let mx = rowMax(row, valid)
        let inv = 1 / rowExpSum(row, valid, shift: mx, write: true)
        for j in 0..<valid { row[j] *= inv }
        if valid < r1 { (row + valid).update(repeating: 0, count: r1 - valid) }
    }
}

/// Block-causal grouped-query attention over a packed batch.
///
/// q: (n, heads*hd) already rotated; k, v: (n, kvHeads*hd); out: (n, heads*hd) (written). q, k and v have
/// row strides ldq, ldk, ldv (defaults heads*hd, kvHeads*hd, kvHeads*hd), so they may be column blocks of
/// one fused QKV projection.
/// Sequence s spans sequenceStarts[s] ..< sequenceStarts[s+1] (the last ends at n); a token attends only
/// to tokens of its own sequence at or before it. Query head h uses KV head h / (heads / kvHeads).
/// probs: nil, or storage for the probabilities: for sequence s of length T and head h, a (T, T) block at
/// offset heads * (sum of earlier sequences' T^2) + h * T^2 (see `attentionProbsCount`), zero above the
/// diagonal. With nil nothing is kept and
/// `attentionBackward` recomputes them (the model does this: 9 MiB per layer for SmolLM2 at 4 x 256).
///
/// The (sequence, head) pairs are split into `Threads.count` fixed chunks of about equal cost, each run in
/// its own thread with single-threaded sgemm calls (the products are too small to split well inside
/// OpenBLAS); every pair is computed by one thread with the same arithmetic, whatever the thread count.
public func attentionForward(
    _ out: UnsafeMutablePointer<Float>, _ probs: UnsafeMutablePointer<Float>?,
    _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
    sequenceStarts: [Int], n: Int, heads: Int, kvHeads: Int, headDim hd: Int,
    ldq: Int? = nil, ldk: Int? = nil, ldv: Int? = nil
) {
    let ow = heads * hd, qw = ldq ?? heads * hd, kw = ldk ?? kvHeads * hd, vw = ldv ?? kvHeads * hd
    let group = heads / kvHeads, scale = 1 / Float(hd).squareRoot()
    let seqs = packedSequences(sequenceStarts, n: n, heads: heads)
    let longest = seqs.map(\.len).max() ?? 0
    let o = SendablePointer(out), pr = probs.map { SendablePointer($0) }
    let qp = SendablePointer(q), kp = SendablePointer(k), vp = SendablePointer(v)
    parallelTasks(costs: seqs.flatMap { s in Array(repeating: s.len * s.len, count: heads) }) { tasks, _ in
        // Without stored probabilities, one query block at a time lives in this thread's scratch.
        let scratch = pr == nil ? UnsafeMutablePointer<Float>.allocate(capacity: attentionBlock * longest) : nil
        defer { scratch?.deallocate() }
        for task in tasks {
            let s = seqs[task / heads], h = task % heads, g = h / group, len = s.len
            let qh = qp.p + s.start * qw + h * hd, kg = kp.p + s.start * kw + g * hd, vg = vp.p + s.start * vw + g * hd
            var r0 = 0
            while r0 < len {
                let r1 = min(len, r0 + attentionBlock), rows = r1 - r0
                let pb = pr.map { $0.p + s.base + h * len * len + r0 * len } ?? scratch!
                attentionBlockProbs(pb, ld: len, qh + r0 * qw, ldq: qw, kg, ldk: kw, r0: r0, r1: r1, headDim: hd, scale: scale)
                if pr != nil && r1 < len {
                    for i in 0..<rows { (pb + i * len + r1).update(repeating: 0, count: len - r1) }
                }
                matmul(o.p + (s.start + r0) * ow + h * hd, pb, vg, m: rows, n: hd, k: r1, lda: len, ldb: vw, ldc: ow)
                r0 = r1
            }
        }
    }
}

/// Backward of `attentionForward`: dq, dk, dv (same shapes and row strides as q, k, v) are ADDED to.
/// dout: (n, heads*hd). probs: what the forward stored, or nil to recompute each query block's
/// probabilities from q and k (bit-identical to the forward's; costs one Q K^T product and softmax more).
/// scratch: at least (longest sequence)^2 floats (more is allocated per extra thread).
/// Work is split by (sequence, KV head) so each dk, dv block is accumulated by one thread, in head order.
public func attentionBackward(
    _ dq: UnsafeMutablePointer<Float>, _ dk: UnsafeMutablePointer<Float>, _ dv: UnsafeMutablePointer<Float>,
    scratch: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ probs: UnsafePointer<Float>?,
    _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
    sequenceStarts: [Int], n: Int, heads: Int, kvHeads: Int, headDim hd: Int,
    ldq: Int? = nil, ldk: Int? = nil, ldv: Int? = nil
) {
    let ow = heads * hd, qw = ldq ?? heads * hd, kw = ldk ?? kvHeads * hd, vw = ldv ?? kvHeads * hd
    let group = heads / kvHeads
    let scale = 1 / Float(hd).squareRoot()
    let seqs = packedSequences(sequenceStarts, n: n, heads: heads)
    let longest = seqs.map(\.len).max() ?? 0
    let dqp = SendablePointer(dq), dkp = SendablePointer(dk), dvp = SendablePointer(dv), sc = SendablePointer(scratch)
    let dop = SendablePointer(dout), pr = probs.map { SendablePointer($0) }
    let qp = SendablePointer(q), kp = SendablePointer(k), vp = SendablePointer(v)
    parallelTasks(costs: seqs.flatMap { s in Array(repeating: s.len * s.len, count: kvHeads) }) { tasks, chunk in
        let own = chunk == 0 ? nil : UnsafeMutablePointer<Float>.allocate(capacity: longest * longest)
        let recomputed = pr == nil ? UnsafeMutablePointer<Float>.allocate(capacity: attentionBlock * longest) : nil
        defer {
            own?.deallocate()
            recomputed?.deallocate()
        }
        let ds = own ?? sc.p
        for task in tasks {
            let s = seqs[task / kvHeads], g = task % kvHeads, len = s.len
            let kg = kp.p + s.start * kw + g * hd, vg = vp.p + s.start * vw + g * hd
            let dkg = dkp.p + s.start * kw + g * hd, dvg = dvp.p + s.start * vw + g * hd
            for h in (g * group)..<((g + 1) * group) {
                let doh = dop.p + s.start * ow + h * hd, qh = qp.p + s.start * qw + h * hd
                let dqh = dqp.p + s.start * qw + h * hd
                var r0 = 0
                while r0 < len {
                    let r1 = min(len, r0 + attentionBlock), rows = r1 - r0
                    let pb: UnsafeMutablePointer<Float>
                    if let pr {
                        pb = pr.p + s.base + h * len * len + r0 * len
                    } else {
                        pb = recomputed!
                        attentionBlockProbs(pb, ld: len, qh + r0 * qw, ldq: qw, kg, ldk: kw, r0: r0, r1: r1,
                                            headDim: hd, scale: scale)
                    }
                    let db = ds + r0 * len
                    // dP = dO V^T on the block's rows, keys 0..<r1
                    matmul(db, doh + r0 * ow, vg, m: rows, n: r1, k: hd, transB: true, lda: ow, ldb: vw, ldc: len)
                    // dS = P * (dP - rowsum(P * dP)), in place; zero beyond the diagonal
                    for i in r0..<r1 {
                        let prow = pb + (i - r0) * len, dr = ds + i * len
                        var dot: Float = 0
                        for j in 0...i { dot += prow[j] * dr[j] }
                        for j in 0...i { dr[j] = prow[j] * (dr[j] - dot) }
                        if i + 1 < r1 { (dr + i + 1).update(repeating: 0, count: r1 - i - 1) }
                    }
                    // S = scale * Q K^T, so dQ += scale dS K and dK += scale dS^T Q; dV += P^T dO
                    matmul(dqh + r0 * qw, db, kg, m: rows, n: hd, k: r1, lda: len, ldb: kw, ldc: qw, alpha: scale, beta: 1)
                    matmul(dkg, db, qh + r0 * qw, m: r1, n: hd, k: rows, transA: true,
                           lda: len, ldb: qw, ldc: kw, alpha: scale, beta: 1)
                    matmul(dvg, pb, doh + r0 * ow, m: r1, n: hd, k: rows, transA: true, lda: len, ldb: ow, ldc: vw, beta: 1)
                    r0 = r1
                }
            }
        }
    }
}

/// Start, length and probability-block offset of each packed sequence.
private func packedSequences(_ starts: [Int], n: Int, heads: Int) -> [(start: Int, len: Int, base: Int)] {
    var out: [(start: Int, len: Int, base: Int)] = []
    var base = 0
    for s in 0..<starts.count {
        let len = (s + 1 < starts.count ? starts[s + 1] : n) - starts[s]
        out.append((starts[s], len, base))
        base += heads * len * len
    }
    return out
}
