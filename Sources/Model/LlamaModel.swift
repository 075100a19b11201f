import Base
import Kernels
#if canImport(Glibc)
import Glibc
#endif

/// A Llama-family transformer with hand-written forward and backward over a packed batch.
///
/// Parameters, gradients and activations each live in one allocation carved by a table of named sizes;
/// activations are sized once for `maxTokens` tokens, so `forward`/`backward` allocate nothing.
/// Not thread-safe: use one model per thread of work.
public final class LlamaModel {
    public let config: LlamaConfig
    /// Capacity of one packed batch, in tokens.
    public let maxTokens: Int
    /// The input type of the weight products in `forward` and `backward` (the spec's `precision`): bf16
    /// rounds the products' inputs; weights, gradients, activations, norms, softmax and the loss stay
    /// float32. Needs `Products.bf16Supported`. Scoring through `BatchSession` has its own setting.
    public var precision: Precision = .fp32
    /// Longest sequence a batch may hold (sizes the RoPE table).
    public let maxSequenceLength: Int
    /// Vocabulary columns per chunk of the output head: its logits are computed chunk by chunk.
    static let headChunk = 2048
    /// Default for `init`'s `keptLogitsBytes`: 256 MiB keeps the logits of 1020 targets of SmolLM2 (192 MiB).
    public static let defaultKeptLogitsBytes = 256 << 20

    /// Parameter tensors in storage order, with GGUF names and GGUF layout: a matrix W of shape
    /// [out, in] is stored row-major out x in (y = W x). Q/K rows are in GGUF order (RoPE on adjacent pairs).
    /// "token_embd.weight" [vocab, dim]; per block i: "blk.{i}.attn_norm.weight" [dim],
    /// "blk.{i}.attn_q.weight" [nHeads*headDim, dim], "blk.{i}.attn_k.weight" [nKV*headDim, dim],
    /// "blk.{i}.attn_v.weight" [nKV*headDim, dim], "blk.{i}.attn_output.weight" [dim, dim],
    /// "blk.{i}.ffn_norm.weight" [dim], "blk.{i}.ffn_gate.weight" [ffn, dim], "blk.{i}.ffn_up.weight" [ffn, dim],
    /// "blk.{i}.ffn_down.weight" [dim, ffn]; "output_norm.weight" [dim]; "output.weight" [vocab, dim] unless tied.
    /// With `qkvBias`, "blk.{i}.attn_q.bias" [dim], "attn_k.bias", "attn_v.bias" [nKV*headDim] after attn_v.
    /// GPT-NeoX blocks (llama.cpp's `gptneox` names): "attn_norm.bias", "attn_qkv.weight" [dim + 2 kvDim, dim]
    /// (rows q | k | v) and "attn_qkv.bias" in place of attn_q/k/v, "attn_output.bias", "ffn_norm.bias",
    /// "ffn_up.weight"/".bias", "ffn_down.weight"/".bias" (no ffn_gate), and "output_norm.bias".
    /// A reward model (`rewardHead`) ends with "reward_head.weight" [1, dim].
    public let parameterTable: [(name: String, shape: [Int])]
    private let parameterIndex: [String: (offset: Int, count: Int)]

    /// All parameters, in `parameterTable` order (the one allocation).
    public let parameters: UnsafeMutableBufferPointer<Float>
    /// All gradients, same layout as `parameters`. Zero pages from `calloc`: with LoRA (frozen weights) they are
    /// never written, so they take no memory.
    public let gradients: UnsafeMutableBufferPointer<Float>
    /// The low-rank adapters (`attachLoRA`); nil when every weight trains.
    public private(set) var lora: LoRAAdapters?
    /// With `lora`: the adapters' scratch for `maxTokens` rows, and the frozen norms' unused weight gradients.
    private var loraScratch: UnsafeMutableBufferPointer<Float>?
    /// With `lora`: per block, u = dropout(x) A^T of the last training forward (`maxTokens` rows of `keptColumns`).
    private var loraKept: UnsafeMutableBufferPointer<Float>?
    public var parameterCount: Int { parameters.count }
    /// Parameters before the reward head (all of them without one): the weights a language model of the same
    /// configuration has, in the same order.
    public var languageModelParameterCount: Int { parameterCount - (config.rewardHead ? config.dim : 0) }

    struct Block {
        /// wq: the (dim + 2 kvDim, dim) matrix of the adjacent Q, K, V weights; wIn: the feed-forward's input
        /// product, (2 ffn, dim) gate | up for SwiGLU or (ffn, dim) up for GELU.
        var attnNorm, wq, wo, ffnNorm, wIn, wDown: UnsafeMutablePointer<Float>
        /// q | k | v biases, adjacent (dim + 2 kvDim floats), when `config.qkvBias`.
        var bqkv: UnsafeMutablePointer<Float>?
        /// GPT-NeoX: the LayerNorms' biases and the other linear layers' biases.
        var attnNormBias, ffnNormBias, bo, bIn, bDown: UnsafeMutablePointer<Float>?
    }
    struct Global {
        var embedding, outputNorm, output: UnsafeMutablePointer<Float>
        var outputNormBias: UnsafeMutablePointer<Float>?
        /// (dim) the reward head's weights (`config.rewardHead`).
        var rewardHead: UnsafeMutablePointer<Float>?
    }
    let pBlocks: [Block], gBlocks: [Block]
    let p: Global, g: Global

