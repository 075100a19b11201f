import Base
import Foundation

// MARK: Embedding

/// out: (n, c) = wte[tokens[t]] for each t; wte: (vocab, c).
public func embeddingForward(
    _ out: UnsafeMutablePointer<Float>, _ tokens: UnsafePointer<Int32>, _ wte: UnsafePointer<Float>,
    n: Int, c: Int
) {
    for t in 0..<n {
        (out + t * c).update(from: wte + Int(tokens[t]) * c, count: c)
    }
}

/// dwte[tokens[t]] += dout[t]. Split over columns so a repeated token is always summed in token order.
public func embeddingBackward(
    _ dwte: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ tokens: UnsafePointer<Int32>,
    n: Int, c: Int
) {
    let dw = SendablePointer(dwte), d = SendablePointer(dout), tk = SendablePointer(tokens)
    parallelFor(c, grain: n * c >= 1 << 16 ? 16 : c) { cols in
        for t in 0..<n {
            let row = dw.p + Int(tk.p[t]) * c, src = d.p + t * c
            for j in cols { row[j] += src[j] }
        }
    }
}

// MARK: RMSNorm

/// inp, out: (n, c); weight: (c); rstd: (n) stored for backward.
/// out = inp * rstd * weight with rstd = 1 / sqrt(mean(inp^2) + eps).
public func rmsnormForward(
    _ out: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>,
    _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, n: Int, c: Int, eps: Float
) {
    let o = SendablePointer(out), r = SendablePointer(rstd), x = SendablePointer(inp), w = SendablePointer(weight)
    parallelFor(n, grain: max(1, 4096 / max(c, 1))) { rows in
        for t in rows {
            let xr = x.p + t * c, orow = o.p + t * c
            var ss: Float = 0
            for i in 0..<c { ss += xr[i] * xr[i] }
            let rs = 1 / (ss / Float(c) + eps).squareRoot()
            r.p[t] = rs
            for i in 0..<c { orow[i] = xr[i] * rs * w.p[i] }
        }
    }
}

/// dinp += d(out)/d(inp)^T dout, dweight += sum over rows of dout * inp * rstd.
public func rmsnormBackward(
    _ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>,
    _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
    _ rstd: UnsafePointer<Float>, n: Int, c: Int
) {
    let dx = SendablePointer(dinp), dw = SendablePointer(dweight), g = SendablePointer(dout)
    let x = SendablePointer(inp), w = SendablePointer(weight), r = SendablePointer(rstd)
    parallelFor(n, grain: max(1, 4096 / max(c, 1))) { rows in
        for t in rows {
            let xr = x.p + t * c, gr = g.p + t * c, dxr = dx.p + t * c
            let rs = r.p[t]
            var dot: Float = 0
            for i in 0..<c { dot += gr[i] * w.p[i] * xr[i] }
            let k = rs * rs * dot / Float(c)
            for i in 0..<c { dxr[i] += rs * (w.p[i] * gr[i] - xr[i] * k) }
        }
    }
    // Columns are split across chunks; each column is summed over rows in row order.
    parallelFor(c, grain: n * c >= 1 << 16 ? 16 : c) { cols in
        for t in 0..<n {
            let xr = x.p + t * c, gr = g.p + t * c, rs = r.p[t]
            for i in cols { dw.p[i] += gr[i] * xr[i] * rs }
        }
    }
}

// MARK: LayerNorm

/// inp, out: (n, c); weight, bias: (c); rstd: (n) stored for backward (the mean is recomputed there).
/// out = (inp - mean) * rstd * weight + bias with rstd = 1 / sqrt(mean((inp - mean)^2) + eps), as GPT-NeoX's
/// LayerNorm (biased variance).
public func layernormForward(
    _ out: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, n: Int, c: Int, eps: Float
) {
    let o = SendablePointer(out), r = SendablePointer(rstd), x = SendablePointer(inp)
    let w = SendablePointer(weight), b = SendablePointer(bias)
    parallelFor(n, grain: max(1, 4096 / max(c, 1))) { rows in
        for t in rows {
            let xr = x.p + t * c, orow = o.p + t * c
            let mean = rowMean(xr, c)
            var ss: Float = 0
            for i in 0..<c { let d = xr[i] - mean; ss += d * d }
            let rs = 1 / (ss / Float(c) + eps).squareRoot()
            r.p[t] = rs
            for i in 0..<c { orow[i] = (xr[i] - mean) * rs * w.p[i] + b.p[i] }
        }
    }
}

