/// Metadata keys used by AlignScope, in one place (names from the GGUF specification).
public enum GGUFKeys {
    public static let architecture = "general.architecture"
    public static let alignment = "general.alignment"
    public static let name = "general.name"
    public static let fileType = "general.file_type"

    /// Keys of the `llama` architecture (`llama.` + suffix).
    public enum Llama {
        public static let prefix = "llama."
        public static let blockCount = "llama.block_count"
        public static let contextLength = "llama.context_length"
        public static let embeddingLength = "llama.embedding_length"
        public static let feedForwardLength = "llama.feed_forward_length"
        public static let headCount = "llama.attention.head_count"
        public static let headCountKV = "llama.attention.head_count_kv"
        public static let ropeFreqBase = "llama.rope.freq_base"
        public static let ropeDimensionCount = "llama.rope.dimension_count"
        public static let rmsNormEpsilon = "llama.attention.layer_norm_rms_epsilon"
        /// LayerNorm's epsilon (`gptneox`).
        public static let layerNormEpsilon = "llama.attention.layer_norm_epsilon"
        /// Attention and feed-forward in parallel (`gptneox`).
        public static let parallelResidual = "llama.use_parallel_residual"
        public static let vocabSize = "llama.vocab_size"
    }

    /// Keys of the tokenizer (`tokenizer.` prefix); an export copies every `tokenizer.*` key.
    public enum Tokenizer {
        public static let prefix = "tokenizer."
        public static let model = "tokenizer.ggml.model"
        public static let pre = "tokenizer.ggml.pre"
        public static let tokens = "tokenizer.ggml.tokens"
        public static let tokenType = "tokenizer.ggml.token_type"
        public static let merges = "tokenizer.ggml.merges"
        public static let bosTokenID = "tokenizer.ggml.bos_token_id"
        public static let eosTokenID = "tokenizer.ggml.eos_token_id"
        public static let addBOSToken = "tokenizer.ggml.add_bos_token"
        public static let chatTemplate = "tokenizer.chat_template"
    }
}

/// File-format constants.
enum GGUFFormat {
    /// "GGUF" read as a little-endian uint32.
    static let magic: UInt32 = 0x4655_4747
    static let supportedVersions: ClosedRange<UInt32> = 2...3
    static let writtenVersion: UInt32 = 3
    static let defaultAlignment = 32
    /// GGML_MAX_DIMS.
    static let maxDimensions = 4
    /// Guard against stack exhaustion from maliciously nested arrays.
    static let maxArrayNesting = 64
}