    /// Per-layer stored activations. qkv: (n, dim + 2 kvDim), each row q | k | v, from one sgemm against the
    /// adjacent attn_q, attn_k, attn_v weights; gateUp: (n, 2 ffn), each row gate | up, likewise.
    /// The normalised inputs, the SwiGLU output and the attention probabilities are not stored: backward
    /// recomputes them (bit-identical) from the layer input, rstd, gateUp and qkv, which saves
    /// 30 x n x (2 dim + ffn + heads x sequence length) floats for SmolLM2.
    struct LayerActs {
        var attnRstd, qkv, att, residMid, ffnRstd, gateUp: UnsafeMutablePointer<Float>
    }
    private let activations: UnsafeMutableBufferPointer<Float>
    private let indices: UnsafeMutableBufferPointer<Int32>
    private let layers: [LayerActs]
    /// Whether block activations are recomputed in backward (see `init`).
    public let checkpointActivations: Bool
    /// `init`'s memory allowance for kept logits.
    let keptLogitsBytes: Int
    /// Residual stream: resid[l] enters block l; resid[nLayers] enters the final norm.
    private let resid: [UnsafeMutablePointer<Float>]
    /// normOut: (n, dim), the output of whichever RMSNorm ran last; hidden: (n, ffn), likewise for SwiGLU.
    private let finalRstd, compact, lse, compactLp, compactDlp, logprobs, dCompact: UnsafeMutablePointer<Float>
    /// The shared region: the output head's logits (`headLogits`, from the start of the region) live only from
    /// the head's forward to its backward, while normOut, hidden and the backward's buffers (disjoint slots
    /// in the same region) are dead then, so they share the memory. A training forward keeps every chunk of
    /// logits for backward when they fit the region (`headLogitsCapacity` floats), else backward recomputes them.
    private let headLogits: UnsafeMutablePointer<Float>
    private let headLogitsCapacity: Int
    private let normOut, hidden, dResid, dNorm, dQKV, dAtt, dGateUp, dHidden: UnsafeMutablePointer<Float>
    private var lastLogSumSquaresStorage: [Float] = []
    /// log sum_v p_v^2 at each position of the last `forward(_:training:logSumSquares: true)` (0 where no target);
    /// empty after a forward without it.
    public var lastLogSumSquares: [Float] { lastLogSumSquaresStorage }
    /// Whether the last forward kept the head's logits for backward.
    private(set) var logitsKept = false
    private let tokenBuf, positions, compactRows, compactTargets: UnsafeMutablePointer<Int32>
    let ropeCos: [Float], ropeSin: [Float]

    private var lastStarts: [Int] = []
    private var lastCount = 0
    private var lastTargeted = 0
    /// Which head the last training forward ran, until its backward.
    private enum Head { case languageModel, reward }
    private var readyForBackward: Head?

    /// The weights rounded to bf16, in `parameters`' layout, inside `withRoundedWeights` scopes only
    /// (`RoundedWeights.swift`); nil outside them.
    var roundedStorage: UnsafeMutableBufferPointer<UInt16>?
    var roundedScopes = 0

    /// The `parameterTable` a model of this configuration has, without allocating one.
    public static func parameterTable(for config: LlamaConfig) -> [(name: String, shape: [Int])] {
        let c = config.dim, f = config.ffnDim, v = config.vocabSize, kv = config.nKVHeads * config.headDim
        var table: [(name: String, shape: [Int])] = [("token_embd.weight", [v, c])]
        let neox = config.block == .gptNeoX
        for i in 0..<config.nLayers {
            table.append(("blk.\(i).attn_norm.weight", [c]))
            if neox {
                table += [("blk.\(i).attn_norm.bias", [c]), ("blk.\(i).attn_qkv.weight", [c + 2 * kv, c]),
                          ("blk.\(i).attn_qkv.bias", [c + 2 * kv])]
            } else {
                table += [("blk.\(i).attn_q.weight", [c, c]), ("blk.\(i).attn_k.weight", [kv, c]), ("blk.\(i).attn_v.weight", [kv, c])]
                if config.qkvBias {
                    table += [("blk.\(i).attn_q.bias", [c]), ("blk.\(i).attn_k.bias", [kv]), ("blk.\(i).attn_v.bias", [kv])]
                }
            }
            table.append(("blk.\(i).attn_output.weight", [c, c]))
            if neox { table.append(("blk.\(i).attn_output.bias", [c])) }
            table.append(("blk.\(i).ffn_norm.weight", [c]))
            if neox {
                table += [("blk.\(i).ffn_norm.bias", [c]), ("blk.\(i).ffn_up.weight", [f, c]), ("blk.\(i).ffn_up.bias", [f]),
                          ("blk.\(i).ffn_down.weight", [c, f]), ("blk.\(i).ffn_down.bias", [c])]
            } else {
                table += [("blk.\(i).ffn_gate.weight", [f, c]), ("blk.\(i).ffn_up.weight", [f, c]), ("blk.\(i).ffn_down.weight", [c, f])]
            }
        }
        table.append(("output_norm.weight", [c]))
        if neox { table.append(("output_norm.bias", [c])) }
        if !config.tiedEmbedding { table.append(("output.weight", [v, c])) }
        if config.rewardHead { table.append(("reward_head.weight", [1, c])) }  // last: a model without it is a prefix
        return table
    }

    /// The activation tables `init` carves for n tokens, (name, floats) per slot: the stored activations,
    /// and the shared region's slots (dead while the head's logits live; see `headLogits`).
    static func activationTables(_ config: LlamaConfig, tokens n: Int, checkpointed: Bool = false) -> (stored: [(String, Int)], shared: [(String, Int)]) {
        let c = config.dim, f = config.ffnDim, kv = config.nKVHeads * config.headDim, nl = config.nLayers
        let fin = config.ffnInputWidth
        var stored: [(String, Int)] = []
        for l in 0...nl { stored.append(("resid.\(l)", n * c)) }
        for l in 0..<(checkpointed ? 1 : nl) {  // checkpointed: one block's activations, reused by every block
            stored += [
                ("blk.\(l).attn_rstd", n), ("blk.\(l).qkv", n * (c + 2 * kv)),
                ("blk.\(l).att", n * c),
                ("blk.\(l).resid_mid", n * c), ("blk.\(l).ffn_rstd", n), ("blk.\(l).gate_up", n * fin),
            ]
        }
        stored += [
            ("final_rstd", n), ("compact", n * c), ("lse", n), ("compact_lp", n), ("compact_dlp", n), ("logprobs", n),
            ("d_compact", n * c),
        ]
        let shared: [(String, Int)] = [
            ("norm_out", n * c), ("hidden", n * f), ("d_resid", n * c), ("d_norm", n * c), ("d_qkv", n * (c + 2 * kv)),
            ("d_att", n * c), ("d_gate_up", n * fin), ("d_hidden", n * f),
        ]
        return (stored, shared)
    }

