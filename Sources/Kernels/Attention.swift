import Base
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

/// The query heads of one KV head, stacked: rows j * rows + i hold head (first + j)'s row r0 + i. Grouped-query
/// attention gives every head of a group the same keys and values, so stacking turns the group's products
/// into one each with `group` times the rows (3 for SmolLM2), which OpenBLAS runs at a much better rate than
/// three (64 x 64)-sized ones.
@inline(__always)
private func stackHeads(
    _ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, ld: Int, rows: Int, group: Int, headDim hd: Int
) {
    for j in 0..<group {
        for i in 0..<rows { (dst + (j * rows + i) * hd).update(from: src + i * ld + j * hd, count: hd) }
    }
}

/// The softmax probabilities of query rows r0..<r1 of a group's stacked heads against keys 0..<r1.
/// qs: the stacked queries ((group * rows, hd), from `stackHeads`); k: the KV head's keys from row 0 (row
/// stride ldk); p: (group * rows, r1) contiguous, written (zero above the diagonal). Forward and the
/// recomputing backward both call this, so the recomputed probabilities are bit-identical to the forward's.
@inline(__always)
private func attentionBlockProbs(
    _ p: UnsafeMutablePointer<Float>, _ qs: UnsafePointer<Float>, _ k: UnsafePointer<Float>, ldk: Int,
    r0: Int, r1: Int, group: Int, headDim hd: Int, scale: Float
) {
    let rows = r1 - r0
    matmulInThread(p, qs, k, m: group * rows, n: r1, k: hd, transB: true, lda: hd, ldb: ldk, ldc: r1, alpha: scale)
    for j in 0..<group {
        for i in r0..<r1 {
            let row = p + (j * rows + i - r0) * r1, valid = i + 1
            let mx = rowMax(row, valid)
            let inv = 1 / rowExpSum(row, valid, shift: mx, write: true)
            for t in 0..<valid { row[t] *= inv }
            if valid < r1 { (row + valid).update(repeating: 0, count: r1 - valid) }
        }
    }
}

/// Copies a block of stacked probabilities (group * rows, r1) to or from the `probs` layout of
/// `attentionForward` (head h of a sequence of length len: a (len, len) block at base + h * len^2).
@inline(__always)
private func copyStoredProbs(
    _ stacked: UnsafeMutablePointer<Float>, _ stored: UnsafeMutablePointer<Float>, toStored: Bool,
    len: Int, r0: Int, r1: Int, firstHead: Int, group: Int
) {
    let rows = r1 - r0
    for j in 0..<group {
        for i in 0..<rows {
            let st = stored + (firstHead + j) * len * len + (r0 + i) * len, sk = stacked + (j * rows + i) * r1
            if toStored {
                st.update(from: sk, count: r1)
                if r1 < len { (st + r1).update(repeating: 0, count: len - r1) }
            } else {
                sk.update(from: st, count: r1)
            }
        }
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
/// Work is split by (sequence, KV head): the group's query heads are stacked into one set of products per
/// block of 64 query rows. The pairs are split into `Threads.count` fixed chunks of about equal cost, each
/// run in its own thread (the products are too small to split well); every pair is computed by one thread
/// with the same arithmetic, whatever the thread count.
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
    parallelTasks(costs: seqs.flatMap { s in Array(repeating: s.len * s.len, count: kvHeads) }) { tasks, _ in
        let rowsMax = group * min(attentionBlock, longest)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * (longest + 2 * hd))
        defer { scratch.deallocate() }
        let pb = scratch, qs = scratch + rowsMax * longest, os = qs + rowsMax * hd
        for task in tasks {
            let s = seqs[task / kvHeads], g = task % kvHeads, len = s.len, h0 = g * group
            let kg = kp.p + s.start * kw + g * hd, vg = vp.p + s.start * vw + g * hd
            var r0 = 0
            while r0 < len {
                let r1 = min(len, r0 + attentionBlock), rows = r1 - r0
                stackHeads(qs, qp.p + (s.start + r0) * qw + h0 * hd, ld: qw, rows: rows, group: group, headDim: hd)
                attentionBlockProbs(pb, qs, kg, ldk: kw, r0: r0, r1: r1, group: group, headDim: hd, scale: scale)
                if let pr {
                    copyStoredProbs(pb, pr.p + s.base, toStored: true, len: len, r0: r0, r1: r1, firstHead: h0, group: group)
                }
                matmulInThread(os, pb, vg, m: group * rows, n: hd, k: r1, lda: r1, ldb: vw, ldc: hd)
                for j in 0..<group {
                    for i in 0..<rows {
                        (o.p + (s.start + r0 + i) * ow + (h0 + j) * hd).update(from: os + (j * rows + i) * hd, count: hd)
                    }
                }
                r0 = r1
            }
        }
    }
}

