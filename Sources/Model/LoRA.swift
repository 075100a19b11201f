import Base
import Kernels

/// A projection of a block that a low-rank adapter may wrap (`train.lora.targets`).
/// llama and Qwen2 blocks: `q`, `k`, `v` (attention's inputs), `o` (its output), `gate`, `up` (the feed-forward's
/// input products) and `down` (its output). GPT-NeoX blocks have one fused input product, `qkv` (PEFT's
/// `query_key_value`), and `o` (`dense`), `up` (`dense_h_to_4h`), `down` (`dense_4h_to_h`).
public enum LoRATarget: String, CaseIterable, Sendable, Codable {
    case q, k, v, o, gate, up, down, qkv

    /// The targets a block of `block` has, in the order adapters are stored.
    public static func available(for block: LlamaConfig.BlockStyle) -> [LoRATarget] {
        switch block {
        case .llama: return [.q, .k, .v, .o, .gate, .up, .down]
        case .gptNeoX: return [.qkv, .o, .up, .down]
        }
    }

    /// Where in the block the target's product runs: the adapter reads that product's input and adds to its output.
    enum Site { case attentionInput, attentionOutput, ffnInput, ffnOutput }

    /// The target's input and output widths in a block of `config`, the first column of its output in the product it is
    /// part of (q, k, v in the fused q|k|v product; gate, up in gate|up), and that product's row width.
    func dimensions(_ config: LlamaConfig) -> (inDim: Int, outDim: Int, offset: Int, ld: Int) {
        let c = config.dim, f = config.ffnDim, kv = config.nKVHeads * config.headDim, w3 = c + 2 * kv
        let fin = config.ffnInputWidth
        switch self {
        case .q: return (c, c, 0, w3)
        case .k: return (c, kv, c, w3)
        case .v: return (c, kv, c + kv, w3)
        case .qkv: return (c, w3, 0, w3)
        case .o: return (c, c, 0, c)
        case .gate: return (c, f, 0, fin)
        case .up: return (c, f, config.block == .llama ? f : 0, fin)
        case .down: return (f, c, 0, c)
        }
    }

    var site: Site {
        switch self {
        case .q, .k, .v, .qkv: return .attentionInput
        case .o: return .attentionOutput
        case .gate: return .ffnInput
        case .up: return .ffnInput
        case .down: return .ffnOutput
        }
    }
}

/// `train.lora`: W x + (alpha / rank) B A dropout(x) on each target projection W (Hu et al. 2021), PEFT's form.
public struct LoRASettings: Sendable, Equatable, Codable {
    public var rank: Int
    public var alpha: Double
    /// Probability of zeroing each input entry of an adapter (scaled by 1 / (1 - dropout)) in training forwards.
    public var dropout: Double
    public var targets: [LoRATarget]
    /// Seeds A's initialisation and the dropout masks.
    public var seed: UInt64

    public init(rank: Int, alpha: Double, dropout: Double = 0, targets: [LoRATarget], seed: UInt64) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
        self.seed = seed
    }

    /// alpha / rank, the factor on B A.
    public var scale: Float { Float(alpha / Double(rank)) }

    /// Floats of the adapters on a model of `config`: rank x (in + out) per target and block.
    public func parameterCount(_ config: LlamaConfig) -> Int {
        targets.reduce(0) { sum, t in
            let d = t.dimensions(config)
            return sum + rank * (d.inDim + d.outDim)
        } * config.nLayers
    }

    /// What the plan line says of the adapters: "LoRA r=8 on 7 projections: 2.4 M of 134.5 M parameters trained".
    public func planText(_ config: LlamaConfig) -> String {
        let total = LlamaModel.parameterTable(for: config).reduce(0) { $0 + $1.shape.reduce(1, *) }
        func millions(_ n: Int) -> String { n >= 100_000 ? String(format: "%.1f M", Double(n) / 1e6) : String(format: "%.1f K", Double(n) / 1e3) }
        return "LoRA r=\(rank) on \(targets.count) projection\(targets.count == 1 ? "" : "s"): \(millions(parameterCount(config))) of \(millions(total)) parameters trained"
    }
}

