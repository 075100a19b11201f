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

    public var description: String {
        switch self {
        case .unknownPreTokenizer(let name):
            return "unknown pre-tokenizer '\(name)' (tokenizer.ggml.pre); supported: smollm, gpt2, default"
        case .emptyVocabulary:
            return "tokenizer.ggml.tokens is empty"
        case .tokenTypeCount(let tokens, let types):
            return "tokenizer.ggml.token_type has \(types) entries but tokenizer.ggml.tokens has \(tokens)"
        case .tokenNotByteLevel(let id, let token):
            return "token \(id) \(token.debugDescription) has a character outside the byte-level BPE alphabet"
        case .missingByteToken(let byte):
            return "no token in tokenizer.ggml.tokens stands for byte 0x\(String(byte, radix: 16, uppercase: true))"
        case .malformedMerge(let index, let merge):
            return "tokenizer.ggml.merges[\(index)] = \(merge.debugDescription) is not two tokens separated by one space"
        case .mergeTokenMissing(let index, let merge, let token):
            return "tokenizer.ggml.merges[\(index)] = \(merge.debugDescription): token \(token.debugDescription) is not in the vocabulary"
        case .specialTokenOutOfRange(let name, let id, let vocabSize):
            return "\(name) token id \(id) is outside the vocabulary (size \(vocabSize))"
        case .malformedTranscript(let offset, let reason):
            return "malformed HH transcript at character \(offset): \(reason)"
        }
    }
}
