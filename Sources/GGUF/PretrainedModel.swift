import Model
import Tokenizer

/// Loading a pretrained Llama-family model and its tokenizer from one GGUF file.
public enum PretrainedModel {
    /// Opens the GGUF at `path`, builds the configuration and the tokenizer from its metadata, and
    /// dequantises every tensor into a new `LlamaModel` whose batches hold up to `maxTokens` tokens
    /// (sequences of at most `maxSequenceLength`, default `min(maxTokens, context length)`).
    public static func load(path: String, maxTokens: Int, maxSequenceLength: Int? = nil,
                            checkpointActivations: Bool = false) throws -> (model: LlamaModel, tokenizer: BPETokenizer, config: LlamaConfig) {
        let (file, config, tokenizer) = try open(path)  // before the big allocation: a bad file fails fast
        try file.checkWeights(for: config)
        let model = LlamaModel(config: config, maxTokens: maxTokens, maxSequenceLength: maxSequenceLength,
                               checkpointActivations: checkpointActivations)
        try file.loadWeights(into: model)
        return (model, tokenizer, config)
    }

    /// Everything `load` checks (metadata, tokenizer, every tensor's name, shape and type), without allocating
    /// the model or dequantising its weights; returns the tokenizer and configuration. `load` of a file
    /// that passes fails only if the machine runs out of memory.
    public static func validate(path: String) throws -> (tokenizer: BPETokenizer, config: LlamaConfig) {
        let (file, config, tokenizer) = try open(path)
        try file.checkWeights(for: config)
        return (tokenizer, config)
    }

    private static func open(_ path: String) throws -> (GGUFFile, LlamaConfig, BPETokenizer) {
        let file = try GGUFFile(path: path)
        let config = try file.llamaConfig()
        let tokenizer = try file.tokenizer()
        guard tokenizer.vocabSize == config.vocabSize else {
            throw GGUFError.invalidMetadata(file: path, key: GGUFKeys.Tokenizer.tokens, reason: "\(tokenizer.vocabSize) tokens, but the model's vocabulary is \(config.vocabSize)")
        }
        return (file, config, tokenizer)
    }
}