/// The low-rank adapters of one model (`LlamaModel.attachLoRA`): for each block and target, A (rank, in) and
/// B (out, rank) in one allocation (`parameters`, names `blk.{l}.{target}.lora_a` / `.lora_b`), with their
/// gradients in a second. Initialised as PEFT does: A uniform in +-1/sqrt(in) (kaiming-uniform with a = sqrt(5)),
/// B zero, so the adapted model scores exactly as the base until B moves.
public final class LoRAAdapters {
    public let settings: LoRASettings
    /// (name, shape) of each tensor in `parameters`, per block in `LoRATarget.available` order, A before B.
    public let table: [(name: String, shape: [Int])]
    public let parameters: UnsafeMutableBufferPointer<Float>
    public let gradients: UnsafeMutableBufferPointer<Float>
    /// Off: every forward is the base model's (a reference without a second copy of the weights).
    public var enabled = true
    /// Names the dropout masks of the next training forwards (the trainer sets it from the step and micro-batch,
    /// so that a resumed run draws the same masks); backward redraws the forward's masks from it.
    public var dropoutKey: UInt64 = 0

    struct Adapter {
        let target: LoRATarget
        /// Input width, output width, and the first output column in the product the target is part of (q, k, v in
        /// the fused q|k|v product; gate, up in gate|up), whose row width is `ld`.
        let inDim: Int, outDim: Int, offset: Int, ld: Int
        let a, b, ga, gb: UnsafeMutablePointer<Float>
        /// Index of the adapter among all (names its dropout stream).
        let index: Int
    }
    /// Per block, its adapters.
    let blocks: [[Adapter]]
    /// Widest adapter input (the feed-forward width when `down` is a target).
    let maxInput: Int

    /// Adapters for a model of `config` (`LlamaModel.attachLoRA` applies them; `export --format peft` only reads them).
    public init(settings: LoRASettings, config: LlamaConfig) {
        self.settings = settings
        let chosen = Set(settings.targets)
        let order = LoRATarget.available(for: config.block).filter { chosen.contains($0) }
        func shape(_ t: LoRATarget) -> (inDim: Int, outDim: Int, offset: Int, ld: Int) { t.dimensions(config) }
        let r = settings.rank
        var table: [(name: String, shape: [Int])] = []
        for l in 0..<config.nLayers {
            for t in order {
                let s = shape(t)
                table += [("blk.\(l).\(t.rawValue).lora_a", [r, s.inDim]), ("blk.\(l).\(t.rawValue).lora_b", [s.outDim, r])]
            }
        }
        self.table = table
        let total = table.reduce(0) { $0 + $1.shape.reduce(1, *) }
        parameters = .allocate(capacity: total)
        parameters.initialize(repeating: 0)
        gradients = .allocate(capacity: total)
        gradients.initialize(repeating: 0)
        var offset = 0, index = 0, widest = 0
        var blocks: [[Adapter]] = []
        let p = parameters.baseAddress!, g = gradients.baseAddress!
        for _ in 0..<config.nLayers {
            var list: [Adapter] = []
            for t in order {
                let s = shape(t)
                let aCount = r * s.inDim, bCount = s.outDim * r
                list.append(Adapter(target: t, inDim: s.inDim, outDim: s.outDim, offset: s.offset, ld: s.ld,
                                    a: p + offset, b: p + offset + aCount, ga: g + offset, gb: g + offset + aCount, index: index))
                offset += aCount + bCount
                index += 1
                widest = max(widest, s.inDim)
            }
            blocks.append(list)
        }
        self.blocks = blocks
        maxInput = widest
        // A: kaiming-uniform with a = sqrt(5) over fan_in = in, i.e. uniform in +-1/sqrt(in); B: zero.
        var rng = SplitMix64(seed: settings.seed, stream: 0x4c6f_5241)  // the stream "LoRA"
        for list in blocks {
            for ad in list {
                let bound = 1 / Double(ad.inDim).squareRoot()
                for i in 0..<(r * ad.inDim) { ad.a[i] = Float((2 * rng.uniform() - 1) * bound) }
            }
        }
    }

