import XCTest
@testable import Probes
import Tokenizer

final class LoaderTests: XCTestCase {
    func testPromptFormat() throws {
        let path = fixturePath("format-prompt.jsonl")
        let examples = try loadExamples(path: path)
        XCTAssertEqual(examples.count, 3)
        XCTAssertEqual(examples[0].prompt, [user("How do I boil an egg?")])
        XCTAssertEqual(examples[0].chosen, "Put it in boiling water for nine minutes.")
        XCTAssertEqual(examples[0].rejected, "Eggs are nice.")
        XCTAssertEqual(examples[0].fields["reject_paraphrase"], "Eggs are pleasant.")
        XCTAssertEqual(examples[0].file, path)
        XCTAssertEqual(examples.map(\.line), [1, 3, 4])
        XCTAssertEqual(examples[1].prompt, [ChatMessage(role: "system", content: "Be brief."), user("Hi!"),
                                            assistant("Hello."), user("What is 2+2?")])
        XCTAssertEqual(examples[2].prompt, [user("Name a prime.")])
        XCTAssertEqual(examples[2].chosen, "7")
        XCTAssertEqual(examples[2].rejected, "9")
    }

    func testHHTranscripts() throws {
        let examples = try loadExamples(path: fixturePath("format-hh.jsonl"))
        XCTAssertEqual(examples[0].prompt, [user("What is the capital of France?")])
        XCTAssertEqual(examples[0].chosen, "Paris.")
        XCTAssertEqual(examples[0].rejected, "Lyon, I think.")
        XCTAssertEqual(examples[1].prompt, [user("Hi"), assistant("Hello! How can I help?"), user("Tell me a joke.")])
        XCTAssertEqual(examples[1].chosen, "Why did the chicken cross the road?")
        XCTAssertEqual(examples[1].rejected, "No.")
    }

    func testChatMessagesAndChatPreferences() throws {
        let chat = try loadExamples(path: fixturePath("format-messages.jsonl"))
        XCTAssertEqual(chat[0].prompt, [user("Translate 'cat' to French.")])
        XCTAssertEqual(chat[0].chosen, "chat")
        XCTAssertEqual(chat[0].rejected, "chien")
        XCTAssertEqual(chat[1].prompt, [ChatMessage(role: "system", content: "You answer in one word."), user("Colour of the sky?")])
        XCTAssertNil(chat[1].rejected)
        let pairs = try loadExamples(path: fixturePath("format-chat-preference.jsonl"))
        XCTAssertEqual(pairs[0].prompt, [user("Is water wet?")])
        XCTAssertEqual(pairs[0].chosen, "It makes things wet.")
        XCTAssertEqual(pairs[0].rejected, "No.")
    }

    func testMixedFormatsInOneFile() throws {
        let examples = try loadExamples(path: fixturePath("mixed-formats.jsonl"))
        XCTAssertEqual(examples.map(\.prompt), [[user("A?")], [user("B?")], [user("C?")], [user("D?")]])
        XCTAssertEqual(examples.map(\.chosen), ["a", "b", "c", "d"])
        XCTAssertEqual(examples.map(\.rejected), [nil, nil, "not c", nil])
    }

    func testErrorsNameFileLineAndExpectation() {
        let mismatch = fixturePath("error-hh-mismatch.jsonl")
        assertProbesError(.promptMismatch(file: mismatch, line: 2, field: "rejected", reference: "chosen")) {
            try loadExamples(path: mismatch)
        }
        let empty = fixturePath("error-empty.jsonl")
        assertProbesError(.emptyFile(file: empty)) { try loadExamples(path: empty) }
        let missing = fixturePath("no-such-file.jsonl")
        assertProbesError(.unreadable(file: missing, reason: "no such file")) { try loadExamples(path: missing) }
        XCTAssertEqual(ProbesError.missingField(file: "p.jsonl", line: 4, field: "chosen").description,
                       "p.jsonl:4: missing field \"chosen\"")
    }

    /// A line that is only a number (the last line, so that nothing follows it in the file) is a clear
    /// "not an object" error, with or without a final newline; one whose exponent is cut off is invalid JSON.
    func testALineThatIsOnlyANumberIsRejectedClearly() {
        for text in ["{\"prompt\": \"p\", \"chosen\": \"a\"}\n12345", "{\"prompt\": \"p\", \"chosen\": \"a\"}\n12345\n", "-0.5e7"] {
            let line = text.hasPrefix("{") ? 2 : 1
            assertProbesError(.notAnObject(file: "n.jsonl", line: line, found: "a number")) {
                try parseExamples(text, file: "n.jsonl")
            }
        }
        XCTAssertThrowsError(try parseExamples("{\"prompt\": \"p\", \"chosen\": \"a\"}\n5e", file: "n.jsonl")) { error in
            guard case let .invalidJSON(file, line, _)? = error as? ProbesError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "n.jsonl")
            XCTAssertEqual(line, 2)
        }
    }

    func testHHEdgeCases() throws {
        // Other transcript fields are cut too and must share the prompt; plain text fields stay as they are.
        let ok = try parseExamples(#"{"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello.", "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away.", "#
                                   + #""paraphrased_rejected": "\n\nHuman: Hi?\n\nAssistant: Leave.", "non_response": "Rain."}"#, file: "hh.jsonl")
        XCTAssertEqual(ok[0].fields, ["chosen": "Hello.", "rejected": "Go away.", "paraphrased_rejected": "Leave.", "non_response": "Rain."])
        assertProbesError(.promptMismatch(file: "hh.jsonl", line: 1, field: "paraphrased_rejected", reference: "chosen")) {
            try parseExamples(#"{"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello.", "paraphrased_rejected": "\n\nHuman: Yo?\n\nAssistant: Leave."}"#,
                              file: "hh.jsonl")
        }
        // The prompt part must be a transcript ending with a Human turn.
        assertProbesError(.invalidMessages(file: "hh.jsonl", line: 1, field: "chosen",
                                           reason: "expected the transcript's prompt to end with a Human turn")) {
            try parseExamples(#"{"chosen": "\n\nHuman: a\n\nAssistant: b\n\nAssistant: c"}"#, file: "hh.jsonl")
        }
        XCTAssertThrowsError(try parseExamples(#"{"chosen": "\n\nHuman:no space\n\nAssistant: b"}"#, file: "hh.jsonl")) { error in
            guard case let .invalidMessages(file, line, field, reason)? = error as? ProbesError else { return XCTFail("\(error)") }
            XCTAssertEqual([file, field], ["hh.jsonl", "chosen"])
            XCTAssertEqual(line, 1)
            XCTAssertFalse(reason.isEmpty || reason.contains("\n"), reason)
        }
    }

    /// A category mapped to a field that a line lacks, or holds as a non-text value, is reported at build time.
    func testMappedFieldErrorsAtBuild() throws {
        let path = fixturePath("format-prompt.jsonl")
        let examples = try loadExamples(path: path)
        assertProbesError(.missingField(file: path, line: 3, field: "reject_paraphrase")) {
            try ProbeSet.build(examples: examples, categories: ["paraphrased_rejected": .field("reject_paraphrase")],
                               seed: 1, trainPrompts: [], tokenizer: WordTokenizer())
        }
        assertProbesError(.wrongType(file: path, line: 1, field: "id", expected: "a string or a list of messages", found: "a number")) {
            try ProbeSet.build(examples: examples, categories: ["x": .derive(.shuffledWords(field: "id"))],
                               seed: 1, trainPrompts: [], tokenizer: WordTokenizer())
        }
    }
}
