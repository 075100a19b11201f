/// Why a tokenizer could not be built from its vocabulary, or a transcript could not be read.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `tokenizer.ggml.pre` names a pre-tokenizer this module does not implement.
    case unknownPreTokenizer(name: String)
    /// The vocabulary is empty.
    case emptyVocabulary
    /// `tokenizer.ggml.token_type` has a different length than `tokenizer.ggml.tokens`.
    case tokenTypeCount(tokens: Int, types: Int)
    /// A normal token contains a character outside GPT-2's byte-to-unicode mapping.
    case tokenNotByteLevel(id: Int, token: String)
    /// No token stands for this printable ASCII byte: not a byte-level BPE vocabulary.
    case missingByteToken(byte: UInt8)
    /// A merge is not two tokens separated by one space.
    case malformedMerge(index: Int, merge: String)
    /// A merge names a token, or produces a token, that is not in the vocabulary.
    case mergeTokenMissing(index: Int, merge: String, token: String)
    /// BOS or EOS id outside the vocabulary.
    case specialTokenOutOfRange(name: String, id: Int32, vocabSize: Int)
    /// An HH transcript that does not have the form "\n\nHuman: ...\n\nAssistant: ...".
    case malformedTranscript(offset: Int, reason: String)

    /// Where a tokenizer's parts are read from, for the key names in messages.
    public enum Source: Sendable {
        /// GGUF metadata: `tokenizer.ggml.tokens`, `tokenizer.ggml.merges`, ...
        case gguf
        /// A Hugging Face `tokenizer.json`: `model.vocab`, `model.merges`, `added_tokens`, `pre_tokenizer`.
        case tokenizerJSON
    }

    public var description: String { message(source: .gguf) }

    /// The message, naming the keys of the file the tokenizer came from.
    public func message(source: Source) -> String {
        let (tokensKey, mergesKey, typesKey, preKey) = source == .gguf
            ? ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.ggml.pre")
            : ("model.vocab", "model.merges", "added_tokens", "pre_tokenizer")
        switch self {
        case .unknownPreTokenizer(let name):
            return "unknown pre-tokenizer '\(name)' (\(preKey)); supported: smollm, gpt2, default"
        case .emptyVocabulary:
            return "\(tokensKey) is empty"
        case .tokenTypeCount(let tokens, let types):
            return "\(typesKey) has \(types) entries but \(tokensKey) has \(tokens)"
        case .tokenNotByteLevel(let id, let token):
            return "token \(id) \(token.debugDescription) has a character outside the byte-level BPE alphabet"
        case .missingByteToken(let byte):
            return "no token in \(tokensKey) stands for byte 0x\(String(byte, radix: 16, uppercase: true))"
        case .malformedMerge(let index, let merge):
            return "\(mergesKey)[\(index)] = \(merge.debugDescription) is not two tokens separated by one space"
        case .mergeTokenMissing(let index, let merge, let token):
            return "\(mergesKey)[\(index)] = \(merge.debugDescription): token \(token.debugDescription) is not in the vocabulary"
        case .specialTokenOutOfRange(let name, let id, let vocabSize):
            return "\(name) token id \(id) is outside the vocabulary (size \(vocabSize))"
        case .malformedTranscript(let offset, let reason):
            return "malformed HH transcript at character \(offset): \(reason)"
        }
    }
}