    deinit {
        parameters.deallocate()
        gradients.deallocate()
    }

    /// Floats of scratch an adapter pass over n rows needs (`BlockBuffers.adapterScratch`): the rank-wide rows
    /// twice, and one input-wide copy for dropout (training) or the input's gradient (backward).
    static func scratchFloats(rank: Int, maxInput: Int, rows n: Int) -> Int { n * (2 * rank + 2 * maxInput) }

    public var parameterCount: Int { parameters.count }

    /// The tensor `name` of `table`.
    public func parameter(_ name: String) -> UnsafeMutableBufferPointer<Float> {
        var offset = 0
        for (n, shape) in table {
            let count = shape.reduce(1, *)
            if n == name { return UnsafeMutableBufferPointer(rebasing: parameters[offset..<(offset + count)]) }
            offset += count
        }
        preconditionFailure("LoRAAdapters: no tensor named \(name)")
    }

    /// The gradient of tensor `name`.
    public func gradient(_ name: String) -> UnsafeMutableBufferPointer<Float> {
        let p = parameter(name)
        return UnsafeMutableBufferPointer(start: gradients.baseAddress! + (p.baseAddress! - parameters.baseAddress!), count: p.count)
    }

    /// Whether entry `i` of adapter `index`'s input is kept by the dropout of key `key`: a stateless hash (so backward
    /// and a recomputing forward draw the forward's mask), each 64-bit hash giving four entries a 16-bit draw (the
    /// dropout probability is rounded to a multiple of 1/65536). `stream` is `Self.stream(index:key:seed:)`.
    @inline(__always)
    static func keeps(_ i: Int, stream: UInt64, threshold: UInt64) -> Bool {
        let h = SplitMix64.mix(stream &+ UInt64(i >> 2))
        return (h >> (16 * UInt64(i & 3))) & 0xffff >= threshold
    }

    /// The dropout stream of adapter `index` under key `key`.
    static func stream(index: Int, key: UInt64, seed: UInt64) -> UInt64 {
        seed ^ SplitMix64.mix(key &* 0x9e37_79b9_7f4a_7c15 &+ UInt64(index))
    }

    /// The 16-bit threshold of `dropout` (entries whose draw is below it are dropped).
    var dropThreshold: UInt64 { UInt64((settings.dropout * 65536).rounded()) }

    /// xd = dropout(x) for adapter `ad` over n rows (x with row stride `ldx`), into `out` (n, inDim). Returns x
    /// itself when no dropout applies.
    func dropped(_ ad: Adapter, _ x: UnsafePointer<Float>, ldx: Int, n: Int, training: Bool,
                 out: UnsafeMutablePointer<Float>) -> (UnsafePointer<Float>, Int) {
        guard training && settings.dropout > 0 else { return (x, ldx) }
        let threshold = dropThreshold, keep = Float(1 / (1 - settings.dropout))
        let w = ad.inDim, stream = Self.stream(index: ad.index, key: dropoutKey, seed: settings.seed)
        let o = SendablePointer(out), xs = SendablePointer(UnsafeMutablePointer(mutating: x))
        parallelFor(n, grain: max(1, 16384 / w)) { rows in
            for r in rows {
                for j in 0..<w {
                    o.p[r * w + j] = Self.keeps(r * w + j, stream: stream, threshold: threshold) ? xs.p[r * ldx + j] * keep : 0
                }
            }
        }
        return (UnsafePointer(out), w)
    }

