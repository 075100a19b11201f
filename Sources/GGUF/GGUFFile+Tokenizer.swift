import Tokenizer

extension GGUFFile {
    /// The byte-level BPE tokenizer described by the `tokenizer.ggml.*` metadata: `model` must be
    /// `gpt2`; `tokens`, `merges` and `eos_token_id` are required; `token_type` may be absent (all
    /// normal), `bos_token_id` may be absent, and a missing `pre` means `default`, as in llama.cpp.
    public func tokenizer() throws -> BPETokenizer {
        typealias K = GGUFKeys.Tokenizer
        let model = try string(K.model)
        guard model == "gpt2" else {
            throw GGUFError.invalidMetadata(file: path, key: K.model, reason: "tokenizer model '\(model)' is not supported (supported: gpt2)")
        }
        let tokens = try strings(K.tokens)
        let merges = try strings(K.merges)
        let types = metadata[K.tokenType] == nil ? [] : try int32s(K.tokenType)
        let pre = metadata[K.pre] == nil ? "default" : try string(K.pre)
        let bos = metadata[K.bosTokenID] == nil ? nil : try tokenID(K.bosTokenID, vocabulary: tokens.count)
        let eos = try tokenID(K.eosTokenID, vocabulary: tokens.count)
        do {
            // Qwen2's own tokenizer normalises text to NFC (its tokenizer.json); a qwen2 GGUF gets the same.
            return try BPETokenizer(tokens: tokens, merges: merges, tokenTypes: types, pre: pre, bos: bos, eos: eos,
                                    normalizesNFC: pre == "qwen2")
        } catch let error as TokenizerError {
            throw GGUFError.invalidTokenizer(file: path, error: error)
        }
    }

    private func tokenID(_ key: String, vocabulary: Int) throws -> Int32 {
        let id = try int(key)
        guard (0..<vocabulary).contains(id) else {
            throw GGUFError.invalidMetadata(file: path, key: key, reason: "token id \(id) is outside the vocabulary of \(vocabulary)")
        }
        return Int32(id)
    }

    private func int32s(_ key: String) throws -> [Int32] {
        try ints(key).map { v in
            guard let x = Int32(exactly: v) else {
                throw GGUFError.invalidMetadata(file: path, key: key, reason: "value \(v) does not fit in int32")
            }
            return x
        }
    }
}
