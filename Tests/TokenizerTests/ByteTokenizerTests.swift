import XCTest
import Tokenizer

final class ByteTokenizerTests: XCTestCase {
    func testBytesAndSpecialIDs() {
        let tok = ByteTokenizer()
        XCTAssertEqual(ByteTokenizer.vocabSize, 259)
        XCTAssertEqual(tok.vocabSize, 259)
        XCTAssertEqual(tok.bos, 256)
        XCTAssertEqual(tok.eos, 257)
        XCTAssertEqual(ByteTokenizer.padID, 258)
        XCTAssertEqual(tok.encode("Aé"), [0x41, 0xC3, 0xA9])
        // Special-looking text is just bytes; special ids decode to nothing.
        XCTAssertEqual(tok.encode("<|im_end|>").count, 10)
        XCTAssertEqual(tok.decode([256, 0x68, 0x69, 257, 258]), "hi")
        for s in ["", "\u{0}", "e\u{301} 🇫🇷 日本"] {
            XCTAssertEqual(Array(tok.decode(tok.encode(s)).utf8), Array(s.utf8))
        }
    }
}