    /// Each slot is rounded up to 16 floats (64 bytes).
    static func slotFloats(_ count: Int) -> Int { (count + 15) / 16 * 16 }

    /// Floats of the activations `init` allocates for `tokens` tokens (without the logits a training forward
    /// may keep for backward): an estimate for memory checks before a model is built.
    public static func activationFloats(_ config: LlamaConfig, tokens n: Int, checkpointed: Bool = false) -> Double {
        let (stored, shared) = activationTables(config, tokens: n, checkpointed: checkpointed)
        let sharedFloats = max(shared.reduce(0) { $0 + slotFloats($1.1) }, n * min(config.vocabSize, headChunk))
        return Double(stored.reduce(0) { $0 + slotFloats($1.1) } + sharedFloats)
    }

    /// - Parameters:
    ///   - maxTokens: capacity of one packed batch.
    ///   - maxSequenceLength: longest sequence in a batch (default min(maxTokens, contextLength)); sizes the
    ///     RoPE table.
    ///   - keptLogitsBytes: memory a training forward may use to keep the output head's logits for backward
    ///     (targeted rows x vocabulary floats); batches with more targets recompute them in backward instead
    ///     (one more head product). Pages are only touched when used.
    /// - checkpointActivations: keep only each block's input between forward and backward, and recompute the
    ///   block's activations (one block's worth of memory, shared by all blocks) in backward just before they
    ///   are needed: one more block forward per block and step, for about (nLayers - 1) x the per-block
    ///   activations less memory. Gradients are bit for bit those without it.
    public init(config: LlamaConfig, maxTokens: Int, maxSequenceLength: Int? = nil,
                keptLogitsBytes: Int = LlamaModel.defaultKeptLogitsBytes, checkpointActivations: Bool = false) {
        config.validate()
        self.checkpointActivations = checkpointActivations
        self.keptLogitsBytes = keptLogitsBytes
        precondition(maxTokens > 0, "LlamaModel: maxTokens must be positive")
        self.config = config
        self.maxTokens = maxTokens
        let maxSeq = min(maxSequenceLength ?? min(maxTokens, config.contextLength), maxTokens)
        self.maxSequenceLength = maxSeq
        let v = config.vocabSize
        let nl = config.nLayers, n = maxTokens

        let table = Self.parameterTable(for: config)
        parameterTable = table
        var index: [String: (offset: Int, count: Int)] = [:]
        var total = 0
        for (name, shape) in table {
            let count = shape.reduce(1, *)
            index[name] = (total, count)
            total += count
        }
        parameterIndex = index
        // The forward runs Q, K, V as one sgemm and gate, up as another: their weights must be adjacent.
        for i in 0..<nl where config.block == .llama {
            let q = index["blk.\(i).attn_q.weight"]!, k = index["blk.\(i).attn_k.weight"]!
            let v = index["blk.\(i).attn_v.weight"]!, gt = index["blk.\(i).ffn_gate.weight"]!
            let up = index["blk.\(i).ffn_up.weight"]!
            precondition(k.offset == q.offset + q.count && v.offset == k.offset + k.count
                         && up.offset == gt.offset + gt.count, "LlamaModel: fused projections need adjacent weights")
            if config.qkvBias {
                let bq = index["blk.\(i).attn_q.bias"]!, bk = index["blk.\(i).attn_k.bias"]!, bv = index["blk.\(i).attn_v.bias"]!
                precondition(bk.offset == bq.offset + bq.count && bv.offset == bk.offset + bk.count, "LlamaModel: q|k|v biases must be adjacent")
            }
        }
        parameters = .allocate(capacity: total)
        parameters.initialize(repeating: 0)
        gradients = UnsafeMutableBufferPointer(start: calloc(total, MemoryLayout<Float>.stride)!.assumingMemoryBound(to: Float.self),
                                               count: total)

        func carve(_ base: UnsafeMutableBufferPointer<Float>) -> (Global, [Block]) {
            let b = base.baseAddress!
            func t(_ name: String) -> UnsafeMutablePointer<Float> { b + index[name]!.offset }
            func o(_ name: String) -> UnsafeMutablePointer<Float>? { index[name].map { b + $0.offset } }
            let neox = config.block == .gptNeoX
            let blocks = (0..<nl).map { i in
                Block(attnNorm: t("blk.\(i).attn_norm.weight"), wq: t(neox ? "blk.\(i).attn_qkv.weight" : "blk.\(i).attn_q.weight"),
                      wo: t("blk.\(i).attn_output.weight"), ffnNorm: t("blk.\(i).ffn_norm.weight"),
                      wIn: t(neox ? "blk.\(i).ffn_up.weight" : "blk.\(i).ffn_gate.weight"),
                      wDown: t("blk.\(i).ffn_down.weight"),
                      bqkv: o(neox ? "blk.\(i).attn_qkv.bias" : "blk.\(i).attn_q.bias"),
                      attnNormBias: o("blk.\(i).attn_norm.bias"), ffnNormBias: o("blk.\(i).ffn_norm.bias"),
                      bo: o("blk.\(i).attn_output.bias"), bIn: neox ? o("blk.\(i).ffn_up.bias") : nil,
                      bDown: o("blk.\(i).ffn_down.bias"))
            }
            let emb = t("token_embd.weight")
            return (Global(embedding: emb, outputNorm: t("output_norm.weight"),
                           output: config.tiedEmbedding ? emb : t("output.weight"), outputNormBias: o("output_norm.bias"),
                           rewardHead: o("reward_head.weight")), blocks)
        }
        (p, pBlocks) = carve(parameters)
        (g, gBlocks) = carve(gradients)

        // Activation table (`activationTables`), then the shared region: disjoint slots for the buffers that
        // are dead while the head's logits live, and at least one chunk of logits or, within keptLogitsBytes,
        // all of them for n rows.
        let (actTable, sharedTable) = Self.activationTables(config, tokens: n, checkpointed: checkpointActivations)
        var actOffsets: [String: Int] = [:]
        var actTotal = 0
        for (name, count) in actTable {
            actOffsets[name] = actTotal
            actTotal += Self.slotFloats(count)
        }
        let sharedStart = actTotal
        for (name, count) in sharedTable {
            actOffsets[name] = actTotal
            actTotal += Self.slotFloats(count)
        }
        let perRowKept = outputHeadScratchCount(m: 1, v: v, chunk: Self.headChunk, kept: true)
        let keptRows = min(n, max(0, keptLogitsBytes) / MemoryLayout<Float>.stride / perRowKept)
        headLogitsCapacity = max(actTotal - sharedStart, n * min(v, Self.headChunk), keptRows * perRowKept)
        actTotal = sharedStart + headLogitsCapacity
        // Left uninitialised on purpose: every slot is written before it is read, and untouched pages
        // (e.g. activations beyond a short batch) then cost no memory.
        activations = .allocate(capacity: actTotal)
        let a = activations.baseAddress!
        func s(_ name: String) -> UnsafeMutablePointer<Float> { a + actOffsets[name]! }
        resid = (0...nl).map { s("resid.\($0)") }
        layers = (0..<nl).map { layer in
            let l = checkpointActivations ? 0 : layer
            return LayerActs(attnRstd: s("blk.\(l).attn_rstd"), qkv: s("blk.\(l).qkv"), att: s("blk.\(l).att"),
                      residMid: s("blk.\(l).resid_mid"), ffnRstd: s("blk.\(l).ffn_rstd"),
                      gateUp: s("blk.\(l).gate_up"))
        }
        finalRstd = s("final_rstd"); compact = s("compact")
        lse = s("lse"); compactLp = s("compact_lp"); compactDlp = s("compact_dlp"); logprobs = s("logprobs")
        dCompact = s("d_compact")
        headLogits = a + sharedStart
        normOut = s("norm_out"); hidden = s("hidden")
        dResid = s("d_resid"); dNorm = s("d_norm"); dQKV = s("d_qkv"); dAtt = s("d_att")
        dGateUp = s("d_gate_up"); dHidden = s("d_hidden")

        indices = .allocate(capacity: 4 * n)
        indices.initialize(repeating: 0)
        let ib = indices.baseAddress!
        tokenBuf = ib; positions = ib + n; compactRows = ib + 2 * n; compactTargets = ib + 3 * n

        (ropeCos, ropeSin) = ropeTable(positions: maxSeq, headDim: config.rotaryDims, base: config.ropeBase)
    }

