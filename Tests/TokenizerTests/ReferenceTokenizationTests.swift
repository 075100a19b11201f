import Base
import Foundation
import XCTest
import Model
@testable import Tokenizer

/// SmolLM2's real vocabulary against ids produced by transformers (scripts/make-reference.py).
final class ReferenceTokenizationTests: XCTestCase {
    func testVocabularyFacts() throws {
        let tok = try smolLMTokenizer()
        XCTAssertEqual(tok.vocabSize, 49152)
        XCTAssertEqual(tok.bos, 1)
        XCTAssertEqual(tok.eos, 2)
        XCTAssertEqual(tok.preTokenizer, .smollm)
    }

    func testFixtureIDsMatchExactly() throws {
        let tok = try smolLMTokenizer()
        let fixture = try TokenIDFixture.load()
        XCTAssertGreaterThanOrEqual(fixture.cases.count, 30)
        var mismatches = 0
        for c in fixture.cases {
            let ids = tok.encode(c.text)
            if ids != c.ids {
                mismatches += 1
                XCTFail("""
                    \(c.text.debugDescription)
                      expected \(c.ids) \(pieces(tok, c.ids))
                      got      \(ids) \(pieces(tok, ids))
                    """)
            }
            XCTAssertEqual(tok.decodeBytes(c.ids), expectedRoundTripBytes(c.text),
                           "decode of the reference ids of \(c.text.debugDescription)")
        }
        XCTAssertEqual(mismatches, 0)
    }

    /// The `gpt2` pre-tokenizer on SmolLM2's vocabulary against transformers' stock GGUF tokenizer.
    func testGPT2PreTokenizerMatchesStockTransformers() throws {
        _ = try smolLMTokenizer()
        let tok = try loadTokenizer(gguf: modelPath, pre: "gpt2")
        let fixture = try TokenIDFixture.load()
        var differFromSmolLM = 0
        for c in fixture.cases {
            let ids = tok.encode(c.text)
            XCTAssertEqual(ids, c.ids_gpt2, "\(c.text.debugDescription): \(pieces(tok, ids)) vs \(pieces(tok, c.ids_gpt2))")
            if c.ids_gpt2 != c.ids { differFromSmolLM += 1 }
        }
        // The fixture must tell the two pre-tokenizers apart.
        XCTAssertGreaterThanOrEqual(differFromSmolLM, 4)
    }

