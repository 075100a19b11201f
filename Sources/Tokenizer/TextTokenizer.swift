/// Text to token ids and back. Implementations are value types safe to share between threads.
public protocol TextTokenizer: Sendable {
    /// Token ids of `text`. No BOS is added; control tokens written in the text (such as
    /// `<|im_end|>`) are recognised as single tokens.
    func encode(_ text: String) -> [Int32]
    /// The text of `ids`. `decode(encode(s)) == s` for every string whose bytes all have a token
    /// in the vocabulary; a byte without one is dropped by `encode` (see `BPETokenizer`).
    func decode(_ ids: [Int32]) -> String
    /// Number of token ids, the size of the model's embedding table.
    var vocabSize: Int { get }
    /// Beginning-of-sequence id, when the vocabulary has one.
    var bos: Int32? { get }
    /// End-of-sequence id (for chat models, the end-of-turn token).
    var eos: Int32 { get }
}
