import Base
import Kernels

/// Where one block's forward writes its results for n rows. Training gives each layer its own `qkv`,
/// `att`, `residMid`, `gateUp` and norms' `rstd` (backward reads them); inference reuses one set for
/// every layer. `norm` and `hidden` are scratch in both.
struct BlockBuffers {
    /// (n) 1/rms of the attention and feed-forward norms' inputs.
    var attnRstd, ffnRstd: UnsafeMutablePointer<Float>
    /// (n, dim) the norm's output.
    var norm: UnsafeMutablePointer<Float>
    /// (n, dim + 2 kvDim) rows q | k | v, RoPE applied to q and k.
    var qkv: UnsafeMutablePointer<Float>
    /// (n, dim) the attention output, heads side by side.
    var att: UnsafeMutablePointer<Float>
    /// (n, dim) x + attention: the residual stream between the two halves of the block.
    var residMid: UnsafeMutablePointer<Float>
    /// (n, ffnInputWidth) rows gate | up (SwiGLU) or up (GELU).
    var gateUp: UnsafeMutablePointer<Float>
    /// (n, ffn) silu(gate) * up or gelu(up).
    var hidden: UnsafeMutablePointer<Float>
    /// With LoRA adapters, `LoRAAdapters.scratchFloats` floats for n rows; nil: the adapters do not apply.
    var adapterScratch: UnsafeMutablePointer<Float>? = nil
    /// Training: where the adapters keep u = dropout(x) A^T of this block for backward (n rows of
    /// `LoRAAdapters.keptColumns`); nil: not kept.
    var adapterKeep: UnsafeMutablePointer<Float>? = nil
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
    ///     h = norm1(x); q|k|v = h [Wq|Wk|Wv]^T (+ [bq|bk|bv] with `qkvBias`); RoPE(q, k at `positions`);
    ///     a = attention(q, k, v)
    ///     residMid = x + a Wo^T (+ bo)
    ///     out = residMid + W_down act(norm2(y) W_in^T (+ b_in)) (+ b_down),  y = residMid, or x with `parallelResidual`
    ///
    /// llama: norms are RMSNorm, act(g|u) = silu(g) * u (SwiGLU), no biases but Q/K/V's with `qkvBias`.
    /// GPT-NeoX: LayerNorms with bias, act = exact GELU, every product with a bias; with `parallelResidual`
    /// out = x + attention + feed-forward, the feed-forward reading norm2(x).
    /// Only the attention core differs between the callers (packed causal sequences in training, a KV
    /// cache in inference): `attention(qkv, att)` must fill `att` (n, dim) from `qkv`. `out` may be `x`
    /// (in place). x, out: (n, dim). `residual` chooses the summation order of the two residual adds;
    /// `precision` is the weight products' input type (`matmul`).
    /// With LoRA adapters (`lora`), each adapted product W x gains (alpha / rank) B A dropout(x) after its bias; dropout
    /// applies only when `training`.
    func blockForward(_ l: Int, out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, n: Int,
                      positions: UnsafePointer<Int32>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                      buffers b: BlockBuffers, residual: ResidualSum, precision: Precision, training: Bool = false,
                      attention: (_ qkv: UnsafeMutablePointer<Float>, _ att: UnsafeMutablePointer<Float>) -> Void) {
        let w = pBlocks[l], cfg = config
        // the adapters apply with their scratch; a caller without it (a session of the base) runs the base model
        let adapters = b.adapterScratch == nil ? nil : lora.flatMap { $0.enabled ? $0 : nil }
        let c = cfg.dim, f = cfg.ffnDim, hd = cfg.headDim, nh = cfg.nHeads, nkv = cfg.nKVHeads
        let w3 = c + 2 * nkv * hd, fin = cfg.ffnInputWidth
        normForward(b.norm, b.attnRstd, x, w.attnNorm, w.attnNormBias, n: n)
        // Q | K | V in one sgemm: wq, wk, wv are adjacent, so wq spans the (dim + 2 kv, dim) matrix.
        matmul(b.qkv, b.norm, w.wq, m: n, n: w3, k: c, transB: true, precision: precision, roundedB: roundedWeight(w.wq))
        if let bias = w.bqkv { rowBiasAdd(b.qkv, bias, n: n, width: w3) }
        adapters?.forward(l, site: .attentionInput, y: b.qkv, x: b.norm, ldx: c, n: n, training: training, scratch: b.adapterScratch!, keep: b.adapterKeep)
        ropeForward(b.qkv, positions: positions, n: n, heads: nh, headDim: hd, cos: cos, sin: sin, rowStride: w3,
                    rotaryDims: cfg.rotaryDims)
        ropeForward(b.qkv + c, positions: positions, n: n, heads: nkv, headDim: hd, cos: cos, sin: sin, rowStride: w3,
                    rotaryDims: cfg.rotaryDims)
        attention(b.qkv, b.att)
        addProduct(b.residMid, stream: x, b.att, w.wo, m: n, n: c, k: c, residual, precision)
        if let bias = w.bo { rowBiasAdd(b.residMid, bias, n: n, width: c) }
        adapters?.forward(l, site: .attentionOutput, y: b.residMid, x: b.att, ldx: c, n: n, training: training, scratch: b.adapterScratch!, keep: b.adapterKeep)
        normForward(b.norm, b.ffnRstd, cfg.parallelResidual ? x : UnsafePointer(b.residMid), w.ffnNorm, w.ffnNormBias, n: n)
        // gate | up in one sgemm against the adjacent (2 ffn, dim) weights (SwiGLU), or up alone (GELU).
        matmul(b.gateUp, b.norm, w.wIn, m: n, n: fin, k: c, transB: true, precision: precision, roundedB: roundedWeight(w.wIn))
        if let bias = w.bIn { rowBiasAdd(b.gateUp, bias, n: n, width: fin) }
        adapters?.forward(l, site: .ffnInput, y: b.gateUp, x: b.norm, ldx: c, n: n, training: training, scratch: b.adapterScratch!, keep: b.adapterKeep)
        activationForward(b.hidden, b.gateUp, n: n)
        addProduct(out, stream: b.residMid, b.hidden, w.wDown, m: n, n: c, k: f, residual, precision)
        if let bias = w.bDown { rowBiasAdd(out, bias, n: n, width: c) }
        adapters?.forward(l, site: .ffnOutput, y: out, x: b.hidden, ldx: f, n: n, training: training, scratch: b.adapterScratch!, keep: b.adapterKeep)
    }

