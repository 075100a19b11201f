import Model

/// Writes `model` as a GGUF v3 file that llama.cpp can load: `general.architecture = llama`, the
/// `llama.*` hyper-parameters, every `tokenizer.*` key copied from `tokenizerFrom` (in its order), and
/// the parameter tensors under their GGUF names. Matrices are stored as `type`; 1-D tensors (the norms)
/// are always F32, as llama.cpp does. Without `tokenizerFrom` the file has no tokenizer metadata.
/// The file is written atomically (temporary file, then rename).
public func exportGGUF(model: LlamaModel, tokenizerFrom source: GGUFFile?, path: String, type: GGUFFloatType) throws {
    let c = model.config
    guard !c.qkvBias else {
        throw GGUFError.invalidWrite(file: path, reason: "GGUF export of a qwen2 model (Q/K/V biases) is not supported yet; export it with --format hf")
    }
    var w = GGUFWriter()
    w.set(GGUFKeys.architecture, .string("llama"))
    w.set(GGUFKeys.name, .string((source?.metadata[GGUFKeys.name]?.string).map { $0 + " (AlignScope)" } ?? "AlignScope"))
    w.set(GGUFKeys.fileType, .uint32(type == .f32 ? 0 : 1))  // llama_ftype: ALL_F32 = 0, MOSTLY_F16 = 1
    w.setLlamaHyperparameters(c)

    if let source {
        if let tokens = source.metadata[GGUFKeys.Tokenizer.tokens]?.array, tokens.count != c.vocabSize {
            throw GGUFError.invalidWrite(file: path, reason: "the tokenizer of \(source.path) has \(tokens.count) tokens, the model's vocabulary is \(c.vocabSize)")
        }
        for key in source.metadataKeys where key.hasPrefix(GGUFKeys.Tokenizer.prefix) {
            w.set(key, source.metadata[key]!)
        }
    }

    for (name, shape) in model.parameterTable {
        let storage: GGUFFloatType = shape.count == 1 ? .f32 : type
        w.addTensor(name, dimensions: shape.reversed(), type: storage) { body in
            try body(UnsafeBufferPointer(model.parameter(name)))
        }
    }
    try w.write(to: path)
}

extension GGUFWriter {
    /// Sets the `llama.*` hyper-parameters of `config` (context and embedding length, block count,
    /// feed-forward length, RoPE dimension count and base, head counts, RMSNorm epsilon, vocabulary size).
    public mutating func setLlamaHyperparameters(_ c: LlamaConfig) {
        typealias K = GGUFKeys.Llama
        set(K.contextLength, .uint32(UInt32(c.contextLength)))
        set(K.embeddingLength, .uint32(UInt32(c.dim)))
        set(K.blockCount, .uint32(UInt32(c.nLayers)))
        set(K.feedForwardLength, .uint32(UInt32(c.ffnDim)))
        set(K.ropeDimensionCount, .uint32(UInt32(c.headDim)))
        set(K.headCount, .uint32(UInt32(c.nHeads)))
        set(K.headCountKV, .uint32(UInt32(c.nKVHeads)))
        set(K.rmsNormEpsilon, .float32(c.normEps))
        set(K.ropeFreqBase, .float32(c.ropeBase))
        set(K.vocabSize, .uint32(UInt32(c.vocabSize)))
    }
}
