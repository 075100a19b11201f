import XCTest
@testable import Tokenizer

/// Issue 34: prompt + response -> ids in one place (`ChatEncoder`): separately tokenised and concatenated, the
/// response with its template terminator, the prompt cut from the left, the cannot-fit rule, the stop tokens.
final class ChatEncoderTests: XCTestCase {
    let source = PromptSource(messages: [ChatMessage(role: "user", content: "Hi there")], text: "\n\nHuman: Hi there\n\nAssistant:", separator: " ")

    func testPairIsPromptAndResponseTokenisedApart() throws {
        let tok = ByteTokenizer()
        let e = ChatEncoder(tokenizer: tok, template: .hh)
        let p = try e.pair(prompt: source, response: "Hello.", maxLength: 100)
        XCTAssertEqual(p.prompt, tok.encode("\n\nHuman: Hi there\n\nAssistant:"))
        XCTAssertEqual(p.response, tok.encode(" Hello."))
        XCTAssertEqual(p.cut, 0)
        // a response written without the separator is scored as written
        XCTAssertEqual(try e.pair(prompt: source, response: "Hello.", separated: false, maxLength: 100).response, tok.encode("Hello."))
        // raw: the file's own prompt text and separator
        let raw = try ChatEncoder(tokenizer: tok, template: .raw).pair(prompt: source, response: "Hello.", maxLength: 100)
        XCTAssertEqual(raw.prompt + raw.response, tok.encode("\n\nHuman: Hi there\n\nAssistant:") + tok.encode(" Hello."))
    }

    func testThePromptIsCutFromTheLeftAndTheResponseMustLeaveRoom() throws {
        let tok = ByteTokenizer()
        let e = ChatEncoder(tokenizer: tok, template: .hh)
        let full = tok.encode("\n\nHuman: Hi there\n\nAssistant:")
        let p = try e.pair(prompt: source, response: "Hello.", maxLength: 10)  // " Hello." is 7 bytes: 3 prompt tokens left
        XCTAssertEqual(p.prompt, Array(full.suffix(3)))
        XCTAssertEqual(p.cut, full.count - 3)
        XCTAssertThrowsError(try e.pair(prompt: source, response: "Hello.", maxLength: 7)) { error in
            XCTAssertEqual(error as? ChatEncoder.Failure, .responseTooLong(tokens: 7, maxLength: 7, what: "response"))
            XCTAssertEqual("\(error)", "response is 7 tokens, train.max_length is 7: it cannot fit with its prompt")
        }
        XCTAssertThrowsError(try ChatEncoder(tokenizer: tok, template: .raw).pair(prompt: source, response: "", separated: false, maxLength: 10)) { error in
            XCTAssertEqual(error as? ChatEncoder.Failure, .emptyResponse)
        }
        let messagesOnly = PromptSource(messages: [ChatMessage(role: "user", content: "a"), ChatMessage(role: "assistant", content: "b"),
                                                   ChatMessage(role: "user", content: "c")])
        XCTAssertThrowsError(try ChatEncoder(tokenizer: tok, template: .raw).prompt(messagesOnly)) { error in
            XCTAssertEqual(error as? ChatEncoder.Failure, .rawNeedsText)
        }
    }

    func testStopTokensAreTheEndOfTextAndChatMLsEndOfTurn() {
        XCTAssertEqual(ChatEncoder.stopTokens(ByteTokenizer()), [ByteTokenizer().eos])
    }
}
