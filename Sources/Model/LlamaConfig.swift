/// Sizes and constants of a Llama-family transformer (SmolLM2 is one).
public struct LlamaConfig: Codable, Sendable, Equatable, Hashable {
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

    public var headDim: Int { dim / nHeads }

    public init(
        vocabSize: Int, dim: Int, nLayers: Int, nHeads: Int, nKVHeads: Int, ffnDim: Int,
        ropeBase: Float = 10000, normEps: Float = 1e-5, tiedEmbedding: Bool = true, contextLength: Int = 2048,
        qkvBias: Bool = false
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
        self.qkvBias = qkvBias
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

    /// Checks that the sizes fit together (programmer error otherwise).
    func validate() {
        precondition(vocabSize > 0 && dim > 0 && nLayers > 0 && ffnDim > 0, "LlamaConfig: sizes must be positive")
        precondition(nHeads > 0 && dim % nHeads == 0, "LlamaConfig: dim must be a multiple of nHeads")
        precondition(nKVHeads > 0 && nHeads % nKVHeads == 0, "LlamaConfig: nKVHeads must divide nHeads")
        precondition(headDim % 2 == 0, "LlamaConfig: head size must be even for RoPE")
    }
}