/// The mean of a row, summed in order (forward and backward must agree bit for bit).
@inline(__always) private func rowMean(_ x: UnsafePointer<Float>, _ c: Int) -> Float {
    var s: Float = 0
    for i in 0..<c { s += x[i] }
    return s / Float(c)
}

/// Backward of `layernormForward`: dinp += J^T dout, dweight += sum over rows of dout * xhat, dbias += sum of
/// dout, with xhat = (inp - mean) * rstd: dinp = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * weight.
public func layernormBackward(
    _ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>, _ dbias: UnsafeMutablePointer<Float>,
    _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
    _ rstd: UnsafePointer<Float>, n: Int, c: Int
) {
    let dx = SendablePointer(dinp), dw = SendablePointer(dweight), db = SendablePointer(dbias), g = SendablePointer(dout)
    let x = SendablePointer(inp), w = SendablePointer(weight), r = SendablePointer(rstd)
    parallelFor(n, grain: max(1, 4096 / max(c, 1))) { rows in
        for t in rows {
            let xr = x.p + t * c, gr = g.p + t * c, dxr = dx.p + t * c
            let rs = r.p[t], mean = rowMean(xr, c)
            var sumG: Float = 0, sumGX: Float = 0
            for i in 0..<c {
                let gi = gr[i] * w.p[i]
                sumG += gi
                sumGX += gi * (xr[i] - mean) * rs
            }
            let mg = sumG / Float(c), mgx = sumGX / Float(c)
            for i in 0..<c { dxr[i] += rs * (gr[i] * w.p[i] - mg - (xr[i] - mean) * rs * mgx) }
        }
    }
    parallelFor(c, grain: n * c >= 1 << 16 ? 16 : c) { cols in
        for t in 0..<n {
            let xr = x.p + t * c, gr = g.p + t * c, rs = r.p[t], mean = rowMean(xr, c)
            for i in cols {
                dw.p[i] += gr[i] * (xr[i] - mean) * rs
                db.p[i] += gr[i]
            }
        }
    }
}

// MARK: SwiGLU

/// gateUp: (n, 2f), each row the gate (columns 0..<f) then the up projection (f..<2f), as one sgemm against
/// the adjacent ffn_gate and ffn_up weights produces it; out: (n, f) = silu(gate) * up.
public func swigluFusedForward(_ out: UnsafeMutablePointer<Float>, _ gateUp: UnsafePointer<Float>, n: Int, f: Int) {
    let o = SendablePointer(out), gu = SendablePointer(gateUp)
    parallelFor(n, grain: max(1, (1 << 14) / max(f, 1))) { rows in
        for t in rows {
            let g = gu.p + t * 2 * f, u = g + f, orow = o.p + t * f
            for i in 0..<f {
                let x = g[i]
                orow[i] = x / (1 + expApprox(-x)) * u[i]
            }
        }
    }
}

/// Backward of `swigluFusedForward`. WRITES (does not add) dGateUp: (n, 2f) in the layout of gateUp;
/// dout: (n, f).
public func swigluFusedBackward(
    _ dGateUp: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ gateUp: UnsafePointer<Float>, n: Int, f: Int
) {
    let dgu = SendablePointer(dGateUp), d = SendablePointer(dout), gu = SendablePointer(gateUp)
    parallelFor(n, grain: max(1, (1 << 14) / max(f, 1))) { rows in
        for t in rows {
            let g = gu.p + t * 2 * f, u = g + f, dg = dgu.p + t * 2 * f, du = dg + f, dr = d.p + t * f
            for i in 0..<f {
                let x = g[i]
                let s = 1 / (1 + expApprox(-x))
                dg[i] = dr[i] * u[i] * s * (1 + x * (1 - s))
                du[i] = dr[i] * x * s
            }
        }
    }
}

// MARK: GELU