    deinit {
        roundedStorage?.deallocate()
        loraScratch?.deallocate()
        loraKept?.deallocate()
        parameters.deallocate()
        free(gradients.baseAddress)
        activations.deallocate()
        indices.deallocate()
    }

    /// A reward model of this model: the same configuration, capacity and weights, plus `reward_head.weight`
    /// drawn from N(0, 0.02^2) by a `SplitMix64` seeded with `seed` (TRL's initialiser range for its score head).
    public func withRewardHead(seed: UInt64) -> LlamaModel {
        precondition(!config.rewardHead, "LlamaModel.withRewardHead: the model has one")
        var c = config
        c.rewardHead = true
        let out = LlamaModel(config: c, maxTokens: maxTokens, maxSequenceLength: maxSequenceLength,
                             keptLogitsBytes: keptLogitsBytes, checkpointActivations: checkpointActivations)
        out.precision = precision
        UnsafeMutableBufferPointer(rebasing: out.parameters[0..<parameterCount]).update(fromContentsOf: parameters)
        var rng = SplitMix64(seed: seed)
        let head = out.parameter("reward_head.weight")
        for i in 0..<head.count { head[i] = Float(rng.normal()) * 0.02 }
        return out
    }

    /// A copy of the model's weights in a model of `maxTokens` tokens of activations (a frozen reference for
    /// scoring through a `BatchSession`, which keeps its own buffers, needs few).
    public func copy(maxTokens: Int) -> LlamaModel {
        let out = LlamaModel(config: config, maxTokens: maxTokens, maxSequenceLength: min(maxSequenceLength, maxTokens),
                             keptLogitsBytes: keptLogitsBytes)
        out.precision = precision
        _ = out.parameters.update(fromContentsOf: parameters)
        return out
    }

    /// The parameter tensor `name` (see `parameterTable`). Unknown names are a programmer error.
    public func parameter(_ name: String) -> UnsafeMutableBufferPointer<Float> {
        guard let e = parameterIndex[name] else { preconditionFailure("LlamaModel: no parameter named \(name)") }
        return UnsafeMutableBufferPointer(rebasing: parameters[e.offset..<(e.offset + e.count)])
    }

    /// The gradient of parameter `name`.
    public func gradient(_ name: String) -> UnsafeMutableBufferPointer<Float> {
        guard let e = parameterIndex[name] else { preconditionFailure("LlamaModel: no parameter named \(name)") }
        return UnsafeMutableBufferPointer(rebasing: gradients[e.offset..<(e.offset + e.count)])
    }

    /// Zeroes the gradients of what trains (`trainable`).
    public func zeroGradients() {
        for segment in trainable { segment.gradients.update(repeating: 0) }
    }

    /// Whether the base weights train: false with LoRA adapters, whose backward then computes no weight gradient
    /// of the frozen products, norms, embedding or head.
    public var trainsBase: Bool { lora == nil }

    /// What the optimizer updates, as (parameters, gradients) segments in order: every weight, or with LoRA the adapters
    /// (`LoRAAdapters.parameters`) and, for a reward model, its head (which trains fully).
    public var trainable: [(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>)] {
        guard let lora else { return [(parameters, gradients)] }
        return [(lora.parameters, lora.gradients)]
            + (config.rewardHead ? [(parameter("reward_head.weight"), gradient("reward_head.weight"))] : [])
    }
    /// Floats the optimizer updates.
    public var trainableCount: Int { trainable.reduce(0) { $0 + $1.parameters.count } }

    /// The weights with the adapters added (W + (alpha / rank) B A), into `out` (`parameterCount` floats): what the
    /// model scores as. Without adapters, a copy of the weights.
    public func mergedParameters(into out: UnsafeMutableBufferPointer<Float>) {
        precondition(out.count == parameterCount, "LlamaModel.mergedParameters: \(out.count) floats for \(parameterCount)")
        _ = out.update(fromContentsOf: parameters)
        lora?.merge(into: self, weights: out.baseAddress!)
    }

