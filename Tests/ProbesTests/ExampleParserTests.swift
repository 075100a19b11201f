import XCTest
@testable import Probes

private typealias M = ParsedLine.Message

final class ExampleParserTests: XCTestCase {
    private func parse(_ name: String) throws -> [ParsedLine] {
        try parseJSONLines(try fixtureText(name), file: name)
    }

    func testPromptFormatWithStringsMessageListsAndExtraFields() throws {
        let lines = try parse("format-prompt.jsonl")
        XCTAssertEqual(lines.map(\.line), [1, 3, 4], "line numbers count blank lines")
        XCTAssertEqual(lines[0].prompt, .messages([M(role: "user", content: "How do I boil an egg?")]))
        XCTAssertEqual(lines[0].fields, ["chosen": "Put it in boiling water for nine minutes.", "rejected": "Eggs are nice.",
                                         "reject_paraphrase": "Eggs are pleasant."])
        XCTAssertEqual(lines[0].otherFields, ["id": "a number"])
        XCTAssertEqual(lines[1].prompt, .messages([M(role: "system", content: "Be brief."), M(role: "user", content: "Hi!"),
                                                   M(role: "assistant", content: "Hello."), M(role: "user", content: "What is 2+2?")]))
        XCTAssertEqual(lines[1].fields, ["chosen": "4.", "rejected": "5."])
        // Response fields given as message lists repeating the prompt (UltraFeedback layout).
        XCTAssertEqual(lines[2].fields, ["chosen": "7", "rejected": "9"])
    }

    func testHHTranscriptsAreCutAtTheLastAssistantMarker() throws {
        let lines = try parse("format-hh.jsonl")
        XCTAssertEqual(lines[0].prompt, .hhTranscript("\n\nHuman: What is the capital of France?"))
        XCTAssertEqual(lines[0].fields, ["chosen": "Paris.", "rejected": "Lyon, I think."])
        XCTAssertEqual(lines[1].prompt, .hhTranscript("\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke."))
        XCTAssertEqual(lines[1].fields, ["chosen": "Why did the chicken cross the road?", "rejected": "No."])
    }

    func testMessagesFormatTakesTheLastAssistantTurnAsChosen() throws {
        let lines = try parse("format-messages.jsonl")
        XCTAssertEqual(lines[0].prompt, .messages([M(role: "user", content: "Translate 'cat' to French.")]))
        XCTAssertEqual(lines[0].fields, ["chosen": "chat", "rejected": "chien"])
        XCTAssertEqual(lines[1].prompt, .messages([M(role: "system", content: "You answer in one word."),
                                                   M(role: "user", content: "Colour of the sky?")]))
        XCTAssertEqual(lines[1].fields, ["chosen": "Blue"])
    }

    func testChatPreferenceFormat() throws {
        let lines = try parse("format-chat-preference.jsonl")
        XCTAssertEqual(lines[0].prompt, .messages([M(role: "user", content: "Is water wet?")]))
        XCTAssertEqual(lines[0].fields, ["chosen": "It makes things wet.", "rejected": "No."])
    }

    func testFormatIsDetectedPerLine() throws {
        let lines = try parse("mixed-formats.jsonl")
        XCTAssertEqual(lines.map { $0.fields["chosen"] }, ["a", "b", "c", "d"])
        XCTAssertEqual(lines[2].prompt, .hhTranscript("\n\nHuman: C?"))
        XCTAssertEqual(lines[3].prompt, .messages([M(role: "user", content: "D?")]))
    }

    func testErrorFixturesNameFileLineAndWhatWasExpected() {
        assertProbesError(.promptMismatch(file: "error-hh-mismatch.jsonl", line: 2, field: "rejected", reference: "chosen")) {
            try parse("error-hh-mismatch.jsonl")
        }
        assertProbesError(.notAnObject(file: "error-not-object.jsonl", line: 3, found: "an array")) {
            try parse("error-not-object.jsonl")
        }
        assertProbesError(.missingField(file: "error-missing-field.jsonl", line: 2, field: "chosen")) {
            try parse("error-missing-field.jsonl")
        }
        assertProbesError(.wrongType(file: "error-wrong-type.jsonl", line: 2, field: "prompt",
                                     expected: "a string or a list of messages", found: "a number")) {
            try parse("error-wrong-type.jsonl")
        }
        assertProbesError(.emptyFile(file: "error-empty.jsonl")) { try parse("error-empty.jsonl") }
    }

    func testInlineErrors() {
        func parseText(_ text: String) throws -> [ParsedLine] { try parseJSONLines(text, file: "t.jsonl") }
        XCTAssertThrowsError(try parseText("{\"prompt\": \"a\", \"chosen\": \"b\"}\n{oops")) { error in
            guard case let .invalidJSON(file, line, _)? = error as? ProbesError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "t.jsonl")
            XCTAssertEqual(line, 2)
        }
        assertProbesError(.unknownFormat(file: "t.jsonl", line: 1)) { try parseText(#"{"question": "a", "answer": "b"}"#) }
        assertProbesError(.wrongType(file: "t.jsonl", line: 1, field: "chosen", expected: "a string or a list of messages",
                                     found: "a number")) { try parseText(#"{"prompt": "a", "chosen": 3}"#) }
        assertProbesError(.invalidMessages(file: "t.jsonl", line: 1, field: "prompt",
                                           reason: "expected the last message to be a \"user\" turn, found \"assistant\"")) {
            try parseText(#"{"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "chosen": "c"}"#)
        }
        assertProbesError(.missingField(file: "t.jsonl", line: 1, field: "prompt[0].content")) {
            try parseText(#"{"prompt": [{"role": "user"}], "chosen": "c"}"#)
        }
        assertProbesError(.invalidMessages(file: "t.jsonl", line: 1, field: "messages",
                                           reason: "expected the last message to be an \"assistant\" turn, found \"user\"")) {
            try parseText(#"{"messages": [{"role": "user", "content": "a"}]}"#)
        }
        assertProbesError(.promptMismatch(file: "t.jsonl", line: 1, field: "rejected", reference: "chosen")) {
            try parseText(#"{"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "#
                          + #""rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "c"}]}"#)
        }
        assertProbesError(.invalidMessages(file: "t.jsonl", line: 1, field: "chosen",
                                           reason: "the line has no \"prompt\" or \"messages\" field, so \"chosen\" must be a whole HH transcript \"\\n\\nHuman: ...\\n\\nAssistant: ...\"")) {
            try parseText(#"{"chosen": "just text", "rejected": "more text"}"#)
        }
    }

    func testOriginsAndSplitAreReadNotTakenAsResponses() throws {
        let lines = try parseJSONLines(
            #"{"idx": 0, "split": "heldout", "prompt": "p", "chosen": "c", "random": "r", "origins": {"chosen": "data", "random": "derived:other_prompt:seed=1"}}"#,
            file: "m.jsonl")
        XCTAssertEqual(lines[0].fields, ["chosen": "c", "random": "r"])
        XCTAssertEqual(lines[0].split, "heldout")
        XCTAssertEqual(lines[0].origins["random"], "derived:other_prompt:seed=1")
        XCTAssertTrue(lines[0].otherFields.isEmpty)
    }
}
