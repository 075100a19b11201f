import Foundation

/// Byte-level BPE as in GPT-2, built from a GGUF vocabulary (`tokenizer.ggml.model` = "gpt2").
///
/// Encoding: control tokens written in the text are matched first (leftmost, longest first); the
/// text between them is cut into words by the pre-tokenizer; each word's UTF-8 bytes start as
/// one token per byte and the adjacent pair with the lowest merge rank (leftmost on ties) is merged
/// until no pair has a merge. Words are cached, so repeated words cost one dictionary look-up.
/// Decoding concatenates each token's bytes (control tokens decode to their own text).
///
/// A byte that no token stands for is dropped before merging, as transformers' BPE does (SmolLM2's
/// vocabulary lacks 21 bytes: the controls 0x04 0x06 0x13 0x14 0x16 0x1D and lead bytes that valid
/// UTF-8 never or rarely uses, 0xC0 0xC1 0xF1 0xF2 0xF5...0xFF); so text holding such bytes does not
/// round-trip. The exact contract: `decodeBytes(encode(s))` is the UTF-8 of `s` with every byte that
/// has no single-byte token removed (control tokens are matched before the removal), so every other
/// string round-trips: `decode(encode(s)) == s`. FuzzTokenizer checks this against the vocabulary.
public struct BPETokenizer: TextTokenizer {
    public let vocabSize: Int
    public let bos: Int32?
    public let eos: Int32
    let preTokenizer: PreTokenizer
    /// Unicode NFC applied to the text between control tokens before pre-tokenising (tokenizer.json's
    /// `normalizer: NFC`, as Qwen2's); control tokens are matched in the text as given.
    let normalizesNFC: Bool
    /// The bytes each id decodes to.
    private let tokenBytes: [[UInt8]]
    /// The id of each single byte.
    private let byteToken: [Int32]
    /// (left << 32 | right) -> (rank << 32 | merged id), ids as UInt32.
    private let mergeTable: [UInt64: UInt64]
    private let specials: SpecialTokens
    private let cache = WordCache()