    /// Freezes the weights and adds LoRA adapters (`LoRAAdapters`) on `settings.targets`, which must be
    /// targets of this model's block kind. From here only the adapters (and a reward model's head) train.
    @discardableResult
    public func attachLoRA(_ settings: LoRASettings) -> LoRAAdapters {
        precondition(lora == nil, "LlamaModel.attachLoRA: the model has adapters")
        precondition(settings.rank >= 1 && settings.alpha > 0 && settings.dropout >= 0 && settings.dropout < 1, "LlamaModel.attachLoRA: bad settings")
        let available = LoRATarget.available(for: config.block)
        precondition(!settings.targets.isEmpty && settings.targets.allSatisfy(available.contains),
                     "LlamaModel.attachLoRA: targets \(settings.targets) not all in \(available)")
        let adapters = LoRAAdapters(settings: settings, config: config)
        let scratch = adapters.scratchFloats(rows: maxTokens) + 2 * config.dim
        loraScratch = .allocate(capacity: scratch)
        loraScratch!.initialize(repeating: 0)
        loraKept = .allocate(capacity: config.nLayers * maxTokens * adapters.keptColumns)
        loraKept!.initialize(repeating: 0)
        lora = adapters
        return adapters
    }

    /// Block `l`'s rows of `loraKept` (nil without adapters).
    private func loraKept(layer l: Int) -> UnsafeMutablePointer<Float>? {
        loraKept.map { $0.baseAddress! + l * maxTokens * lora!.keptColumns }
    }

    /// Removes the adapters without merging them: the model is its base again, every weight training (the bench's full
    /// step after its LoRA step).
    public func detachLoRA() {
        lora = nil
        loraScratch?.deallocate()
        loraScratch = nil
        loraKept?.deallocate()
        loraKept = nil
    }

    /// Adds the adapters into the weights (W += (alpha / rank) B A) and removes them: the model then scores as it
    /// did with them and trains every weight again.
    public func mergeLoRA() {
        guard let lora else { return }
        precondition(roundedScopes == 0, "LlamaModel.mergeLoRA: inside a withRoundedWeights scope")
        lora.merge(into: self, weights: parameters.baseAddress!)
        detachLoRA()
    }

    /// Deterministic initialisation: every matrix N(0, std^2) from a seeded generator, every norm weight 1.
    public func initializeRandom(seed: UInt64, std: Float = 0.02) {
        var rng = SplitMix64(seed: seed)
        for (name, shape) in parameterTable {
            let t = parameter(name)
            if name.hasSuffix(".bias") {
                t.update(repeating: 0)
            } else if shape.count == 1 {
                t.update(repeating: 1)
            } else {
                for i in 0..<t.count { t[i] = Float(rng.normal()) * std }
            }
        }
    }

    /// Forward over a packed batch (sequences concatenated; positions restart at 0 at each sequence start;
    /// attention is block-causal: a token sees only earlier tokens of its own sequence).
    ///
    /// Returns, for every position t with targets[t] >= 0, log p(targets[t] | tokens of its sequence up to t);
    /// positions with target < 0 get 0. Logits are computed only for targeted positions.
    /// The buffer is owned by the model and valid until the next forward.
    ///
    /// With `logSumSquares`, the forward also computes log sum_v p_v^2 of each targeted position's next-token
    /// distribution (WPO's normaliser), read from `lastLogSumSquares` until the next forward.
    public func forward(_ batch: TokenBatch, training: Bool, logSumSquares: Bool = false) -> UnsafeBufferPointer<Float> {
        var rows: [Int32] = []
        for t in 0..<batch.count where batch.targets[t] >= 0 { rows.append(Int32(t)) }
        let (n, m) = trunkForward(batch, rows: rows, training: training)
        let c = config.dim, v = config.vocabSize
        for r in 0..<m { compactTargets[r] = batch.targets[Int(compactRows[r])] }
        // From here until the head's backward, normOut, hidden and the backward's buffers are dead: the logits
        // take their place (see headLogits).
        logitsKept = training && outputHeadScratchCount(m: m, v: v, chunk: Self.headChunk, kept: true) <= headLogitsCapacity
        var compactSquares = [Float](repeating: 0, count: logSumSquares ? m : 0)
        compactSquares.withUnsafeMutableBufferPointer { q in
            outputHeadForward(compactLp, lse, scratch: headLogits, compact, p.output, compactTargets,
                              m: m, v: v, c: c, chunk: Self.headChunk, kept: logitsKept, precision: precision,
                              logSumSquares: logSumSquares ? q.baseAddress : nil)
        }
        logprobs.update(repeating: 0, count: n)
        for r in 0..<m { logprobs[Int(compactRows[r])] = compactLp[r] }
        lastLogSumSquaresStorage = []
        if logSumSquares {
            lastLogSumSquaresStorage = [Float](repeating: 0, count: n)
            for r in 0..<m { lastLogSumSquaresStorage[Int(compactRows[r])] = compactSquares[r] }
        }
        readyForBackward = training ? .languageModel : nil
        return UnsafeBufferPointer(start: logprobs, count: n)
    }

    /// Reward-model forward (`config.rewardHead`): r_i = w_r . h(rows[i]), h the final norm's output at batch
    /// position rows[i] (for a reward, a sequence's last token), w_r `reward_head.weight`. The language-model
    /// head is not run. Backward: `backwardRewards`.
    public func forwardRewards(_ batch: TokenBatch, rows: [Int], training: Bool) -> [Float] {
        guard let head = p.rewardHead else { preconditionFailure("LlamaModel.forwardRewards: the model has no reward head") }
        let (_, m) = trunkForward(batch, rows: rows.map(Int32.init), training: training)
        let c = config.dim
        var rewards = [Float](repeating: 0, count: m)
        for r in 0..<m {
            let h = compact + r * c
            var sum: Float = 0
            for j in 0..<c { sum += head[j] * h[j] }
            rewards[r] = sum
        }
        readyForBackward = training ? .reward : nil
        return rewards
    }

