import Foundation
import XCTest
import Tokenizer

final class ChatTemplateTests: XCTestCase {
    private let system = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"

    func testChatMLAddsDefaultSystemMessage() {
        let prompt = ChatTemplate.chatml.prompt([ChatMessage(role: "user", content: "Hi")])
        XCTAssertEqual(prompt, system + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    func testChatMLKeepsGivenSystemMessageAndTurns() {
        let prompt = ChatTemplate.chatml.prompt([
            ChatMessage(role: "system", content: "Be brief."),
            ChatMessage(role: "user", content: "Hi"),
            ChatMessage(role: "assistant", content: "Hello."),
            ChatMessage(role: "user", content: "Bye\nnow"),
        ])
        XCTAssertEqual(prompt, """
            <|im_start|>system
            Be brief.<|im_end|>
            <|im_start|>user
            Hi<|im_end|>
            <|im_start|>assistant
            Hello.<|im_end|>
            <|im_start|>user
            Bye
            now<|im_end|>
            <|im_start|>assistant

            """)
        XCTAssertEqual(ChatTemplate.chatml.prompt([]), system + "<|im_start|>assistant\n")
    }

    func testResponses() {
        XCTAssertEqual(ChatTemplate.chatml.response("Paris."), "Paris.<|im_end|>")
        XCTAssertEqual(ChatTemplate.hh.response("Paris."), " Paris.")
    }

    func testHHPrompt() {
        XCTAssertEqual(ChatTemplate.hh.prompt([ChatMessage(role: "user", content: "Hi")]), "\n\nHuman: Hi\n\nAssistant:")
        XCTAssertEqual(ChatTemplate.hh.prompt([
            ChatMessage(role: "user", content: "Hi"),
            ChatMessage(role: "assistant", content: "Hello."),
            ChatMessage(role: "user", content: "Joke?"),
        ]), "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Joke?\n\nAssistant:")
        // The prompt plus the response is a full transcript again.
        let messages = [ChatMessage(role: "user", content: "Hi")]
        let full = ChatTemplate.hh.prompt(messages) + ChatTemplate.hh.response("Yo")
        XCTAssertEqual(try HHTranscript.parse(full), messages + [ChatMessage(role: "assistant", content: "Yo")])
    }

    func testCodable() throws {
        let decoded = try JSONDecoder().decode([ChatTemplate].self, from: Data(#"["chatml","hh"]"#.utf8))
        XCTAssertEqual(decoded, [.chatml, .hh])
        XCTAssertThrowsError(try JSONDecoder().decode([ChatTemplate].self, from: Data(#"["llama3"]"#.utf8)))
        let m = ChatMessage(role: "user", content: "x\"y")
        XCTAssertEqual(try JSONDecoder().decode(ChatMessage.self, from: JSONEncoder().encode(m)), m)
    }
}
