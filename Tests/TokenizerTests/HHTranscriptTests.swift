import XCTest
import Tokenizer

final class HHTranscriptTests: XCTestCase {
    private func u(_ s: String) -> ChatMessage { ChatMessage(role: "user", content: s) }
    private func a(_ s: String) -> ChatMessage { ChatMessage(role: "assistant", content: s) }

    func testParse() throws {
        XCTAssertEqual(try HHTranscript.parse("\n\nHuman: Hi there\n\nAssistant: Hello!"), [u("Hi there"), a("Hello!")])
        XCTAssertEqual(try HHTranscript.parse("\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d"),
                       [u("a"), a("b"), u("c"), a("d")])
        // Newlines and near-markers stay in the content.
        XCTAssertEqual(try HHTranscript.parse("\n\nHuman: x\n\nHumans: y\nHuman: z\n\n\n\nAssistant:  w \n"),
                       [u("x\n\nHumans: y\nHuman: z\n\n"), a(" w \n")])
        XCTAssertEqual(try HHTranscript.parse("\n\nHuman: \n\nAssistant: "), [u(""), a("")])
        XCTAssertEqual(try HHTranscript.parse("\n\nAssistant: only"), [a("only")])
    }

    func testRenderIsLosslessBothWays() throws {
        let transcripts = [
            "\n\nHuman: Hi there\n\nAssistant: Hello!",
            "\n\nHuman: What's 2+2?\n\nAssistant: 4.\n\nHuman: Sure?\n\nAssistant: Yes — très sûr 😀\n",
            "\n\nHuman: x\n\nHumans: y\n\n\n\nAssistant:  spaced  ",
            "\n\nHuman: one\n\nHuman: two\n\nAssistant: ",
        ]
        for t in transcripts {
            let messages = try HHTranscript.parse(t)
            assertUTF8Equal(HHTranscript.render(messages), t)
            XCTAssertEqual(try HHTranscript.parse(HHTranscript.render(messages)), messages)
        }
        let messages = [u("Hi"), a("Hello\n\nthere"), u("é")]
        XCTAssertEqual(HHTranscript.render(messages), "\n\nHuman: Hi\n\nAssistant: Hello\n\nthere\n\nHuman: é")
        XCTAssertEqual(try HHTranscript.parse(HHTranscript.render(messages)), messages)
    }

    func testMalformedTranscriptsThrow() {
        func expect(_ text: String, offset: Int, mentioning word: String,
                    file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try HHTranscript.parse(text), file: file, line: line) { error in
                guard case .malformedTranscript(let at, _)? = error as? TokenizerError else {
                    return XCTFail("unexpected \(error)", file: file, line: line)
                }
                XCTAssertEqual(at, offset, file: file, line: line)
                let message = "\(error)"
                XCTAssertTrue(message.contains(word), message, file: file, line: line)
                XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
            }
        }
        expect("", offset: 0, mentioning: "empty")
        expect("Human: hi\n\nAssistant: yo", offset: 0, mentioning: "start")
        expect("  \n\nHuman: hi", offset: 0, mentioning: "start")
        expect("\n\nHuman:hi", offset: 8, mentioning: "space after \"Human:\"")
        // A prompt that ends with the bare assistant marker is not a full transcript.
        expect("\n\nHuman: é\n\nAssistant:", offset: 22, mentioning: "space after \"Assistant:\"")
    }

    func testRolesOtherThanAssistantRenderAsHuman() {
        XCTAssertEqual(HHTranscript.render([ChatMessage(role: "system", content: "S"), u("U")]),
                       "\n\nHuman: S\n\nHuman: U")
    }
}