    /// The final norm's output (dim floats) at each of the batch positions `rows`, from the training forward (no head
    /// runs; nothing is kept for a backward). The hidden states CHES reads; a second route to what `BatchSession` holds.
    public func finalHiddenStates(_ batch: TokenBatch, rows: [Int]) -> [[Float]] {
        let (_, m) = trunkForward(batch, rows: rows.map(Int32.init))
        readyForBackward = nil
        let c = config.dim
        return (0..<m).map { Array(UnsafeBufferPointer(start: compact + $0 * c, count: c)) }
    }

    /// The layers under the heads: embedding, blocks, final norm over the whole batch, then the norm's output
    /// at batch positions `rows` gathered into `compact` (in that order; `compactRows`). Returns (tokens, rows).
    private func trunkForward(_ batch: TokenBatch, rows: [Int32], training: Bool = false) -> (n: Int, m: Int) {
        batch.validate(vocabSize: config.vocabSize)
        let n = batch.count
        precondition(n <= maxTokens, "LlamaModel.forward: \(n) tokens exceed maxTokens \(maxTokens)")
        let c = config.dim
        let starts = batch.sequenceStarts
        for s in 0..<starts.count {
            let len = batch.sequenceLength(s)
            precondition(len <= maxSequenceLength,
                         "LlamaModel.forward: sequence of \(len) tokens exceeds maxSequenceLength \(maxSequenceLength)")
            for i in 0..<len {
                let t = starts[s] + i
                positions[t] = Int32(i)
                tokenBuf[t] = batch.tokens[t]
            }
        }
        let m = rows.count
        for (r, t) in rows.enumerated() {
            precondition(t >= 0 && Int(t) < n, "LlamaModel.forward: row \(t) outside the batch")
            compactRows[r] = t
        }

        embeddingForward(resid[0], tokenBuf, p.embedding, n: n, c: c)
        ropeCos.withUnsafeBufferPointer { cosb in
            ropeSin.withUnsafeBufferPointer { sinb in
                for l in 0..<config.nLayers {
                    trainingBlockForward(l, n: n, starts: starts, cos: cosb.baseAddress!, sin: sinb.baseAddress!, training: training)
                }
            }
        }
        normForward(normOut, finalRstd, resid[config.nLayers], p.outputNorm, p.outputNormBias, n: n)
        for r in 0..<m {
            (compact + r * c).update(from: normOut + Int(compactRows[r]) * c, count: c)
        }
        lastStarts = starts
        lastCount = n
        lastTargeted = m
        return (n, m)
    }

    /// Block l of the training forward over the packed batch: resid[l] -> resid[l + 1], its activations into
    /// `layers[l]`. Backward calls it again for block l when activations are checkpointed.
    private func trainingBlockForward(_ l: Int, n: Int, starts: [Int], cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                                      training: Bool) {
        let c = config.dim, hd = config.headDim, nh = config.nHeads, nkv = config.nKVHeads, kv = nkv * hd, w3 = c + 2 * kv
        let a = layers[l]
        let buffers = BlockBuffers(attnRstd: a.attnRstd, ffnRstd: a.ffnRstd, norm: normOut, qkv: a.qkv, att: a.att,
                                   residMid: a.residMid, gateUp: a.gateUp, hidden: hidden, adapterScratch: loraScratch?.baseAddress,
                                   adapterKeep: loraKept(layer: l))
        blockForward(l, out: resid[l + 1], x: resid[l], n: n, positions: positions, cos: cos, sin: sin, buffers: buffers,
                     residual: .afterProduct, precision: precision, training: training) { qkv, att in
            // Packed causal sequences. Probabilities are not kept: backward recomputes them from q and k.
            attentionForward(att, nil, qkv, qkv + c, qkv + c + kv,
                             sequenceStarts: starts, n: n, heads: nh, kvHeads: nkv, headDim: hd,
                             ldq: w3, ldk: w3, ldv: w3)
        }
    }

    /// Part of a packed batch for `backward(_:segments:)`: whole sequences (batch positions `rows`) and the buffer their
    /// weight gradient goes to (`parameterCount` floats, laid out as `gradients`).
    public struct GradientSegment {
        public var rows: Range<Int>
        public var gradients: UnsafeMutablePointer<Float>
        public init(rows: Range<Int>, gradients: UnsafeMutablePointer<Float>) {
            self.rows = rows
            self.gradients = gradients
        }
    }

    /// The segments of the backward under way (`backward(_:segments:)`), nil otherwise.
    private var gradientSegments: [GradientSegment]?

    /// Backward of the last `forward(_:training: true)` that keeps each segment's weight gradient apart: the gradient of
    /// the loss terms of the segment's positions WRITTEN into the segment's own buffer (its former contents do not
    /// matter: the products write their blocks, the sums start from zero); `gradients` is not touched. The
    /// sequences of a packed batch do not see each other, so the activations' gradients are those of separate
    /// backwards; only the weight-gradient products (and the norms', biases' and embedding's sums) run per segment.
    /// What attribution needs: one gradient per probe response or training example at the cost of a batched forward
    /// and input-gradient pass. Each segment's result equals a backward of its sequences alone up to float rounding
    /// (the products' blocking differs with the batch). The segments must cover the batch's positions in order, each
    /// starting at a sequence start. Not with LoRA adapters (their backward computes no base weight gradient).
    public func backward(_ dLogprobs: UnsafePointer<Float>, segments: [GradientSegment]) {
        precondition(trainsBase, "LlamaModel.backward(segments:): not with LoRA adapters")
        var next = 0
        for s in segments {
            precondition(s.rows.lowerBound == next && lastStarts.contains(next), "LlamaModel.backward(segments:): segments must cover the batch in order, at sequence starts")
            next = s.rows.upperBound
        }
        precondition(next == lastCount, "LlamaModel.backward(segments:): segments cover \(next) of \(lastCount) positions")
        // what backward adds to rather than writes: the norms' and biases' sums, and an embedding that is not the head's
        for s in segments {
            for region in summedRegions { (s.gradients + region.lowerBound).update(repeating: 0, count: region.count) }
        }
        gradientSegments = segments
        defer { gradientSegments = nil }
        backward(dLogprobs)
    }

