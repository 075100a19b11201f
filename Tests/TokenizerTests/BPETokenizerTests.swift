import Foundation
import XCTest
@testable import Tokenizer

/// BPE mechanics on small hand-made vocabularies (no model file needed).
final class BPETokenizerTests: XCTestCase {
    /// Id of a token appended after the 256 byte tokens.
    private func id(_ k: Int) -> Int32 { Int32(256 + k) }
    private func b(_ c: Character) -> Int32 {
        Int32(ByteLevel.byteOfScalar[Int(c.unicodeScalars.first!.value)])
    }

    func testByteLevelMapping() {
        XCTAssertEqual(ByteLevel.string(of: Array(" \n\t".utf8)), "ĠĊĉ")
        XCTAssertEqual(ByteLevel.string(of: [0x00, 0x7F, 0xAD, 0x41, 0xFF]), "ĀġŃAÿ")
        for byte in 0..<256 {
            XCTAssertEqual(ByteLevel.bytes(of: ByteLevel.string(of: [UInt8(byte)])), [UInt8(byte)])
        }
        XCTAssertNil(ByteLevel.bytes(of: "€"))
    }

    func testLowestRankMergesFirstNotLeftmost() throws {
        // "b c" has rank 0, so "abc" is a + bc even though "a b" is further left.
        let tok = try handMadeTokenizer(merges: ["b c", "a b"], extra: [("bc", 1), ("ab", 1)])
        XCTAssertEqual(tok.encode("abc"), [b("a"), id(0)])
        let swapped = try handMadeTokenizer(merges: ["a b", "b c"], extra: [("bc", 1), ("ab", 1)])
        XCTAssertEqual(swapped.encode("abc"), [id(1), b("c")])
    }

    func testEqualRanksMergeLeftmostFirst() throws {
        let tok = try handMadeTokenizer(merges: ["a a", "aa aa"], extra: [("aa", 1), ("aaaa", 1)])
        XCTAssertEqual(tok.encode("aaa"), [id(0), b("a")])
        XCTAssertEqual(tok.encode("aaaa"), [id(1)])
        XCTAssertEqual(tok.encode("aaaaa"), [id(1), b("a")])
    }

    func testMergesBuildWordsAndSpacePrefix() throws {
        let tok = try handMadeTokenizer(
            merges: ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or"],
            extra: [("he", 1), ("ll", 1), ("hell", 1), ("hello", 1), ("Ġw", 1), ("or", 1), ("Ġwor", 1)])
        XCTAssertEqual(tok.encode("hello world"), [id(3), id(6), b("l"), b("d")])
        XCTAssertEqual(tok.decode(tok.encode("hello world")), "hello world")
    }

    func testLongRunIsFastAndCorrect() throws {
        // 2^k runs of "a" with merges for every power of two: 40000 = 32768+4096+2048+1024+64.
        var merges: [String] = []
        var extra: [(String, Int32)] = []
        var piece = "a"
        for _ in 0..<15 {
            merges.append("\(piece) \(piece)")
            piece += piece
            extra.append((piece, 1))
        }
        let tok = try handMadeTokenizer(merges: merges, extra: extra)
        let start = Date()
        let ids = tok.encode(String(repeating: "a", count: 40000))
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(ids, [id(14), id(11), id(10), id(9), id(5)])
        XCTAssertLessThan(seconds, 2, "a 40000-byte word should merge in well under a second")
    }

    func testControlTokensMatchedFirstLongestFirst() throws {
        let tok = try handMadeTokenizer(
            merges: ["< |", "<| a"], extra: [("<|a|>", 3), ("<|a|>b", 4), ("<|", 1), ("<|a", 1), ("<|b|>", 1)])
        // Type 3 and 4 tokens are matched; a normal token with the same look is not.
        XCTAssertEqual(tok.encode("x<|a|>y"), [b("x"), id(0), b("y")])
        XCTAssertEqual(tok.encode("<|a|>bc"), [id(1), b("c")])
        // "<|b|>" is a normal token: the text goes through pre-tokenisation and merges ("<|", "b", "|>").
        XCTAssertEqual(tok.encode("<|b|>"), [id(2), b("b"), b("|"), b(">")])
        // A near miss is ordinary text; merges do not cross word boundaries ("<|" + "a", not "<|a").
        XCTAssertEqual(tok.encode("<|a|<|a|>"), [id(2), b("a"), b("|"), id(0)])
        // Control tokens decode to their own text.
        XCTAssertEqual(tok.decode([id(0), id(1)]), "<|a|><|a|>b")
    }

