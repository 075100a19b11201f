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

    /// Columns of u = dropout(x) A^T over a block's adapters (rank per target): what a training forward keeps per
    /// token and block for backward.
    public var keptColumns: Int { targets.count * rank }

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
/// B (out, rank), with their gradients in a second allocation of the same layout. The adapters of a block that read
/// the same input (q, k, v; gate, up) form a group whose A's are adjacent, one (group size x rank, in) matrix, so that
/// x A^T, the A gradient and the input's gradient are one product for the group; per block and group the A's come
/// first, then the B's (`table`, names `blk.{l}.{target}.lora_a` / `.lora_b`). Initialised as PEFT does: A uniform in
/// +-1/sqrt(in) (kaiming-uniform with a = sqrt(5)), B zero, so the adapted model scores exactly as the base until B
/// moves.
public final class LoRAAdapters {
    public let settings: LoRASettings
    /// (name, shape) of each tensor in `parameters`, in storage order.
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
        let layer: Int
        /// Input width, output width, and the first output column in the product the target is part of (q, k, v in
        /// the fused q|k|v product; gate, up in gate|up), whose row width is `ld`.
        let inDim: Int, outDim: Int, offset: Int, ld: Int
        let a, b, ga, gb: UnsafeMutablePointer<Float>
        /// Index of the adapter among all (names its dropout stream).
        let index: Int
    }

    /// The adapters of one block at one site: they read the same input, and their A's are one matrix.
    struct Group {
        let site: LoRATarget.Site
        let adapters: [Adapter]
        let inDim: Int
        /// (adapters x rank, in): the A's stacked, and their gradients.
        let a, ga: UnsafeMutablePointer<Float>
        /// adapters x rank: the columns of u = x A^T.
        let width: Int
        /// The first column of this group's u among the block's (`keptColumns`).
        let keptColumn: Int
    }
    /// Per block, its groups in site order.
    let blocks: [[Group]]
    /// Widest adapter input (the feed-forward width when `down` is a target).
    let maxInput: Int
    /// Widest group (adapters x rank).
    let maxWidth: Int
    /// Columns of u = x A^T over a block's groups: what a training forward keeps per row and block for backward.
    public var keptColumns: Int { settings.keptColumns }

    /// Every adapter, block by block in `LoRATarget.available` order.
    var adapters: [Adapter] { blocks.flatMap { $0.flatMap(\.adapters) } }

    /// Each adapter's block and target, with its A (rank, in) and B (out, rank), block by block in
    /// `LoRATarget.available` order (what `export --format peft` writes).
    public var tensors: [(layer: Int, target: LoRATarget, a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>)] {
        let r = settings.rank
        return adapters.map { ad in
            (ad.layer, ad.target, UnsafeBufferPointer(start: ad.a, count: r * ad.inDim), UnsafeBufferPointer(start: ad.b, count: ad.outDim * r))
        }
    }

    /// Adapters for a model of `config` (`LlamaModel.attachLoRA` applies them; `export --format peft` only reads them).
    public init(settings: LoRASettings, config: LlamaConfig) {
        self.settings = settings
        let chosen = Set(settings.targets)
        let order = LoRATarget.available(for: config.block).filter { chosen.contains($0) }
        // adjacent targets of one site form a group (`available` lists them site by site)
        var sites: [[LoRATarget]] = []
        for t in order {
            if let last = sites.last?.last, last.site == t.site { sites[sites.count - 1].append(t) } else { sites.append([t]) }
        }
        let r = settings.rank
        var table: [(name: String, shape: [Int])] = []
        for l in 0..<config.nLayers {
            for site in sites {
                for t in site { table.append(("blk.\(l).\(t.rawValue).lora_a", [r, t.dimensions(config).inDim])) }
                for t in site { table.append(("blk.\(l).\(t.rawValue).lora_b", [t.dimensions(config).outDim, r])) }
            }
        }
        self.table = table
        let total = table.reduce(0) { $0 + $1.shape.reduce(1, *) }
        parameters = .allocate(capacity: total)
        parameters.initialize(repeating: 0)
        gradients = .allocate(capacity: total)
        gradients.initialize(repeating: 0)
        var offset = 0, index = 0, widest = 0, widestGroup = 0
        var blocks: [[Group]] = []
        let p = parameters.baseAddress!, g = gradients.baseAddress!
        for l in 0..<config.nLayers {
            var groups: [Group] = []
            var column = 0
            for site in sites {
                let inDim = site[0].dimensions(config).inDim, aStart = offset
                offset += site.count * r * inDim
                var list: [Adapter] = []
                for (i, t) in site.enumerated() {
                    let s = t.dimensions(config)
                    list.append(Adapter(target: t, layer: l, inDim: s.inDim, outDim: s.outDim, offset: s.offset, ld: s.ld,
                                        a: p + aStart + i * r * inDim, b: p + offset, ga: g + aStart + i * r * inDim, gb: g + offset,
                                        index: index))
                    offset += s.outDim * r
                    index += 1
                }
                groups.append(Group(site: site[0].site, adapters: list, inDim: inDim, a: p + aStart, ga: g + aStart,
                                    width: site.count * r, keptColumn: column))
                column += site.count * r
                widest = max(widest, inDim)
                widestGroup = max(widestGroup, site.count * r)
            }
            blocks.append(groups)
        }
        self.blocks = blocks
        maxInput = widest
        maxWidth = widestGroup
        // A: kaiming-uniform with a = sqrt(5) over fan_in = in, i.e. uniform in +-1/sqrt(in); B: zero.
        var rng = SplitMix64(seed: settings.seed, stream: 0x4c6f_5241)  // the stream "LoRA"
        for ad in adapters {
            let bound = 1 / Double(ad.inDim).squareRoot()
            for i in 0..<(r * ad.inDim) { ad.a[i] = Float((2 * rng.uniform() - 1) * bound) }
        }
    }

    deinit {
        parameters.deallocate()
        gradients.deallocate()
    }

    /// Floats of scratch an adapter pass over n rows needs (`BlockBuffers.adapterScratch`): u and its gradient
    /// (group-wide rows), and two input-wide rows for dropout (the dropped input, the input's gradient).
    func scratchFloats(rows n: Int) -> Int { n * (2 * maxWidth + 2 * maxInput) }

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

    /// Whether dropout applies to a forward (`training`).
    func drops(training: Bool) -> Bool { training && settings.dropout > 0 }

    /// The dropout mask of adapter `ad` (n rows of its input) applied to `src` (row stride `lds`): dst = mask / (1 - p)
    /// * src, or with `accumulate` dst += mask / (1 - p) * src (dst row stride `ldd`). The forward drops the input with
    /// it, backward passes the input's gradient through the same mask.
    func applyMask(_ ad: Adapter, _ src: UnsafePointer<Float>, lds: Int, into dst: UnsafeMutablePointer<Float>, ldd: Int, n: Int,
                   accumulate: Bool) {
        let threshold = dropThreshold, keep = Float(1 / (1 - settings.dropout))
        let w = ad.inDim, stream = Self.stream(index: ad.index, key: dropoutKey, seed: settings.seed)
        let d = SendablePointer(dst), s = SendablePointer(UnsafeMutablePointer(mutating: src))
        parallelFor(n, grain: max(1, 16384 / w)) { rows in
            for row in rows {
                for j in 0..<w {
                    let kept = Self.keeps(row * w + j, stream: stream, threshold: threshold)
                    if accumulate {
                        if kept { d.p[row * ldd + j] += s.p[row * lds + j] * keep }
                    } else {
                        d.p[row * ldd + j] = kept ? s.p[row * lds + j] * keep : 0
                    }
                }
            }
        }
    }

    /// u = dropout(x) A^T for `group` (n rows; u: n x group.width): one product without dropout, else one per adapter
    /// (each adapter draws its own mask, as PEFT's modules do), the dropped input in `xd` (n x inDim).
    func project(_ group: Group, x: UnsafePointer<Float>, ldx: Int, n: Int, training: Bool, u: UnsafeMutablePointer<Float>,
                 xd: UnsafeMutablePointer<Float>) {
        guard drops(training: training) else {
            matmul(u, x, group.a, m: n, n: group.width, k: group.inDim, transB: true, lda: ldx)
            return
        }
        let r = settings.rank
        for (i, ad) in group.adapters.enumerated() {
            applyMask(ad, x, lds: ldx, into: xd, ldd: ad.inDim, n: n, accumulate: false)
            matmul(u + i * r, xd, ad.a, m: n, n: r, k: ad.inDim, transB: true, ldc: group.width)
        }
    }

    /// y[:, offset..<offset+out] += scale * dropout(x) A^T B^T for the adapters of block `l` at `site`.
    /// x: (n, in) with row stride `ldx`; y: rows of the product's width. `scratch`: `scratchFloats` floats. `keep`: where
    /// a training forward keeps u = dropout(x) A^T for backward (the block's n x `keptColumns` rows), or nil.
    func forward(_ l: Int, site: LoRATarget.Site, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, ldx: Int, n: Int,
                 training: Bool, scratch: UnsafeMutablePointer<Float>, keep: UnsafeMutablePointer<Float>? = nil) {
        guard enabled, let group = blocks[l].first(where: { $0.site == site }) else { return }
        let r = settings.rank, s = settings.scale
        let u = keep.map { $0 + n * group.keptColumn } ?? scratch
        project(group, x: x, ldx: ldx, n: n, training: training, u: u, xd: scratch + 2 * n * maxWidth)
        for (i, ad) in group.adapters.enumerated() {
            matmul(y + ad.offset, u + i * r, ad.b, m: n, n: ad.outDim, k: r, transB: true, lda: group.width, ldc: ad.ld, alpha: s, beta: 1)
        }
    }

    /// Backward of `forward` at `site`: with dy the product's output gradient (n rows of width `ad.ld`) and x its input,
    /// ADDS into the adapters' gradients (dB += s dy^T u, dA += (s dy B)^T xd) and into dx (n, in; stride `ldx`).
    /// `kept`: the block's u that the training forward kept (`forward`'s `keep`).
    func backward(_ l: Int, site: LoRATarget.Site, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, ldx: Int,
                  dx: UnsafeMutablePointer<Float>, n: Int, scratch: UnsafeMutablePointer<Float>, kept: UnsafePointer<Float>) {
        guard enabled, let group = blocks[l].first(where: { $0.site == site }) else { return }
        let r = settings.rank, s = settings.scale, w = group.width
        let du = scratch + n * maxWidth, xd = scratch + 2 * n * maxWidth, dxd = xd + n * maxInput
        let u = kept + n * group.keptColumn
        for (i, ad) in group.adapters.enumerated() {
            let dyOut = dy + ad.offset
            matmul(ad.gb, dyOut, u + i * r, m: ad.outDim, n: r, k: n, transA: true, lda: ad.ld, ldb: w, alpha: s, beta: 1)
            matmul(du + i * r, dyOut, ad.b, m: n, n: r, k: ad.outDim, lda: ad.ld, ldc: w, alpha: s)
        }
        guard drops(training: true) else {
            // the group at once: dA += du^T x, dx += du A
            matmul(group.ga, du, x, m: w, n: group.inDim, k: n, transA: true, lda: w, ldb: ldx, beta: 1)
            matmul(dx, du, group.a, m: n, n: group.inDim, k: w, lda: w, ldc: ldx, beta: 1)
            return
        }
        for (i, ad) in group.adapters.enumerated() {
            applyMask(ad, x, lds: ldx, into: xd, ldd: ad.inDim, n: n, accumulate: false)
            matmul(ad.ga, du + i * r, xd, m: r, n: ad.inDim, k: n, transA: true, lda: w, beta: 1)
            // dx += mask / (1 - p) * (du A): the input's gradient through the same mask
            matmul(dxd, du + i * r, ad.a, m: n, n: ad.inDim, k: r, lda: w)
            applyMask(ad, dxd, lds: ad.inDim, into: dx, ldd: ldx, n: n, accumulate: true)
        }
    }

    /// W += scale * B A for every adapter, into `weights`: `model.parameters` (merging for good) or a buffer in its layout.
    func merge(into model: LlamaModel, weights: UnsafeMutablePointer<Float>) {
        let s = settings.scale, r = settings.rank
        let shift = weights - model.parameters.baseAddress!
        for (l, groups) in blocks.enumerated() {
            let w = model.pBlocks[l]
            for ad in groups.flatMap(\.adapters) {
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
