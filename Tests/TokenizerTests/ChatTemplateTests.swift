import Foundation
import XCTest
import Tokenizer

final class ChatTemplateTests: XCTestCase {
    private let system = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"

    func testChatMLAddsDefaultSystemMessage() {
        let prompt = ChatTemplate.chatml.prompt([ChatMessage(role: "user", content: "Hi")])
        XCTAssertEqual(prompt, system + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    /// The spec key `system` (issue 41): its text instead of SmolLM2's, "" for no system turn; a conversation's own system
    /// message still wins; hh and raw have none; the name read and written is the kind's.
    func testChatMLTakesTheSystemMessageOfTheTemplate() {
        let user = [ChatMessage(role: "user", content: "Hi")]
        let turn = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        XCTAssertEqual(ChatTemplate.chatml.with(system: "Be brief.").prompt(user), "<|im_start|>system\nBe brief.<|im_end|>\n" + turn)
        XCTAssertEqual(ChatTemplate.chatml.with(system: "").prompt(user), turn)
        XCTAssertEqual(ChatTemplate.chatml.with(system: nil).prompt(user), system + turn)
        let own = [ChatMessage(role: "system", content: "Mine.")] + user
        XCTAssertEqual(ChatTemplate.chatml.with(system: "Be brief.").prompt(own), "<|im_start|>system\nMine.<|im_end|>\n" + turn)
        XCTAssertEqual(ChatTemplate.hh.with(system: "ignored").prompt(user), ChatTemplate.hh.prompt(user))
        XCTAssertEqual(ChatTemplate(rawValue: "chatml"), .chatml)
        XCTAssertEqual(ChatTemplate.chatml.with(system: "x").rawValue, "chatml")
        XCTAssertNotEqual(ChatTemplate.chatml.with(system: "x"), .chatml)
        XCTAssertEqual(ChatTemplate.allCases.map(\.rawValue), ["chatml", "hh", "raw"])
        XCTAssertNil(ChatTemplate(rawValue: "llama3"))
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