    func testBytesWithoutTokenAreDroppedBeforeMerging() throws {
        // A vocabulary without tokens for 0x04 and 0xFF (SmolLM2 lacks both), with a "! !" merge.
        var tokens = (0..<256).map { ByteLevel.string(of: [UInt8($0)]) }
        let missing: Set<String> = [ByteLevel.string(of: [0x04]), ByteLevel.string(of: [0xFF])]
        tokens.removeAll { missing.contains($0) }
        tokens.append("!!")
        let tok = try BPETokenizer(tokens: tokens, merges: ["! !"], tokenTypes: [], pre: "gpt2", bos: nil, eos: 0)
        let bang = try XCTUnwrap(tok.encode("!").first), bangs = Int32(tokens.count - 1)
        // As in transformers, the neighbours of a dropped byte can merge.
        XCTAssertEqual(tok.encode("!\u{4}!"), [bangs])
        XCTAssertEqual(tok.encode("\u{4}"), [])
        XCTAssertEqual(tok.encode("!\u{4}!\u{4}!"), [bangs, bang])
        XCTAssertEqual(tok.decode(tok.encode("a\u{4}b")), "ab")
    }

    func testDecodeOutOfRangeIsReplacementCharacter() throws {
        let tok = try handMadeTokenizer(merges: [])
        XCTAssertEqual(tok.decode([b("h"), 99999, -1, b("i")]), "h\u{FFFD}\u{FFFD}i")
    }

    func testRoundTripOnOddUnicodeWithBytesOnly() throws {
        let tok = try handMadeTokenizer(merges: [], pre: "smollm")
        for s in ["", "é\u{301}", "🇫🇷👨‍👩‍👧", "\u{0}\u{1}\u{7F}\u{85}\u{AD}", "a\u{FEFF}b", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ǅ ß ﬁ"] {
            let ids = tok.encode(s)
            XCTAssertEqual(ids.count, s.utf8.count)
            assertUTF8Equal(tok.decode(ids), s)
        }
    }

    func testInvalidVocabulariesThrow() {
        let bytes = (0..<256).map { ByteLevel.string(of: [UInt8($0)]) }
        func expect(_ error: TokenizerError, file: StaticString = #filePath, line: UInt = #line,
                    _ make: () throws -> BPETokenizer) {
            XCTAssertThrowsError(try make(), file: file, line: line) { e in
                XCTAssertEqual(e as? TokenizerError, error, file: file, line: line)
                XCTAssertFalse("\(e)".contains("\n"), "one-line description", file: file, line: line)
            }
        }
        expect(.unknownPreTokenizer(name: "llama-bpe")) {
            try BPETokenizer(tokens: bytes, merges: [], tokenTypes: [], pre: "llama-bpe", bos: nil, eos: 0)
        }
        expect(.emptyVocabulary) {
            try BPETokenizer(tokens: [], merges: [], tokenTypes: [], pre: "gpt2", bos: nil, eos: 0)
        }
        expect(.tokenTypeCount(tokens: 256, types: 3)) {
            try BPETokenizer(tokens: bytes, merges: [], tokenTypes: [1, 1, 1], pre: "gpt2", bos: nil, eos: 0)
        }
        expect(.missingByteToken(byte: 0x41)) {
            try BPETokenizer(tokens: bytes.filter { $0 != "A" }, merges: [], tokenTypes: [], pre: "gpt2", bos: nil, eos: 0)
        }
        expect(.tokenNotByteLevel(id: 256, token: "€")) {
            try BPETokenizer(tokens: bytes + ["€"], merges: [], tokenTypes: [], pre: "gpt2", bos: nil, eos: 0)
        }
        expect(.malformedMerge(index: 1, merge: "abc")) {
            try BPETokenizer(tokens: bytes + ["ab"], merges: ["a b", "abc"], tokenTypes: [], pre: "gpt2", bos: nil, eos: 0)
        }
        expect(.mergeTokenMissing(index: 0, merge: "a b", token: "ab")) {
            try BPETokenizer(tokens: bytes, merges: ["a b"], tokenTypes: [], pre: "gpt2", bos: nil, eos: 0)
        }
        expect(.specialTokenOutOfRange(name: "EOS", id: 256, vocabSize: 256)) {
            try BPETokenizer(tokens: bytes, merges: [], tokenTypes: [], pre: "gpt2", bos: 0, eos: 256)
        }
        expect(.specialTokenOutOfRange(name: "BOS", id: -1, vocabSize: 256)) {
            try BPETokenizer(tokens: bytes, merges: [], tokenTypes: [], pre: "gpt2", bos: -1, eos: 0)
        }
    }

    func testSendableAcrossThreads() throws {
        let tok = try handMadeTokenizer(merges: ["h e", "l l"], extra: [("he", 1), ("ll", 1)])
        let texts = (0..<64).map { "hello \($0) hell\($0 % 7)" }
        let expected = texts.map { tok.encode($0) }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var ids: [Int: [Int32]] = [:]
        }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: texts.count) { i in
            let ids = tok.encode(texts[i])
            results.lock.withLock { results.ids[i] = ids }
        }
        XCTAssertEqual((0..<texts.count).map { results.ids[$0] ?? [] }, expected)
    }
}