    /// GGUF token types (llama.cpp `llama_token_type`).
    enum TokenType: Int32 {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// Builds the tokenizer from the GGUF arrays `tokenizer.ggml.tokens`, `tokenizer.ggml.merges`
    /// (ranked, "left right" in byte-level characters), `tokenizer.ggml.token_type` (may be empty:
    /// all normal) and the pre-tokenizer name `tokenizer.ggml.pre`.
    ///
    /// Tokens of type control (3) or user-defined (4) are matched as whole tokens in text.
    public init(tokens: [String], merges: [String], tokenTypes: [Int32], pre: String, bos: Int32?, eos: Int32,
                normalizesNFC: Bool = false) throws {
        self.normalizesNFC = normalizesNFC
        guard !tokens.isEmpty else { throw TokenizerError.emptyVocabulary }
        guard tokenTypes.isEmpty || tokenTypes.count == tokens.count else {
            throw TokenizerError.tokenTypeCount(tokens: tokens.count, types: tokenTypes.count)
        }
        preTokenizer = try PreTokenizer(name: pre)
        vocabSize = tokens.count
        for (name, id) in [("BOS", bos), ("EOS", eos)] {
            if let id, !(0..<Int32(tokens.count)).contains(id) {
                throw TokenizerError.specialTokenOutOfRange(name: name, id: id, vocabSize: tokens.count)
            }
        }
        self.bos = bos
        self.eos = eos

        var tokenBytes: [[UInt8]] = []
        tokenBytes.reserveCapacity(tokens.count)
        var idOfBytes: [[UInt8]: Int32] = [:]
        idOfBytes.reserveCapacity(tokens.count)
        var special: [(bytes: [UInt8], id: Int32)] = []
        for (i, token) in tokens.enumerated() {
            let type = tokenTypes.isEmpty ? TokenType.normal.rawValue : tokenTypes[i]
            if type == TokenType.control.rawValue || type == TokenType.userDefined.rawValue {
                let bytes = Array(token.utf8)
                tokenBytes.append(bytes)
                if !bytes.isEmpty { special.append((bytes, Int32(i))) }
                continue
            }
            guard let bytes = ByteLevel.bytes(of: token) else {
                throw TokenizerError.tokenNotByteLevel(id: i, token: token)
            }
            tokenBytes.append(bytes)
            // On duplicates the last id wins, as in llama.cpp and transformers.
            idOfBytes[bytes] = Int32(i)
        }
        self.tokenBytes = tokenBytes
        specials = SpecialTokens(special)

        // -1 marks a byte without a token. Printable ASCII must all be there, or this is not a
        // byte-level vocabulary at all.
        var byteToken = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            if let id = idOfBytes[[UInt8(b)]] {
                byteToken[b] = id
            } else if (0x20...0x7E).contains(b) {
                throw TokenizerError.missingByteToken(byte: UInt8(b))
            }
        }
        self.byteToken = byteToken

        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.malformedMerge(index: rank, merge: merge)
            }
            func lookUp(_ bytes: [UInt8]?, _ text: String) throws -> Int32 {
                guard let bytes, let id = idOfBytes[bytes] else {
                    throw TokenizerError.mergeTokenMissing(index: rank, merge: merge, token: text)
                }
                return id
            }
            let leftBytes = ByteLevel.bytes(of: String(parts[0]))
            let rightBytes = ByteLevel.bytes(of: String(parts[1]))
            let left = try lookUp(leftBytes, String(parts[0]))
            let right = try lookUp(rightBytes, String(parts[1]))
            let merged = try lookUp(leftBytes.flatMap { l in rightBytes.map { l + $0 } }, String(parts[0] + parts[1]))
            let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
            // On duplicate merges the first (lowest) rank wins, as in llama.cpp.
            if table[key] == nil { table[key] = UInt64(rank) << 32 | UInt64(UInt32(merged)) }
        }
        mergeTable = table
    }

    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        let utf8 = Array(text.utf8)
        utf8.withUnsafeBufferPointer { buf in
            var start = 0
            var words: [Range<Int>] = []
            func ordinary(_ range: Range<Int>) {
                // ASCII is its own NFC: only text with other bytes is normalised.
                if normalizesNFC, buf[range].contains(where: { $0 >= 0x80 }) {
                    let normal = Array(String(decoding: buf[range], as: UTF8.self).precomposedStringWithCanonicalMapping.utf8)
                    normal.withUnsafeBufferPointer { encodeOrdinary($0, 0..<$0.count, words: &words, into: &ids) }
                } else {
                    encodeOrdinary(buf, range, words: &words, into: &ids)
                }
            }
            specials.forEachMatch(in: buf) { range, id in
                ordinary(start..<range.lowerBound)
                ids.append(id)
                start = range.upperBound
            }
            ordinary(start..<buf.count)
        }
        return ids
    }

    public func decode(_ ids: [Int32]) -> String {
        String(decoding: decodeBytes(ids), as: UTF8.self)
    }

    /// The bytes of `ids` concatenated: for streaming output, where one character may be split
    /// across tokens. An id outside the vocabulary decodes to U+FFFD.
    public func decodeBytes(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        for id in ids {
            if id >= 0 && Int(id) < tokenBytes.count {
                out.append(contentsOf: tokenBytes[Int(id)])
            } else {
                out.append(contentsOf: [0xEF, 0xBF, 0xBD])
            }
        }
        return out
    }

    /// Pre-tokenises and merges the text in `range` (which holds no control token).
    private func encodeOrdinary(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                                words: inout [Range<Int>], into ids: inout [Int32]) {
        guard !range.isEmpty else { return }
        let text = UnsafeBufferPointer(rebasing: buf[range])
        words.removeAll(keepingCapacity: true)
        preTokenizer.split(text, into: &words)
        for w in words {
            if w.count == 1 {
                let id = byteToken[Int(text[w.lowerBound])]
                if id >= 0 { ids.append(id) }
                continue
            }
            let word = UnsafeBufferPointer(rebasing: text[w])
            let key = Array(word)
            if let cached = cache[key] {
                ids.append(contentsOf: cached)
            } else {
                let merged = bpe(word)
                cache[key] = merged
                ids.append(contentsOf: merged)
            }
        }
    }

    /// Merges the bytes of one word: always the adjacent pair of lowest rank, leftmost on ties.
    /// A heap of candidate pairs keeps long words (runs of thousands of spaces) O(n log n).
    func bpe(_ word: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var ids = word.map { byteToken[Int($0)] }.filter { $0 >= 0 }
        let n = ids.count
        guard n > 1 else { return ids }
        // Doubly linked list over symbol positions; a merged-away symbol gets id -1.
        var next = (0..<n).map { Int32($0 + 1) }
        var prev = (0..<n).map { Int32($0 - 1) }
        next[n - 1] = -1
        var heap = PairHeap()
        heap.reserve(n)
        func consider(_ i: Int32) {
            guard i >= 0, case let r = next[Int(i)], r >= 0 else { return }
            let l = ids[Int(i)], rt = ids[Int(r)]
            guard let m = mergeTable[UInt64(UInt32(l)) << 32 | UInt64(UInt32(rt))] else { return }
            heap.push(PairHeap.Entry(order: (m >> 32) << 32 | UInt64(UInt32(i)), left: l, right: rt,
                                     merged: Int32(truncatingIfNeeded: m)))
        }
        for i in 0..<(n - 1) { consider(Int32(i)) }
        while let top = heap.pop() {
            let i = Int(top.order & 0xFFFF_FFFF)
            let r = Int(next[i])
            // Stale entries: a side was merged since the pair was pushed.
            guard r >= 0, ids[i] == top.left, ids[r] == top.right else { continue }
            ids[i] = top.merged
            ids[r] = -1
            next[i] = next[r]
            if next[r] >= 0 { prev[Int(next[r])] = Int32(i) }
            consider(prev[i])
            consider(Int32(i))
        }
        return ids.filter { $0 >= 0 }
    }
}