/// out: (n, f) = gelu(u), the exact GELU u * Phi(u) = u/2 (1 + erf(u / sqrt 2)) (transformers' "gelu").
public func geluForward(_ out: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, n: Int, f: Int) {
    let o = SendablePointer(out), x = SendablePointer(u)
    parallelFor(n, grain: max(1, (1 << 14) / max(f, 1))) { rows in
        for t in rows {
            let xr = x.p + t * f, orow = o.p + t * f
            for i in 0..<f { orow[i] = 0.5 * xr[i] * (1 + erff(xr[i] * Float(0.5).squareRoot())) }
        }
    }
}

/// Backward of `geluForward`. WRITES du: (n, f) = dout * (Phi(u) + u phi(u)), phi the standard normal density.
public func geluBackward(_ du: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ u: UnsafePointer<Float>, n: Int, f: Int) {
    let d = SendablePointer(du), g = SendablePointer(dout), x = SendablePointer(u)
    let invSqrt2 = Float(0.5).squareRoot(), invSqrt2Pi = Float(1 / (2 * Double.pi).squareRoot())
    parallelFor(n, grain: max(1, (1 << 14) / max(f, 1))) { rows in
        for t in rows {
            let xr = x.p + t * f, gr = g.p + t * f, dr = d.p + t * f
            for i in 0..<f {
                let v = xr[i]
                let cdf = 0.5 * (1 + erff(v * invSqrt2)), pdf = invSqrt2Pi * expf(-0.5 * v * v)
                dr[i] = gr[i] * (cdf + v * pdf)
            }
        }
    }
}

// MARK: Residual

/// out = a + b over n floats; out may alias a or b.
public func residualForward(
    _ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, n: Int
) {
    let o = SendablePointer(out), x = SendablePointer(a), y = SendablePointer(b)
    parallelFor(n, grain: 1 << 15) { r in
        for i in r { o.p[i] = x.p[i] + y.p[i] }
    }
}


// MARK: Log-softmax gathered at the target

/// logits: (m, v); targets: (m), each in 0..<v; lp: (m) = log softmax(logits[r])[targets[r]];
/// lse: (m) = logsumexp(logits[r]), stored for backward.
public func logSoftmaxGatherForward(
    _ lp: UnsafeMutablePointer<Float>, _ lse: UnsafeMutablePointer<Float>,
    _ logits: UnsafePointer<Float>, _ targets: UnsafePointer<Int32>, m: Int, v: Int
) {
    let l = SendablePointer(lp), s = SendablePointer(lse), z = SendablePointer(logits), tg = SendablePointer(targets)
    parallelFor(m, grain: max(1, 8192 / max(v, 1))) { rows in
        for r in rows {
            let row = z.p + r * v
            let e = logSumExp(row, count: v)
            s.p[r] = e
            l.p[r] = row[Int(tg.p[r])] - e
        }
    }
}


/// out: (v) = log softmax(logits), both (v). out may alias logits.
public func logSoftmax(_ out: UnsafeMutablePointer<Float>, _ logits: UnsafePointer<Float>, v: Int) {
    let e = logSumExp(logits, count: v)
    for j in 0..<v { out[j] = logits[j] - e }
}

/// log(sum(exp(row))) over `count` floats, stabilised by the row maximum.
public func logSumExp(_ row: UnsafePointer<Float>, count v: Int) -> Float {
    let mx = rowMax(row, v)
    return mx + logf(rowExpSum(UnsafeMutablePointer(mutating: row), v, shift: mx, write: false))
}

/// x: (n, width) += bias (width) on every row (a linear layer's bias, forward).
public func rowBiasAdd(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, n: Int, width: Int) {
    let o = SendablePointer(x), b = SendablePointer(UnsafeMutablePointer(mutating: bias))
    parallelFor(n, grain: max(1, 8192 / max(width, 1))) { rows in
        for r in rows {
            let row = o.p + r * width
            for j in 0..<width { row[j] += b.p[j] }
        }
    }
}

/// gradient (width) += the column sums of dy (n, width), rows added in order (the bias's backward).
public func columnSumsAdd(_ gradient: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, n: Int, width: Int) {
    for r in 0..<n {
        let row = dy + r * width
        for j in 0..<width { gradient[j] += row[j] }
    }
}