/// Backward of `attentionForward`: dq, dk, dv (same shapes and row strides as q, k, v) are ADDED to.
/// dout: (n, heads*hd). probs: what the forward stored, or nil to recompute each query block's
/// probabilities from q and k (bit-identical to the forward's; costs one Q K^T product and softmax more).
/// Work is split by (sequence, KV head) as in the forward, so each dk, dv block is accumulated by one thread.
public func attentionBackward(
    _ dq: UnsafeMutablePointer<Float>, _ dk: UnsafeMutablePointer<Float>, _ dv: UnsafeMutablePointer<Float>,
    _ dout: UnsafePointer<Float>, _ probs: UnsafePointer<Float>?,
    _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
    sequenceStarts: [Int], n: Int, heads: Int, kvHeads: Int, headDim hd: Int,
    ldq: Int? = nil, ldk: Int? = nil, ldv: Int? = nil
) {
    let ow = heads * hd, qw = ldq ?? heads * hd, kw = ldk ?? kvHeads * hd, vw = ldv ?? kvHeads * hd
    let group = heads / kvHeads
    let scale = 1 / Float(hd).squareRoot()
    let seqs = packedSequences(sequenceStarts, n: n, heads: heads)
    let longest = seqs.map(\.len).max() ?? 0
    let dqp = SendablePointer(dq), dkp = SendablePointer(dk), dvp = SendablePointer(dv)
    let dop = SendablePointer(dout), pr = probs.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
    let qp = SendablePointer(q), kp = SendablePointer(k), vp = SendablePointer(v)
    parallelTasks(costs: seqs.flatMap { s in Array(repeating: s.len * s.len, count: kvHeads) }) { tasks, _ in
        let rowsMax = group * min(attentionBlock, longest)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * (2 * longest + 3 * hd))
        defer { scratch.deallocate() }
        let pb = scratch, ds = pb + rowsMax * longest, qs = ds + rowsMax * longest
        let dos = qs + rowsMax * hd, dqs = dos + rowsMax * hd
        for task in tasks {
            let s = seqs[task / kvHeads], g = task % kvHeads, len = s.len, h0 = g * group
            let kg = kp.p + s.start * kw + g * hd, vg = vp.p + s.start * vw + g * hd
            let dkg = dkp.p + s.start * kw + g * hd, dvg = dvp.p + s.start * vw + g * hd
            var r0 = 0
            while r0 < len {
                let r1 = min(len, r0 + attentionBlock), rows = r1 - r0, m = group * rows
                stackHeads(qs, qp.p + (s.start + r0) * qw + h0 * hd, ld: qw, rows: rows, group: group, headDim: hd)
                stackHeads(dos, dop.p + (s.start + r0) * ow + h0 * hd, ld: ow, rows: rows, group: group, headDim: hd)
                if let pr {
                    copyStoredProbs(pb, pr.p + s.base, toStored: false, len: len, r0: r0, r1: r1, firstHead: h0, group: group)
                } else {
                    attentionBlockProbs(pb, qs, kg, ldk: kw, r0: r0, r1: r1, group: group, headDim: hd, scale: scale)
                }
                // dP = dO V^T on the block's rows, keys 0..<r1
                matmulInThread(ds, dos, vg, m: m, n: r1, k: hd, transB: true, lda: hd, ldb: vw, ldc: r1)
                // dS = P * (dP - rowsum(P * dP)), in place; zero beyond the diagonal
                for j in 0..<group {
                    for i in r0..<r1 {
                        let prow = pb + (j * rows + i - r0) * r1, dr = ds + (j * rows + i - r0) * r1
                        let dot = rowDot(prow, dr, i + 1)
                        for t in 0...i { dr[t] = prow[t] * (dr[t] - dot) }
                        if i + 1 < r1 { (dr + i + 1).update(repeating: 0, count: r1 - i - 1) }
                    }
                }
                // S = scale * Q K^T, so dQ += scale dS K and dK += scale dS^T Q; dV += P^T dO
                matmulInThread(dqs, ds, kg, m: m, n: hd, k: r1, lda: r1, ldb: kw, ldc: hd, alpha: scale)
                for j in 0..<group {
                    for i in 0..<rows {
                        let dst = dqp.p + (s.start + r0 + i) * qw + (h0 + j) * hd, src = dqs + (j * rows + i) * hd
                        for t in 0..<hd { dst[t] += src[t] }
                    }
                }
                matmulInThread(dkg, ds, qs, m: r1, n: hd, k: m, transA: true, lda: r1, ldb: hd, ldc: kw, alpha: scale, beta: 1)
                matmulInThread(dvg, pb, dos, m: r1, n: hd, k: m, transA: true, lda: r1, ldb: hd, ldc: vw, beta: 1)
                r0 = r1
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