/// Min-heap of candidate merges ordered by (rank, position).
private struct PairHeap {
    struct Entry {
        /// rank << 32 | position of the left symbol.
        var order: UInt64
        var left: Int32, right: Int32, merged: Int32
    }
    private var items: [Entry] = []

    mutating func reserve(_ n: Int) { items.reserveCapacity(n) }

    mutating func push(_ e: Entry) {
        items.append(e)
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard items[c].order < items[p].order else { break }
            items.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() -> Entry? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        var p = 0
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < items.count && items[l].order < items[m].order { m = l }
            if r < items.count && items[r].order < items[m].order { m = r }
            if m == p { break }
            items.swapAt(p, m)
            p = m
        }
        return top
    }
}

/// Control tokens matched verbatim in text: at each position the longest token that starts there.
private struct SpecialTokens: Sendable {
    /// Longest first.
    private let tokens: [(bytes: [UInt8], id: Int32)]
    private let firstByte: [Bool]

    init(_ tokens: [(bytes: [UInt8], id: Int32)]) {
        self.tokens = tokens.sorted { $0.bytes.count > $1.bytes.count }
        var first = [Bool](repeating: false, count: 256)
        for t in tokens { first[Int(t.bytes[0])] = true }
        firstByte = first
    }

    func forEachMatch(in text: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>, Int32) -> Void) {
        guard !tokens.isEmpty else { return }
        var i = 0
        scan: while i < text.count {
            if firstByte[Int(text[i])] {
                for t in tokens where t.bytes.count <= text.count - i {
                    var k = 0
                    while k < t.bytes.count && text[i + k] == t.bytes[k] { k += 1 }
                    if k == t.bytes.count {
                        body(i..<(i + k), t.id)
                        i += k
                        continue scan
                    }
                }
            }
            i += 1
        }
    }
}

/// Word -> ids, shared by all copies of one tokenizer and safe to use from several threads.
private final class WordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var words: [[UInt8]: [Int32]] = [:]
    /// Bounds memory on endless streams of new words; the cache is simply emptied when full.
    private let capacity = 1 << 17

    subscript(word: [UInt8]) -> [Int32]? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return words[word]
        }
        set {
            lock.lock()
            defer { lock.unlock() }
            if words.count >= capacity { words.removeAll(keepingCapacity: true) }
            words[word] = newValue
        }
    }
}