    /// The block's norm: RMSNorm (llama) or LayerNorm with `bias` (GPT-NeoX). rstd: (n) for backward.
    func normForward(_ out: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                     _ weight: UnsafePointer<Float>, _ bias: UnsafeMutablePointer<Float>?, n: Int) {
        if let bias {
            layernormForward(out, rstd, x, weight, bias, n: n, c: config.dim, eps: config.normEps)
        } else {
            rmsnormForward(out, rstd, x, weight, n: n, c: config.dim, eps: config.normEps)
        }
    }

    /// Backward of `normForward`: ADDS into dx, dWeight and dBias (present exactly when the forward had a bias).
    func normBackward(_ dx: UnsafeMutablePointer<Float>, _ dWeight: UnsafeMutablePointer<Float>, _ dBias: UnsafeMutablePointer<Float>?,
                      _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                      _ rstd: UnsafePointer<Float>, n: Int) {
        if let dBias {
            layernormBackward(dx, dWeight, dBias, dy, x, weight, rstd, n: n, c: config.dim)
        } else {
            rmsnormBackward(dx, dWeight, dy, x, weight, rstd, n: n, c: config.dim)
        }
    }

    /// hidden (n, ffn) from the feed-forward's input product: silu(gate) * up, or gelu(up).
    func activationForward(_ hidden: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, n: Int) {
        switch config.block {
        case .llama: swigluFusedForward(hidden, input, n: n, f: config.ffnDim)
        case .gptNeoX: geluForward(hidden, input, n: n, f: config.ffnDim)
        }
    }

    /// Backward of `activationForward`: WRITES dInput (n, ffnInputWidth) from dHidden (n, ffn).
    func activationBackward(_ dInput: UnsafeMutablePointer<Float>, _ dHidden: UnsafePointer<Float>, _ input: UnsafePointer<Float>, n: Int) {
        switch config.block {
        case .llama: swigluFusedBackward(dInput, dHidden, input, n: n, f: config.ffnDim)
        case .gptNeoX: geluBackward(dInput, dHidden, input, n: n, f: config.ffnDim)
        }
    }

    /// out = stream + a w^T, (m, n) from a (m, k) and w (n, k), summed in the order `residual` names.
    /// `out` may be `stream` only for `.inProduct`.
    private func addProduct(_ out: UnsafeMutablePointer<Float>, stream: UnsafePointer<Float>,
                            _ a: UnsafePointer<Float>, _ w: UnsafePointer<Float>, m: Int, n: Int, k: Int,
                            _ residual: ResidualSum, _ precision: Precision) {
        switch residual {
        case .afterProduct:
            precondition(UnsafePointer(out) != stream, "blockForward: .afterProduct cannot add in place")
            matmul(out, a, w, m: m, n: n, k: k, transB: true, precision: precision, roundedB: roundedWeight(w))
            residualForward(out, out, stream, n: m * n)
        case .inProduct:
            if UnsafePointer(out) != stream { out.update(from: stream, count: m * n) }
            matmul(out, a, w, m: m, n: n, k: k, transB: true, beta: 1, precision: precision, roundedB: roundedWeight(w))
        }
    }
}