    /// y[:, offset..<offset+out] += scale * dropout(x) A^T B^T for the adapters of block `l` at `site`.
    /// x: (n, in) with row stride `ldx`; y: rows of the product's width. `scratch`: `scratchFloats` floats.
    func forward(_ l: Int, site: LoRATarget.Site, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, ldx: Int, n: Int,
                 training: Bool, scratch: UnsafeMutablePointer<Float>) {
        guard enabled else { return }
        let r = settings.rank, s = settings.scale
        for ad in blocks[l] where ad.target.site == site {
            let u = scratch, xd = scratch + 2 * n * r
            let (input, ld) = dropped(ad, x, ldx: ldx, n: n, training: training, out: xd)
            matmul(u, input, ad.a, m: n, n: r, k: ad.inDim, transB: true, lda: ld)
            matmul(y + ad.offset, u, ad.b, m: n, n: ad.outDim, k: r, transB: true, ldc: ad.ld, alpha: s, beta: 1)
        }
    }

    /// Backward of `forward` at `site`: with dy the product's output gradient (n rows of width `ad.ld`) and x its input,
    /// ADDS into the adapters' gradients (dB += s dy^T u, dA += (s dy B)^T xd) and into dx (n, in; stride `ldx`).
    func backward(_ l: Int, site: LoRATarget.Site, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, ldx: Int,
                  dx: UnsafeMutablePointer<Float>, n: Int, scratch: UnsafeMutablePointer<Float>) {
        guard enabled else { return }
        let r = settings.rank, s = settings.scale
        let dropout = settings.dropout > 0
        for ad in blocks[l] where ad.target.site == site {
            let u = scratch, du = scratch + n * r, xd = scratch + 2 * n * r, dxd = xd + n * maxInput
            let (input, ld) = dropped(ad, x, ldx: ldx, n: n, training: true, out: xd)
            matmul(u, input, ad.a, m: n, n: r, k: ad.inDim, transB: true, lda: ld)
            let dyOut = dy + ad.offset
            matmul(ad.gb, dyOut, u, m: ad.outDim, n: r, k: n, transA: true, lda: ad.ld, alpha: s, beta: 1)
            matmul(du, dyOut, ad.b, m: n, n: r, k: ad.outDim, lda: ad.ld, alpha: s)
            matmul(ad.ga, du, input, m: r, n: ad.inDim, k: n, transA: true, ldb: ld, beta: 1)
            if !dropout {
                matmul(dx, du, ad.a, m: n, n: ad.inDim, k: r, ldc: ldx, beta: 1)
            } else {
                // dx += mask / (1 - p) * (du A): the input's gradient through the same mask
                matmul(dxd, du, ad.a, m: n, n: ad.inDim, k: r)
                let threshold = dropThreshold, keep = Float(1 / (1 - settings.dropout))
                let w = ad.inDim, stream = Self.stream(index: ad.index, key: dropoutKey, seed: settings.seed)
                let d = SendablePointer(dx), g = SendablePointer(dxd)
                parallelFor(n, grain: max(1, 16384 / w)) { rows in
                    for row in rows {
                        for j in 0..<w where Self.keeps(row * w + j, stream: stream, threshold: threshold) {
                            d.p[row * ldx + j] += g.p[row * w + j] * keep
                        }
                    }
                }
            }
        }
    }

    /// W += scale * B A for every adapter, into `weights`: `model.parameters` (merging for good) or a buffer in its layout.
    func merge(into model: LlamaModel, weights: UnsafeMutablePointer<Float>) {
        let s = settings.scale, r = settings.rank
        let shift = weights - model.parameters.baseAddress!
        for (l, list) in blocks.enumerated() {
            let w = model.pBlocks[l]
            for ad in list {
                let base: UnsafeMutablePointer<Float>
                switch ad.target.site {
                case .attentionInput: base = w.wq
                case .attentionOutput: base = w.wo
                case .ffnInput: base = w.wIn
                case .ffnOutput: base = w.wDown
                }
                matmul(base + shift + ad.offset * ad.inDim, ad.b, ad.a, m: ad.outDim, n: ad.inDim, k: r, alpha: s, beta: 1)
            }
        }
    }
}