    /// The parts of `gradients` (offsets) that backward accumulates into instead of writing whole: every one-dimensional
    /// parameter (norms, biases) and the embedding unless the head's product writes it first (tied weights).
    private lazy var summedRegions: [Range<Int>] = {
        var regions: [Range<Int>] = [], offset = 0
        for (name, shape) in Self.parameterTable(for: config) {
            let count = shape.reduce(1, *)
            if shape.count == 1 || (name == "token_embd.weight" && g.output != g.embedding) { regions.append(offset..<(offset + count)) }
            offset += count
        }
        precondition(offset == parameterCount, "LlamaModel: the parameter table does not lay out the parameters")
        return regions
    }()

    /// `gw` (a pointer into `gradients`) at the same offset in segment `s`'s buffer.
    private func segmentPointer(_ gw: UnsafeMutablePointer<Float>, _ s: GradientSegment) -> UnsafeMutablePointer<Float> {
        s.gradients + (gw - gradients.baseAddress!)
    }

    /// Backward of the last `forward(_:training: true)`: dLogprobs[t] is dLoss/dlogprob_t for every position
    /// of that batch (entries at untargeted positions are ignored). ADDS into `gradients`.
    /// Call once per forward.
    public func backward(_ dLogprobs: UnsafePointer<Float>) {
        precondition(readyForBackward == .languageModel, "LlamaModel.backward: needs a forward(training: true) first")
        readyForBackward = nil
        let m = lastTargeted, c = config.dim, v = config.vocabSize
        for r in 0..<m { compactDlp[r] = dLogprobs[Int(compactRows[r])] }
        dCompact.update(repeating: 0, count: m * c)
        // per segment: its targeted rows, a run of the compact rows (which are in position order)
        var headSegments: [(rows: Range<Int>, dw: UnsafeMutablePointer<Float>)] = []
        var r0 = 0
        for s in gradientSegments ?? [] {
            var r1 = r0
            while r1 < m && Int(compactRows[r1]) < s.rows.upperBound { r1 += 1 }
            headSegments.append((r0..<r1, segmentPointer(g.output, s)))
            r0 = r1
        }
        outputHeadBackward(dCompact, trainsBase && gradientSegments == nil ? g.output : nil, scratch: headLogits, compactDlp, compact, p.output,
                           lse, compactTargets, m: m, v: v, c: c, chunk: Self.headChunk, kept: logitsKept, precision: precision,
                           dwSegments: headSegments)
        // The logits are dead from here: their memory is the backward's buffers.
        trunkBackward()
    }

    /// Backward of the last `forwardRewards(training: true)`: dRewards[i] is dLoss/dr_i. ADDS into `gradients`
    /// (the reward head's: sum_i dr_i h_i; the trunk's through dh_i = dr_i w_r). Call once per forward.
    public func backwardRewards(_ dRewards: [Float]) {
        precondition(readyForBackward == .reward, "LlamaModel.backwardRewards: needs a forwardRewards(training: true) first")
        readyForBackward = nil
        let m = lastTargeted, c = config.dim
        precondition(dRewards.count == m, "LlamaModel.backwardRewards: \(dRewards.count) gradients for \(m) rewards")
        let head = p.rewardHead!, gHead = g.rewardHead!
        for r in 0..<m {
            let h = compact + r * c, dh = dCompact + r * c, d = dRewards[r]
            for j in 0..<c {
                gHead[j] += d * h[j]
                dh[j] = d * head[j]
            }
        }
        trunkBackward()
    }

