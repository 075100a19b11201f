/// Sizes and constants of a decoder-only transformer: the Llama family (SmolLM2, Qwen2 with `qkvBias`) and
/// GPT-NeoX (Pythia, `block: .gptNeoX`).
public struct LlamaConfig: Codable, Sendable, Equatable, Hashable {
    /// The two block designs over the one block implementation (`LlamaModel.blockForward`).
    public enum BlockStyle: String, Codable, Sendable, Hashable {
        /// RMSNorm (weight only), SwiGLU feed-forward (`ffn_gate`, `ffn_up`), no biases but Q/K/V's with
        /// `qkvBias`, separate `attn_q/attn_k/attn_v` tensors.
        case llama
        /// GPT-NeoX: LayerNorm with weight and bias, GELU (exact, erf) feed-forward on `ffn_up`, biases on every
        /// linear layer, Q|K|V as one `attn_qkv` tensor (rows q then k then v, llama.cpp's layout).
        case gptNeoX
    }
    public var vocabSize: Int
    public var dim: Int
    public var nLayers: Int
    public var nHeads: Int
    public var nKVHeads: Int
    public var ffnDim: Int
    public var ropeBase: Float
    public var normEps: Float
    /// The output head reuses `token_embd.weight` (no `output.weight`).
    public var tiedEmbedding: Bool
    public var contextLength: Int
    /// Biases on the Q, K and V projections (`attn_q.bias`, `attn_k.bias`, `attn_v.bias`): Qwen2.
    public var qkvBias: Bool
    public var block: BlockStyle
    /// The feed-forward reads the block's input, not the stream after attention:
    /// out = x + attn(norm1(x)) + mlp(norm2(x)) (GPT-NeoX's `use_parallel_residual`).
    public var parallelResidual: Bool
    /// RoPE rotates the first `rotaryDims` entries of each Q/K head and leaves the rest (GPT-NeoX's
    /// `rotary_pct` x head size); the head size for full RoPE.
    public var rotaryDims: Int
    /// A reward model: a scalar head `reward_head.weight` [1, dim] read from the final norm's output at a
    /// sequence's last token (`LlamaModel.forwardRewards`), beside the language-model head.
    public var rewardHead: Bool

    public var headDim: Int { dim / nHeads }

    /// Whether a model of this configuration and one of `other` hold the same weights and score alike: equal but for
    /// the context length (which only bounds what is scored).
    public func holdsTheWeights(of other: LlamaConfig) -> Bool {
        var x = self
        x.contextLength = other.contextLength
        return x == other
    }
    /// Columns of the feed-forward's input product: gate | up (SwiGLU) or up alone (GELU).
    public var ffnInputWidth: Int { block == .llama ? 2 * ffnDim : ffnDim }

    public init(
        vocabSize: Int, dim: Int, nLayers: Int, nHeads: Int, nKVHeads: Int, ffnDim: Int,
        ropeBase: Float = 10000, normEps: Float = 1e-5, tiedEmbedding: Bool = true, contextLength: Int = 2048,
        qkvBias: Bool = false, block: BlockStyle = .llama, parallelResidual: Bool = false, rotaryDims: Int? = nil,
        rewardHead: Bool = false
    ) {
        self.vocabSize = vocabSize
        self.dim = dim
        self.nLayers = nLayers
        self.nHeads = nHeads
        self.nKVHeads = nKVHeads
        self.ffnDim = ffnDim
        self.ropeBase = ropeBase
        self.normEps = normEps
        self.tiedEmbedding = tiedEmbedding
        self.contextLength = contextLength
        self.qkvBias = qkvBias || block == .gptNeoX
        self.block = block
        self.parallelResidual = parallelResidual
        self.rotaryDims = rotaryDims ?? dim / max(nHeads, 1)
        self.rewardHead = rewardHead
    }

    /// Preset "tiny": 2 layers, width 64, 4 heads sharing 2 KV heads, feed-forward 128, byte vocabulary
    /// (256 bytes + BOS 256, EOS 257, PAD 258). Trains in seconds; for tests and examples.
    public static func tiny(
        vocabSize: Int = 259, dim: Int = 64, nLayers: Int = 2, nHeads: Int = 4, nKVHeads: Int = 2,
        ffnDim: Int = 128, contextLength: Int = 512, tiedEmbedding: Bool = true, qkvBias: Bool = false
    ) -> LlamaConfig {
        LlamaConfig(
            vocabSize: vocabSize, dim: dim, nLayers: nLayers, nHeads: nHeads, nKVHeads: nKVHeads, ffnDim: ffnDim,
            ropeBase: 10000, normEps: 1e-5, tiedEmbedding: tiedEmbedding, contextLength: contextLength, qkvBias: qkvBias)
    }

    /// Preset-sized GPT-NeoX for tests: width 64, 4 heads, feed-forward 128, byte vocabulary; RoPE on a quarter
    /// of each head (Pythia's `rotary_pct`) unless `rotaryDims` says otherwise.
    public static func tinyNeoX(
        vocabSize: Int = 259, dim: Int = 64, nLayers: Int = 2, nHeads: Int = 4, ffnDim: Int = 128,
        contextLength: Int = 512, parallelResidual: Bool = true, rotaryDims: Int? = nil
    ) -> LlamaConfig {
        LlamaConfig(
            vocabSize: vocabSize, dim: dim, nLayers: nLayers, nHeads: nHeads, nKVHeads: nHeads, ffnDim: ffnDim,
            ropeBase: 10000, normEps: 1e-5, tiedEmbedding: false, contextLength: contextLength, qkvBias: true,
            block: .gptNeoX, parallelResidual: parallelResidual, rotaryDims: rotaryDims ?? dim / nHeads / 4)
    }

    /// Checks that the sizes fit together (programmer error otherwise).
    func validate() {
        precondition(vocabSize > 0 && dim > 0 && nLayers > 0 && ffnDim > 0, "LlamaConfig: sizes must be positive")
        precondition(nHeads > 0 && dim % nHeads == 0, "LlamaConfig: dim must be a multiple of nHeads")
        precondition(nKVHeads > 0 && nHeads % nKVHeads == 0, "LlamaConfig: nKVHeads must divide nHeads")
        precondition(headDim % 2 == 0, "LlamaConfig: head size must be even for RoPE")
        precondition(rotaryDims > 0 && rotaryDims <= headDim && rotaryDims % 2 == 0, "LlamaConfig: rotaryDims must be even, in 2...headDim")
        precondition(block == .llama || (qkvBias && nKVHeads == nHeads), "LlamaConfig: GPT-NeoX has Q/K/V biases and one KV head per head")
    }
}
