import Base
import Kernels

/// Where one block's forward writes its results for n rows. Training gives each layer its own `qkv`,
/// `att`, `residMid`, `gateUp` and norms' `rstd` (backward reads them); inference reuses one set for
/// every layer. `norm` and `hidden` are scratch in both.
struct BlockBuffers {
    /// (n) 1/rms of the attention and feed-forward norms' inputs.
    var attnRstd, ffnRstd: UnsafeMutablePointer<Float>
    /// (n, dim) the RMSNorm output.
    var norm: UnsafeMutablePointer<Float>
    /// (n, dim + 2 kvDim) rows q | k | v, RoPE applied to q and k.
    var qkv: UnsafeMutablePointer<Float>
    /// (n, dim) the attention output, heads side by side.
    var att: UnsafeMutablePointer<Float>
    /// (n, dim) x + attention: the residual stream between the two halves of the block.
    var residMid: UnsafeMutablePointer<Float>
    /// (n, 2 ffn) rows gate | up.
    var gateUp: UnsafeMutablePointer<Float>
    /// (n, ffn) silu(gate) * up.
    var hidden: UnsafeMutablePointer<Float>
}

/// How a block adds a product to the residual stream. The two orders give the same sums up to the last
/// bits of a float; each caller keeps the order it has always used, so its numbers do not move.
enum ResidualSum {
    /// `out = product; out += stream`, the order training has used (backward reads `residMid` as stored).
    case afterProduct
    /// `out = stream; out += product` inside the sgemm (`beta = 1`), the order inference has used.
    case inProduct
}

extension LlamaModel {
    /// Block `l` of the transformer, the one implementation used by training (`forward`), scoring and
    /// generation (`BatchSession`):
    ///
    ///     h = RMSNorm(x); q|k|v = h [Wq|Wk|Wv]^T (+ [bq|bk|bv] with `qkvBias`); RoPE(q, k at `positions`);
    ///     a = attention(q, k, v)
    ///     residMid = x + a Wo^T
    ///     out = residMid + W_down (silu(g) * u),  g|u = RMSNorm(residMid) [W_gate|W_up]^T
    ///
    /// Only the attention core differs between the callers (packed causal sequences in training, a KV
    /// cache in inference): `attention(qkv, att)` must fill `att` (n, dim) from `qkv`. `out` may be `x`
    /// (in place). x, out: (n, dim). `residual` chooses the summation order of the two residual adds;
    /// `precision` is the weight products' input type (`matmul`).
    func blockForward(_ l: Int, out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, n: Int,
                      positions: UnsafePointer<Int32>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                      buffers b: BlockBuffers, residual: ResidualSum, precision: Precision,
                      attention: (_ qkv: UnsafeMutablePointer<Float>, _ att: UnsafeMutablePointer<Float>) -> Void) {
        let w = pBlocks[l], cfg = config
        let c = cfg.dim, f = cfg.ffnDim, hd = cfg.headDim, nh = cfg.nHeads, nkv = cfg.nKVHeads
        let w3 = c + 2 * nkv * hd
        rmsnormForward(b.norm, b.attnRstd, x, w.attnNorm, n: n, c: c, eps: cfg.normEps)
        // Q | K | V in one sgemm: wq, wk, wv are adjacent, so wq spans the (dim + 2 kv, dim) matrix.
        matmul(b.qkv, b.norm, w.wq, m: n, n: w3, k: c, transB: true, precision: precision)
        if let bias = w.bqkv { rowBiasAdd(b.qkv, bias, n: n, width: w3) }
        ropeForward(b.qkv, positions: positions, n: n, heads: nh, headDim: hd, cos: cos, sin: sin, rowStride: w3)
        ropeForward(b.qkv + c, positions: positions, n: n, heads: nkv, headDim: hd, cos: cos, sin: sin, rowStride: w3)
        attention(b.qkv, b.att)
        addProduct(b.residMid, stream: x, b.att, w.wo, m: n, n: c, k: c, residual, precision)
        rmsnormForward(b.norm, b.ffnRstd, b.residMid, w.ffnNorm, n: n, c: c, eps: cfg.normEps)
        // gate | up in one sgemm against the adjacent (2 ffn, dim) weights.
        matmul(b.gateUp, b.norm, w.wGate, m: n, n: 2 * f, k: c, transB: true, precision: precision)
        swigluFusedForward(b.hidden, b.gateUp, n: n, f: f)
        addProduct(out, stream: b.residMid, b.hidden, w.wDown, m: n, n: c, k: f, residual, precision)
    }

    /// out = stream + a w^T, (m, n) from a (m, k) and w (n, k), summed in the order `residual` names.
    /// `out` may be `stream` only for `.inProduct`.
    private func addProduct(_ out: UnsafeMutablePointer<Float>, stream: UnsafePointer<Float>,
                            _ a: UnsafePointer<Float>, _ w: UnsafePointer<Float>, m: Int, n: Int, k: Int,
                            _ residual: ResidualSum, _ precision: Precision) {
        switch residual {
        case .afterProduct:
            precondition(UnsafePointer(out) != stream, "blockForward: .afterProduct cannot add in place")
            matmul(out, a, w, m: m, n: n, k: k, transB: true, precision: precision)
            residualForward(out, out, stream, n: m * n)
        case .inProduct:
            if UnsafePointer(out) != stream { out.update(from: stream, count: m * n) }
            matmul(out, a, w, m: m, n: n, k: k, transB: true, beta: 1, precision: precision)
        }
    }
}
