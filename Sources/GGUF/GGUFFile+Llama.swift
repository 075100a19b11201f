import Model

extension GGUFFile {
    /// The model configuration from the `llama.*` metadata (a reward model's when the file holds
    /// `reward_head.weight`, AlignScope's extra tensor). The vocabulary size is the length of
    /// `tokenizer.ggml.tokens` (else `llama.vocab_size`); the output head is tied when the file has no
    /// `output.weight`. Missing `llama.rope.freq_base` means 10000 and missing
    /// `llama.attention.head_count_kv` means one KV head per head, as in llama.cpp.
    public func llamaConfig() throws -> LlamaConfig {
        let architecture = try string(GGUFKeys.architecture)
        guard Self.supportedArchitectures.contains(architecture) else { throw GGUFError.unsupportedArchitecture(file: path, architecture: architecture) }
        typealias K = GGUFKeys.Llama
        let dim = try positive(archKey(K.embeddingLength))
        let nLayers = try positive(archKey(K.blockCount))
        let ffnDim = try positive(archKey(K.feedForwardLength))
        let nHeads = try positive(archKey(K.headCount))
        let nKVHeads = metadata[archKey(K.headCountKV)] == nil ? nHeads : try positive(archKey(K.headCountKV))
        let contextLength = try positive(archKey(K.contextLength))
        let neox = architecture == "gptneox"
        let normEps = try double(archKey(neox ? K.layerNormEpsilon : K.rmsNormEpsilon))
        let ropeBase = metadata[archKey(K.ropeFreqBase)] == nil ? 10000 : try double(archKey(K.ropeFreqBase))

        guard dim % nHeads == 0, (dim / nHeads) % 2 == 0 else {
            throw GGUFError.invalidMetadata(file: path, key: archKey(K.headCount), reason: "\(nHeads) heads do not split width \(dim) into even head sizes")
        }
        guard nHeads % nKVHeads == 0 else {
            throw GGUFError.invalidMetadata(file: path, key: archKey(K.headCountKV), reason: "\(nKVHeads) KV heads do not divide \(nHeads) heads")
        }
        var rotaryDims = dim / nHeads
        if metadata[archKey(K.ropeDimensionCount)] != nil {
            rotaryDims = try int(archKey(K.ropeDimensionCount))
            let partialAllowed = neox && rotaryDims >= 2 && rotaryDims < dim / nHeads && rotaryDims % 2 == 0
            guard rotaryDims == dim / nHeads || partialAllowed else {
                throw GGUFError.invalidMetadata(file: path, key: archKey(K.ropeDimensionCount), reason: "\(rotaryDims), expected the head size \(dim / nHeads)" + (neox ? " or an even number below it" : " (partial RoPE is gptneox's only)"))
            }
        }
        guard !neox || nKVHeads == nHeads else {
            throw GGUFError.invalidMetadata(file: path, key: archKey(K.headCountKV), reason: "\(nKVHeads), gptneox has one KV head per head (\(nHeads))")
        }
        guard normEps > 0, ropeBase > 0 else {
            throw GGUFError.invalidMetadata(file: path, key: normEps > 0 ? archKey(K.ropeFreqBase) : archKey(neox ? K.layerNormEpsilon : K.rmsNormEpsilon), reason: "must be positive")
        }
        var parallel = true
        if neox, let value = metadata[archKey(K.parallelResidual)] {
            guard case let .bool(b) = value else {
                throw GGUFError.invalidMetadata(file: path, key: archKey(K.parallelResidual), reason: "expected a boolean")
            }
            parallel = b
        }

        let vocabSize: Int
        if let tokens = metadata[GGUFKeys.Tokenizer.tokens] {
            guard let items = tokens.array, !items.isEmpty else {
                throw GGUFError.invalidMetadata(file: path, key: GGUFKeys.Tokenizer.tokens, reason: "expected a non-empty array")
            }
            vocabSize = items.count
            if metadata[archKey(K.vocabSize)] != nil, try int(archKey(K.vocabSize)) != vocabSize {
                throw GGUFError.invalidMetadata(file: path, key: archKey(K.vocabSize), reason: "\(try int(archKey(K.vocabSize))), but \(GGUFKeys.Tokenizer.tokens) has \(vocabSize) tokens")
            }
        } else {
            vocabSize = try positive(archKey(K.vocabSize))
        }

        return LlamaConfig(
            vocabSize: vocabSize, dim: dim, nLayers: nLayers, nHeads: nHeads, nKVHeads: nKVHeads, ffnDim: ffnDim,
            ropeBase: Float(ropeBase), normEps: Float(normEps), tiedEmbedding: tensorInfo("output.weight") == nil,
            contextLength: contextLength, qkvBias: architecture != "llama", block: neox ? .gptNeoX : .llama,
            parallelResidual: neox && parallel, rotaryDims: rotaryDims, rewardHead: tensorInfo("reward_head.weight") != nil)
    }

