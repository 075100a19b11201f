import Model
import Tokenizer

/// Loading a pretrained Llama-family model and its tokenizer from one GGUF file.
public enum PretrainedModel {
    /// Opens the GGUF at `path`, builds the configuration and the tokenizer from its metadata, and
    /// dequantises every tensor into a new `LlamaModel` whose batches hold up to `maxTokens` tokens
    /// (sequences of at most `maxSequenceLength`, default `min(maxTokens, context length)`).
    public static func load(path: String, maxTokens: Int, maxSequenceLength: Int? = nil) throws -> (model: LlamaModel, tokenizer: BPETokenizer, config: LlamaConfig) {
        let file = try GGUFFile(path: path)
        let config = try file.llamaConfig()
        let tokenizer = try file.tokenizer()  // before the big allocation: a bad file fails fast
        guard tokenizer.vocabSize == config.vocabSize else {
            throw GGUFError.invalidMetadata(file: path, key: GGUFKeys.Tokenizer.tokens, reason: "\(tokenizer.vocabSize) tokens, but the model's vocabulary is \(config.vocabSize)")
        }
        let model = LlamaModel(config: config, maxTokens: maxTokens, maxSequenceLength: maxSequenceLength)
        try file.loadWeights(into: model)
        return (model, tokenizer, config)
    }
}