    /// Backward from `dCompact` (dLoss/d of the gathered final-norm outputs, `compactRows`) to the embedding.
    /// With LoRA (`trainsBase` false) only the adapters' gradients are computed: each frozen product gives its input's
    /// gradient but no weight gradient, and the frozen norms', biases' and embedding's gradients are skipped.
    private func trunkBackward() {
        let n = lastCount, m = lastTargeted, starts = lastStarts
        let c = config.dim, f = config.ffnDim, hd = config.headDim, fin = config.ffnInputWidth
        let nh = config.nHeads, nkv = config.nKVHeads, kv = nkv * hd, w3 = c + 2 * kv
        let base = trainsBase, adapters = lora.flatMap { $0.enabled ? $0 : nil }
        let scratch = loraScratch?.baseAddress
        // Frozen norms still compute their input's gradient; their weight (and bias) gradients go to scratch.
        let frozenNorm = scratch.map { $0 + lora!.scratchFloats(rows: maxTokens) }
        func norms(_ weight: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>?) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) {
            if base { return (weight, bias) }
            frozenNorm!.update(repeating: 0, count: 2 * c)
            return (frozenNorm!, bias == nil ? nil : frozenNorm! + c)
        }
        // The weight gradients' sums over the batch's positions, or per segment into its buffer (`gradientSegments`).
        let segments = gradientSegments
        func weightGradient(_ gw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, columns: Int) {
            guard let segments else {
                matmul(gw, dy, x, m: rows, n: columns, k: n, transA: true, beta: 1, precision: precision)
                return
            }
            for s in segments {
                let t0 = s.rows.lowerBound
                matmul(segmentPointer(gw, s), dy + t0 * rows, x + t0 * columns, m: rows, n: columns, k: s.rows.count, transA: true, beta: 0, precision: precision)
            }
        }
        func biasGradient(_ gb: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, width: Int) {
            guard let segments else { return columnSumsAdd(gb, dy, n: n, width: width) }
            for s in segments { columnSumsAdd(segmentPointer(gb, s), dy + s.rows.lowerBound * width, n: s.rows.count, width: width) }
        }
        func normGradient(_ dx: UnsafeMutablePointer<Float>, _ gw: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?),
                          _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>) {
            guard let segments else { return normBackward(dx, gw.0, gw.1, dy, x, weight, rstd, n: n) }
            for s in segments {
                let t0 = s.rows.lowerBound
                normBackward(dx + t0 * c, segmentPointer(gw.0, s), gw.1.map { segmentPointer($0, s) }, dy + t0 * c, x + t0 * c, weight,
                             rstd + t0, n: s.rows.count)
            }
        }
        dNorm.update(repeating: 0, count: n * c)
        for r in 0..<m {
            (dNorm + Int(compactRows[r]) * c).update(from: dCompact + r * c, count: c)
        }
        dResid.update(repeating: 0, count: n * c)
        let outNorm = norms(g.outputNorm, g.outputNormBias)
        normGradient(dResid, outNorm, dNorm, resid[config.nLayers], p.outputNorm, finalRstd)

        ropeCos.withUnsafeBufferPointer { cosb in
            ropeSin.withUnsafeBufferPointer { sinb in
                for l in stride(from: config.nLayers - 1, through: 0, by: -1) {
                    let w = pBlocks[l], gw = gBlocks[l], a = layers[l]
                    let kept = loraKept(layer: l).map { UnsafePointer($0) }
                    if checkpointActivations && l < config.nLayers - 1 {
                        // The shared activations hold block l + 1's; recompute block l's (resid[l + 1] is
                        // rewritten with the same values: the forward is deterministic). After the forward they
                        // hold the last block's, which needs no recomputing.
                        trainingBlockForward(l, n: n, starts: starts, cos: cosb.baseAddress!, sin: sinb.baseAddress!, training: true)
                    }
                    // Feed-forward: resid[l+1] = residMid + W_down act(W_in h (+ b_in)) (+ b_down), h = norm2(y), y the
                    // feed-forward's input: residMid, or resid[l] with a parallel residual.
                    let ffnInput = config.parallelResidual ? UnsafePointer(resid[l]) : UnsafePointer(a.residMid)
                    matmul(dHidden, dResid, w.wDown, m: n, n: f, k: c, precision: precision)
                    if base, let gb = gw.bDown { biasGradient(gb, dResid, width: c) }
                    activationForward(hidden, a.gateUp, n: n)  // recomputed, as in forward
                    if base { weightGradient(gw.wDown, dResid, hidden, rows: c, columns: f) }
                    adapters?.backward(l, site: .ffnOutput, dy: dResid, x: hidden, ldx: f, dx: dHidden, n: n, scratch: scratch!, kept: kept!)
                    activationBackward(dGateUp, dHidden, a.gateUp, n: n)
                    if base, let gb = gw.bIn { biasGradient(gb, dGateUp, width: fin) }
                    matmul(dNorm, dGateUp, w.wIn, m: n, n: c, k: fin, precision: precision)
                    normForward(normOut, a.ffnRstd, ffnInput, w.ffnNorm, w.ffnNormBias, n: n)
                    if base { weightGradient(gw.wIn, dGateUp, normOut, rows: fin, columns: c) }
                    adapters?.backward(l, site: .ffnInput, dy: dGateUp, x: normOut, ldx: c, dx: dNorm, n: n, scratch: scratch!, kept: kept!)
                    let ffnNorm = norms(gw.ffnNorm, gw.ffnNormBias)
                    // With a parallel residual the attention's output gradient is the block's (dResid before the
                    // feed-forward norm's term is added); otherwise it is residMid's (after).
                    if !config.parallelResidual {
                        normGradient(dResid, ffnNorm, dNorm, ffnInput, w.ffnNorm, a.ffnRstd)
                    }
                    // Attention: residMid = resid[l] + W_o attn(rope(W_q h), rope(W_k h), W_v h) (+ b_o), h = norm1(resid[l]).
                    matmul(dAtt, dResid, w.wo, m: n, n: c, k: c, precision: precision)
                    if base {
                        weightGradient(gw.wo, dResid, a.att, rows: c, columns: c)
                        if let gb = gw.bo { biasGradient(gb, dResid, width: c) }
                    }
                    adapters?.backward(l, site: .attentionOutput, dy: dResid, x: a.att, ldx: c, dx: dAtt, n: n, scratch: scratch!, kept: kept!)
                    if config.parallelResidual {
                        normGradient(dResid, ffnNorm, dNorm, ffnInput, w.ffnNorm, a.ffnRstd)
                    }
                    dQKV.update(repeating: 0, count: n * w3)
                    attentionBackward(dQKV, dQKV + c, dQKV + c + kv, dAtt, nil,
                                      a.qkv, a.qkv + c, a.qkv + c + kv, sequenceStarts: starts, n: n,
                                      heads: nh, kvHeads: nkv, headDim: hd, ldq: w3, ldk: w3, ldv: w3)
                    ropeBackward(dQKV, positions: positions, n: n, heads: nh, headDim: hd,
                                 cos: cosb.baseAddress!, sin: sinb.baseAddress!, rowStride: w3, rotaryDims: config.rotaryDims)
                    ropeBackward(dQKV + c, positions: positions, n: n, heads: nkv, headDim: hd,
                                 cos: cosb.baseAddress!, sin: sinb.baseAddress!, rowStride: w3, rotaryDims: config.rotaryDims)
                    if base, let gb = gw.bqkv { biasGradient(gb, dQKV, width: w3) }
                    matmul(dNorm, dQKV, w.wq, m: n, n: c, k: w3, precision: precision)
                    normForward(normOut, a.attnRstd, resid[l], w.attnNorm, w.attnNormBias, n: n)
                    if base { weightGradient(gw.wq, dQKV, normOut, rows: w3, columns: c) }
                    adapters?.backward(l, site: .attentionInput, dy: dQKV, x: normOut, ldx: c, dx: dNorm, n: n, scratch: scratch!, kept: kept!)
                    let attnNorm = norms(gw.attnNorm, gw.attnNormBias)
                    normGradient(dResid, attnNorm, dNorm, resid[l], w.attnNorm, a.attnRstd)
                }
            }
        }
        if base {
            if let segments {
                for s in segments {
                    let t0 = s.rows.lowerBound
                    embeddingBackward(segmentPointer(g.embedding, s), dResid + t0 * c, tokenBuf + t0, n: s.rows.count, c: c)
                }
            } else {
                embeddingBackward(g.embedding, dResid, tokenBuf, n: n, c: c)
            }
        }
    }
}
