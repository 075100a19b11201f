import XCTest
@testable import Tokenizer

/// Each alternative of the GPT-2 pattern, and smollm's digit split, on hand-written cases.
final class PreTokenizerTests: XCTestCase {
    private func check(_ pre: PreTokenizer, _ text: String, _ expected: [String],
                       file: StaticString = #filePath, line: UInt = #line) {
        let words = pre.words(text)
        XCTAssertEqual(words, expected, "\(pre) on \(text.debugDescription)", file: file, line: line)
        // Words must cover the text exactly, byte for byte.
        XCTAssertEqual(Array(words.joined().utf8), Array(text.utf8), file: file, line: line)
    }

    func testContractions() {
        check(.gpt2, "don't", ["don", "'t"])
        check(.gpt2, "we'll've it's I'm you'd they're", ["we", "'ll", "'ve", " it", "'s", " I", "'m", " you", "'d", " they", "'re"])
        // Case-sensitive, and only the listed endings.
        check(.gpt2, "IT'S", ["IT", "'", "S"])
        check(.gpt2, "'x 'r 'l", ["'", "x", " '", "r", " '", "l"])
        // A contraction only starts where a match starts: after symbols the apostrophe joins them.
        check(.gpt2, "!!'s", ["!!'", "s"])
        check(.gpt2, " 's", [" '", "s"])
        check(.gpt2, "'s's", ["'s", "'s"])
    }

    func testLetters() {
        check(.gpt2, "hello world", ["hello", " world"])
        check(.gpt2, "héllo wörld Ñandú", ["héllo", " wörld", " Ñandú"])
        check(.gpt2, "日本語のテキスト", ["日本語のテキスト"])
        check(.gpt2, "Привет мир", ["Привет", " мир"])
        // A combining mark (Mn) is not \p{L}: it is a symbol.
        check(.gpt2, "e\u{301}x", ["e", "\u{301}", "x"])
    }

    func testNumbersGPT2() {
        check(.gpt2, "abc 123 4", ["abc", " 123", " 4"])
        check(.gpt2, "x2024y", ["x", "2024", "y"])
        check(.gpt2, "½ ٣٤", ["½", " ٣٤"])
    }

    func testSymbols() {
        check(.gpt2, "a, b!? (c)", ["a", ",", " b", "!?", " (", "c", ")"])
        check(.gpt2, " ...", [" ..."])
        check(.gpt2, "😀👍", ["😀👍"])
    }

    func testWhitespace() {
        // `\s+(?!\S)` leaves the last space to prefix the next word.
        check(.gpt2, "a   b", ["a", "  ", " b"])
        // A newline is not the optional prefix: a lone one before a word falls to `\s+`.
        check(.gpt2, "a\n\n\nb", ["a", "\n\n", "\n", "b"])
        check(.gpt2, "\tx", ["\t", "x"])
        check(.gpt2, "a \tb", ["a", " ", "\t", "b"])
        // Trailing whitespace is one run.
        check(.gpt2, "end  \n ", ["end", "  \n "])
        check(.gpt2, " ", [" "])
        check(.gpt2, "", [])
        // NBSP and ideographic space are \s but not the U+0020 prefix; ZWSP is not \s.
        check(.gpt2, "a\u{A0}b\u{3000}c\u{200B}d", ["a", "\u{A0}", "b", "\u{3000}", "c", "\u{200B}", "d"])
        check(.gpt2, "a\r\nb", ["a", "\r", "\n", "b"])
    }

    func testSmolLMSplitsEveryDigit() {
        check(.smollm, "1234", ["1", "2", "3", "4"])
        check(.smollm, "abc 123 4", ["abc", " ", "1", "2", "3", " ", "4"])
        // The stretch before a digit ends there, so its whitespace run is kept whole.
        check(.smollm, "x  42 y", ["x", "  ", "4", "2", " y"])
        check(.smollm, "\n\n1.", ["\n\n", "1", "."])
        check(.gpt2, "\n\n1.", ["\n", "\n", "1", "."])
        // Every \p{N}, not only ASCII digits.
        check(.smollm, "½² ٣٤Ⅻ", ["½", "²", " ", "٣", "٤", "Ⅻ"])
        check(.smollm, "it's 5'm", ["it", "'s", " ", "5", "'m"])
    }

    func testNamesAndUnknownName() throws {
        XCTAssertEqual(try PreTokenizer(name: "smollm"), .smollm)
        XCTAssertEqual(try PreTokenizer(name: "gpt2"), .gpt2)
        XCTAssertEqual(try PreTokenizer(name: "default"), .gpt2)
        XCTAssertThrowsError(try PreTokenizer(name: "llama-bpe")) { error in
            XCTAssertEqual(error as? TokenizerError, .unknownPreTokenizer(name: "llama-bpe"))
            XCTAssertTrue("\(error)".contains("'llama-bpe'"), "\(error)")
        }
    }
}
