/// One token per UTF-8 byte, plus BOS, EOS and PAD: the tokenizer of the `tiny` model preset.
///
/// Ids 0...255 are the bytes, 256 is BOS, 257 is EOS, 258 is PAD. Text never encodes to the
/// three special ids, and decoding skips them.
public struct ByteTokenizer: TextTokenizer {
    /// 256 bytes + BOS + EOS + PAD.
    public static let vocabSize = 259
    public static let bosID: Int32 = 256
    public static let eosID: Int32 = 257
    public static let padID: Int32 = 258

    public init() {}

    public var vocabSize: Int { Self.vocabSize }
    public var bos: Int32? { Self.bosID }
    public var eos: Int32 { Self.eosID }

    public func encode(_ text: String) -> [Int32] {
        text.utf8.map { Int32($0) }
    }

    public func decode(_ ids: [Int32]) -> String {
        String(decoding: decodeBytes(ids), as: UTF8.self)
    }

    /// The bytes of `ids` (special ids skipped): for streaming output, where one character may be
    /// split across several tokens.
    public func decodeBytes(_ ids: [Int32]) -> [UInt8] {
        ids.compactMap { (0..<256).contains($0) ? UInt8($0) : nil }
    }
}