    func testControlTokensAreSingleTokens() throws {
        let tok = try smolLMTokenizer()
        let control = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>",
                       "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>",
                       "<jupyter_start>", "<jupyter_text>", "<jupyter_code>", "<jupyter_output>",
                       "<jupyter_script>", "<empty_output>"]
        for (id, text) in control.enumerated() {
            XCTAssertEqual(tok.encode(text), [Int32(id)], text)
            XCTAssertEqual(tok.decode([Int32(id)]), text)
        }
        let user = tok.encode("<|im_start|>user\nHi<|im_end|>\n")
        XCTAssertEqual(user.first, 1)
        XCTAssertEqual(user.filter { $0 < 17 }, [1, 2])
        // A near miss is ordinary text.
        XCTAssertFalse(tok.encode("<|im_start |>").contains(1))
    }

    func testDigitsAreSplitOneByOne() throws {
        let tok = try smolLMTokenizer()
        let ids = tok.encode("31415926535 and 2718281828")
        let digits = pieces(tok, ids).filter { $0.contains(where: \.isNumber) }
        XCTAssertEqual(digits.count, 21, "\(pieces(tok, ids))")
        XCTAssertTrue(digits.allSatisfy { $0.count == 1 })
    }

    func testRoundTripOddUnicode() throws {
        let tok = try smolLMTokenizer()
        var texts = [
            "", " ", "\u{0}", "e\u{301}\u{302}\u{303}", "🏳️‍🌈🧑🏿‍🚀", "\u{FEFF}bom", "\u{10FFFF}\u{E000}",
            "a\u{2028}b\u{2029}c\u{85}d", "ǅungla ﬁnal ß İstanbul", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛", "\r\n\r\n\t \u{B}\u{C}",
            "<|im_start|><|im_start|<|im_end|>>", "'''s'S'LL ''", "Ὀδυσσεύς ᾧ", "ไทย ລາວ ᠮᠣᠩᠭᠣᠯ",
        ]
        // Seeded random strings over scalars from many ranges, mixed with control tokens and spaces.
        var rng = SplitMix64(seed: 7)
        let ranges: [ClosedRange<UInt32>] = [0x00...0x7F, 0x80...0x2FF, 0x300...0x36F, 0x400...0x4FF, 0x600...0x6FF,
                                             0x900...0x97F, 0x2000...0x206F, 0x3000...0x30FF, 0x4E00...0x4FFF,
                                             0xAC00...0xACFF, 0x1F300...0x1F6FF, 0x1D400...0x1D7FF]
        for _ in 0..<300 {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int(rng.next() % 40) {
                if rng.next() % 25 == 0 {
                    s.append(contentsOf: "<|im_end|>".unicodeScalars)
                    continue
                }
                let r = ranges[Int(rng.next() % UInt64(ranges.count))]
                let v = r.lowerBound + UInt32(rng.next() % UInt64(r.upperBound - r.lowerBound + 1))
                if let scalar = Unicode.Scalar(v) { s.append(scalar) }
            }
            texts.append(String(s))
        }
        var exact = 0
        for t in texts {
            let ids = tok.encode(t)
            XCTAssertTrue(ids.allSatisfy { (0..<49152).contains($0) })
            if t.utf8.contains(where: smolLMMissingBytes.contains) {
                XCTAssertEqual(tok.decodeBytes(ids), expectedRoundTripBytes(t), t.debugDescription)
            } else {
                assertUTF8Equal(tok.decode(ids), t, "round trip")
                exact += 1
            }
        }
        XCTAssertGreaterThan(exact, 200, "most generated strings must round-trip exactly")
    }

    func testReferencePairsRenderAndTokenizeLikeTransformers() throws {
        let tok = try smolLMTokenizer()
        let fixture = try LogprobFixture.load()
        XCTAssertGreaterThanOrEqual(fixture.pairs.count, 12)
        for p in fixture.pairs {
            if let messages = p.messages, let text = p.response_text {
                let template = try XCTUnwrap(ChatTemplate(rawValue: p.kind), p.kind)
                assertUTF8Equal(template.prompt(messages), p.prompt, "\(p.kind) prompt")
                assertUTF8Equal(template.response(text), p.response, "\(p.kind) response")
            }
            XCTAssertEqual(tok.encode(p.prompt), p.prompt_ids, p.prompt.debugDescription)
            XCTAssertEqual(tok.encode(p.response), p.response_ids, p.response.debugDescription)
        }
    }

    func testEncodingSpeed() throws {
        let tok = try smolLMTokenizer()
        let fixture = try TokenIDFixture.load()
        // ~1 MB of mixed text: the fixture strings plus numbered prose, so most words repeat.
        var parts: [String] = []
        var size = 0
        var k = 0
        while size < 1_000_000 {
            let s = fixture.cases[k % fixture.cases.count].text + " Paragraph \(k): the model learns what it sees. "
            parts.append(s)
            size += s.utf8.count
            k += 1
        }
        let text = parts.joined()
        let start = Date()
        let ids = tok.encode(text)
        let seconds = Date().timeIntervalSince(start)
        let mbPerSecond = Double(text.utf8.count) / 1e6 / seconds
        print("encoded \(text.utf8.count) bytes into \(ids.count) tokens in \(seconds) s (\(mbPerSecond) MB/s)")
        XCTAssertTrue(tok.decodeBytes(ids) == expectedRoundTripBytes(text), "1 MB text does not round-trip")
        // 10-20 MB/s when the machine is idle; the bound only catches pathological (quadratic)
        // slowness, with room for a loaded shared 2-core machine.
        XCTAssertGreaterThan(mbPerSecond, 0.2)

        // A 100000-space run is one word; the heap merge keeps it fast.
        let spaces = String(repeating: " ", count: 100_000)
        let t0 = Date()
        let spaceIDs = tok.encode(spaces)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 2)
        XCTAssertTrue(tok.decode(spaceIDs) == spaces, "a run of spaces does not round-trip")
    }
}
