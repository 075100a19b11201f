import Model

/// Writes `model` as a GGUF v3 file that llama.cpp can load: `general.architecture` = `llama`, `qwen2`
/// (Q/K/V biases) or `gptneox` (`LlamaConfig.BlockStyle.gptNeoX`), that architecture's hyper-parameters,
/// every `tokenizer.*` key copied from `tokenizerFrom` (in its order), and the parameter tensors under
/// their GGUF names, in llama.cpp's layout for the architecture (Q/K rows back in half-split order for
/// qwen2 and gptneox, as its converter leaves them). Matrices are stored as `type`; 1-D tensors (norms,
/// biases) are always F32, as llama.cpp does. Without `tokenizerFrom` the file has no tokenizer metadata.
/// The file is written atomically (temporary file, then rename).
public func exportGGUF(model: LlamaModel, tokenizerFrom source: GGUFFile?, path: String, type: GGUFFloatType) throws {
    let c = model.config
    let architecture = GGUFFile.architecture(of: c)
    var w = GGUFWriter()
    w.set(GGUFKeys.architecture, .string(architecture))
    w.set(GGUFKeys.name, .string((source?.metadata[GGUFKeys.name]?.string).map { $0 + " (AlignScope)" } ?? "AlignScope"))
    w.set(GGUFKeys.fileType, .uint32(type == .f32 ? 0 : 1))  // llama_ftype: ALL_F32 = 0, MOSTLY_F16 = 1
    w.setHyperparameters(c)

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
        let rotary = architecture != "llama" && RotaryLayout.rows(of: name, c) != nil
        w.addTensor(name, dimensions: shape.reversed(), type: storage) { body in
            if rotary {
                var values = Array(model.parameter(name))
                values.withUnsafeMutableBufferPointer { RotaryLayout.permute($0, parameter: name, c, inverse: true) }
                try values.withUnsafeBufferPointer { try body($0) }
            } else {
                try body(UnsafeBufferPointer(model.parameter(name)))
            }
        }
    }
    try w.write(to: path)
}

extension GGUFWriter {
    /// Sets the hyper-parameters of `config` under its architecture's prefix (`GGUFFile.architecture(of:)`):
    /// context and embedding length, block count, feed-forward length, RoPE dimension count and base, head
    /// counts, the norm's epsilon (RMSNorm's, or LayerNorm's for gptneox), vocabulary size, and for gptneox
    /// `use_parallel_residual`.
    public mutating func setHyperparameters(_ c: LlamaConfig) {
        typealias K = GGUFKeys.Llama
        let architecture = GGUFFile.architecture(of: c)
        func key(_ k: String) -> String { architecture + k.dropFirst("llama".count) }
        set(key(K.contextLength), .uint32(UInt32(c.contextLength)))
        set(key(K.embeddingLength), .uint32(UInt32(c.dim)))
        set(key(K.blockCount), .uint32(UInt32(c.nLayers)))
        set(key(K.feedForwardLength), .uint32(UInt32(c.ffnDim)))
        set(key(K.ropeDimensionCount), .uint32(UInt32(c.rotaryDims)))
        set(key(K.headCount), .uint32(UInt32(c.nHeads)))
        set(key(K.headCountKV), .uint32(UInt32(c.nKVHeads)))
        if c.block == .gptNeoX {
            set(key(K.layerNormEpsilon), .float32(c.normEps))
            set(key(K.parallelResidual), .bool(c.parallelResidual))
        } else {
            set(key(K.rmsNormEpsilon), .float32(c.normEps))
        }
        set(key(K.ropeFreqBase), .float32(c.ropeBase))
        set(key(K.vocabSize), .uint32(UInt32(c.vocabSize)))
    }
}