    /// Architectures read: `llama`, `qwen2` (the llama block with Q/K/V biases) and `gptneox` (Pythia:
    /// `LlamaConfig.BlockStyle.gptNeoX`, `attn_qkv` with rows q | k | v as llama.cpp's converter regroups them,
    /// `gptneox.rope.dimension_count` rotary entries per head, `gptneox.use_parallel_residual` (default true),
    /// `gptneox.attention.layer_norm_epsilon`). llama.cpp applies RoPE to qwen2 and gptneox in the half-split
    /// ("NEOX") order and stores Q/K as transformers does, so their rows are permuted on load.
    public static let supportedArchitectures = ["llama", "qwen2", "gptneox"]

    /// The GGUF architecture of a model configuration: `gptneox`, `qwen2` (llama blocks with Q/K/V biases) or `llama`.
    public static func architecture(of c: LlamaConfig) -> String {
        c.block == .gptNeoX ? "gptneox" : c.qkvBias ? "qwen2" : "llama"
    }

    /// A `llama.*` key under the file's own architecture prefix (`qwen2.*` for a qwen2 file).
    func archKey(_ key: String) -> String {
        let architecture = (try? string(GGUFKeys.architecture)) ?? "llama"
        return architecture + key.dropFirst("llama".count)
    }

    /// Dequantises every tensor of the file into `model`'s parameters. Tensors are copied as stored:
    /// GGML dimensions [in, out] are the model's row-major [out, in], and Q/K rows are already in the
    /// adjacent-pair RoPE order for `llama`; a `qwen2` file stores them in half-split order (llama.cpp's
    /// converter does not permute them for that architecture), so they are permuted after loading.
    /// Everything is checked before anything is written, so on error the
    /// model is left untouched: a tensor the model lacks, a missing tensor, a shape that disagrees
    /// (`shapeMismatch` naming the tensor, expected and found shape), a type that cannot be dequantised,
    /// or hyper-parameters that differ from the model's configuration.
    public func loadWeights(into model: LlamaModel) throws {
        try checkWeights(for: model.config)
        for (name, _) in model.parameterTable {
            try dequantize(name, into: model.parameter(name))
        }
        if try string(GGUFKeys.architecture) != "llama" { RotaryLayout.toAdjacentPairs(model) }
    }

    /// Every check `loadWeights` makes before it writes anything, for a model of configuration `c`, without
    /// allocating the model or dequantising: what validating a run's inputs needs.
    public func checkWeights(for c: LlamaConfig) throws {
        let fileConfig = try llamaConfig()
        typealias K = GGUFKeys.Llama
        let checks: [(String, String, String)] = [
            (archKey(K.headCount), "\(c.nHeads)", "\(fileConfig.nHeads)"),
            (archKey(K.headCountKV), "\(c.nKVHeads)", "\(fileConfig.nKVHeads)"),
            (archKey(K.ropeFreqBase), "\(c.ropeBase)", "\(fileConfig.ropeBase)"),
            (archKey(c.block == .gptNeoX ? K.layerNormEpsilon : K.rmsNormEpsilon), "\(c.normEps)", "\(fileConfig.normEps)"),
            (archKey(K.ropeDimensionCount), "\(c.rotaryDims)", "\(fileConfig.rotaryDims)"),
            (GGUFKeys.architecture, "\(c.block)", "\(fileConfig.block)"),
            (archKey(K.parallelResidual), "\(c.parallelResidual)", "\(fileConfig.parallelResidual)"),
        ]
        for (key, mine, theirs) in checks where mine != theirs {
            throw GGUFError.invalidMetadata(file: path, key: key, reason: "file has \(theirs), the model has \(mine)")
        }
        // Every block has tensors of its own: a block count beyond the file's tensor count is refused
        // before the parameter table is sized by it (2^31 blocks took > 8 GB). Fewer missing tensors
        // are named one by one below.
        guard c.nLayers <= tensors.count else {
            throw GGUFError.invalidMetadata(file: path, key: archKey(K.blockCount), reason: "\(c.nLayers) blocks, but the file holds only \(tensors.count) tensors (at least 9 per block)")
        }

        let table = LlamaModel.parameterTable(for: c)
        let expected = Dictionary(uniqueKeysWithValues: table.map { ($0.name, $0.shape) })
        for info in tensors where expected[info.name] == nil {
            throw GGUFError.unexpectedTensor(file: path, tensor: info.name)
        }
        for (name, shape) in table {
            let info = try tensor(name)
            guard info.shape == shape else {
                throw GGUFError.shapeMismatch(file: path, tensor: name, expected: shape, found: info.shape)
            }
            try checkDequantizable(info)
        }
    }

    private func positive(_ key: String) throws -> Int {
        let v = try int(key)
        guard v > 0 else { throw GGUFError.invalidMetadata(file: path, key: key, reason: "\(v), expected a positive integer") }
        return v
    }
}
