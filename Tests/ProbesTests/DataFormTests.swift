import Base
import Foundation
import Tokenizer
import XCTest
@testable import Probes

/// Issue 17 (first part): HH data read exactly as its authors meant it. Explicit-prompt HH (a `prompt`
/// transcript ending in "\n\nAssistant:", responses with one leading space), its variant (the prompt
/// stops before the final marker, responses start with "\n\nAssistant: "), implicit-prompt transcripts
/// split at the longest common prefix, and the `raw` template. Fixtures are ours.
final class DataFormTests: XCTestCase {
    /// The author's line as written: the prompt and each response field.
    func authorLines(_ name: String) throws -> [[String: String]] {
        try String(contentsOfFile: fixturePath(name), encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: String]
        }
    }

    func testExplicitPromptHHIsTheAuthorsTextByteForByte() throws {
        let examples = try loadExamples(path: fixturePath("format-hh-explicit.jsonl"))
        let author = try authorLines("format-hh-explicit.jsonl")
        XCTAssertEqual(examples[0].prompt, [user("How do I keep basil alive indoors?"), assistant("Give it sun. Anything else?"),
                                            user("How often should I water it?")])
        XCTAssertEqual(examples[0].chosen, "Water when the top of the soil feels dry, about twice a week.")
        // issue 32: a string without the leading space is read as written (and scored so, right after the prompt)
        XCTAssertEqual(examples[0].fields["source"], "our-garden-set")
        XCTAssertEqual(examples[0].unseparated, ["source"])
        XCTAssertEqual(ChatTemplate.hh.response("our-garden-set", after: examples[0].promptSource, separated: false), "our-garden-set")
        let tokenizer = ByteTokenizer()
        for (ex, line) in zip(examples, author) {
            for template in [ChatTemplate.hh, .raw] {
                let prompt = try XCTUnwrap(template.prompt(ex.promptSource))
                XCTAssertEqual(prompt, line["prompt"], "\(template)")
                for field in ["chosen", "rejected"] {
                    let response = template.response(ex.fields[field]!, after: ex.promptSource)
                    XCTAssertEqual(response, line[field], "\(template) \(field)")
                    XCTAssertEqual(prompt + response, line["prompt"]! + line[field]!)
                    // What the scoring convention tokenises: the author's prompt and response, separately.
                    XCTAssertEqual(tokenizer.encode(prompt) + tokenizer.encode(response),
                                   tokenizer.encode(line["prompt"]!) + tokenizer.encode(line[field]!))
                }
            }
            // ChatML gets the turns as messages, never the transcript inside one user message.
            let chatml = try XCTUnwrap(ChatTemplate.chatml.prompt(ex.promptSource))
            XCTAssertFalse(chatml.contains("Human:"), chatml)
        }
        // A response that holds "\n\nHuman:" is one response.
        XCTAssertEqual(examples[1].chosen, "Rain taps the window like a patient friend.\n\nHuman: Thanks!\n\nAssistant: You are welcome.")
    }

    func testThePromptWithoutItsFinalMarkerIsReadToo() throws {
        let ex = try loadExamples(path: fixturePath("format-hh-explicit-variant.jsonl"))[0]
        let author = try authorLines("format-hh-explicit-variant.jsonl")[0]
        XCTAssertEqual(ex.prompt.last, user("How often should I water it?"))
        XCTAssertEqual(ex.chosen, "Water when the top of the soil feels dry, about twice a week.")
        for template in [ChatTemplate.hh, .raw] {
            let text = template.prompt(ex.promptSource)! + template.response(ex.chosen!, after: ex.promptSource)
            XCTAssertEqual(text, author["prompt"]! + author["chosen"]!, "\(template)")
        }
    }

    func testImplicitTranscriptsSplitAtTheLongestCommonPrefix() throws {
        let ex = try loadExamples(path: fixturePath("format-hh-implicit-human-in-response.jsonl"))[0]
        let author = try authorLines("format-hh-implicit-human-in-response.jsonl")[0]
        XCTAssertEqual(ex.prompt, [user("Write one line about rain.")])
        XCTAssertEqual(ex.chosen, "Rain taps the window like a patient friend.\n\nHuman: Thanks!\n\nAssistant: You are welcome.")
        XCTAssertEqual(ex.rejected, "Rain is wet.")
        for template in [ChatTemplate.hh, .raw] {
            for field in ["chosen", "rejected"] {
                let text = template.prompt(ex.promptSource)! + template.response(ex.fields[field]!, after: ex.promptSource)
                XCTAssertEqual(text, author[field], "\(template) \(field)")
            }
        }
    }

    /// TRL's conversational form (assistant-only responses), UltraFeedback-style full message lists after a
    /// string prompt, and implicit-prompt message lists all read as the same example.
    func testConversationalFormsReadAsOneExample() throws {
        let examples = try loadExamples(path: fixturePath("format-trl-conversational.jsonl"))
        XCTAssertEqual(examples.count, 3)
        for ex in examples {
            XCTAssertEqual(ex.prompt, [user("What colour is a ripe banana?")])
            XCTAssertEqual(ex.chosen, "Yellow, with a few brown spots.")
            XCTAssertEqual(ex.rejected, "Blue.")
            XCTAssertEqual(ChatTemplate.chatml.prompt(ex.promptSource), ChatTemplate.chatml.prompt(examples[0].promptSource))
        }
    }

    func testAuditSaysWhichFormEachFileWasReadAs() throws {
        XCTAssertEqual(try audit(path: fixturePath("format-hh-explicit.jsonl"), tokenizer: ByteTokenizer()).forms, [.explicitHH: 2])
        XCTAssertEqual(try audit(path: fixturePath("format-trl-conversational.jsonl"), tokenizer: ByteTokenizer()).forms,
                       [.promptMessages: 1, .plainPrompt: 1, .implicitMessages: 1])
        let report = try audit(path: fixturePath("format-hh-implicit-human-in-response.jsonl"), tokenizer: ByteTokenizer())
        XCTAssertTrue(report.rendered.contains("read as: implicit-prompt HH transcripts 1"), report.rendered)
    }

    /// Unpaired (`completion`, `label`) and rated (`response`/`completion`, `rating`/`score`) lines, and a
    /// paired line split into two unpaired ones.
    func testUnpairedAndRatedLines() throws {
        let examples = try loadExamples(path: fixturePath("format-feedback.jsonl"))
        XCTAssertEqual(examples.map(\.form), [.unpaired, .unpaired, .rated, .rated])
        XCTAssertEqual(examples.map(\.label), [true, false, nil, nil])
        XCTAssertEqual(examples.map(\.rating), [nil, nil, 8.5, 3])
        XCTAssertEqual(examples.map(\.chosen), [nil, nil, nil, nil])
        XCTAssertEqual(examples[0].fields, ["completion": "Pebble."])
        XCTAssertEqual(examples[2].fields, ["response": "Smokey, after the colour of its fur."])
        XCTAssertEqual(examples[3].fields, ["completion": "Ash."], "explicit-prompt HH: the completion loses its one space")
        XCTAssertEqual(ChatTemplate.hh.prompt(examples[3].promptSource)! + ChatTemplate.hh.response("Ash.", after: examples[3].promptSource),
                       "\n\nHuman: Suggest a name for a grey cat.\n\nAssistant: Ash.")
        let paired = try loadExamples(path: fixturePath("format-prompt.jsonl"))[0]
        let split = paired.unpaired()
        XCTAssertEqual(split.map(\.fields), [["completion": paired.chosen!], ["completion": paired.rejected!]])
        XCTAssertEqual(split.map(\.label), [true, false])
        XCTAssertEqual(split.map(\.prompt), [paired.prompt, paired.prompt])
        for (line, expected) in [
            (#"{"prompt": "Hi", "completion": "Yo", "label": "yes"}"#,
             ProbesError.wrongType(file: "t.jsonl", line: 1, field: "label", expected: "true or false", found: "a string")),
            (#"{"completion": "Yo", "label": true}"#, ProbesError.missingField(file: "t.jsonl", line: 1, field: "prompt")),
            (#"{"prompt": "Hi", "response": "Yo", "rating": "high"}"#,
             ProbesError.wrongType(file: "t.jsonl", line: 1, field: "rating", expected: "a number", found: "a string")),
        ] {
            assertProbesError(expected) { try parseExamples(line + "\n", file: "t.jsonl") }
        }
    }

    func testRawTemplateScoresPlainPromptsAsGiven() throws {
        let ex = try loadExamples(path: fixturePath("format-prompt.jsonl"))[0]
        XCTAssertEqual(ChatTemplate.raw.prompt(ex.promptSource), "How do I boil an egg?")
        XCTAssertEqual(ChatTemplate.raw.response("Put it in.", after: ex.promptSource), "Put it in.")
        // A multi-turn prompt given only as messages has no text of its own.
        let chat = try loadExamples(path: fixturePath("format-prompt.jsonl"))[1]
        XCTAssertNil(ChatTemplate.raw.prompt(chat.promptSource))
    }

    func testPromptsThatCannotBeReadAreRefused() throws {
        let H = "\\n\\nHuman:", A = "\\n\\nAssistant:"
        let cases: [(String, ProbesError)] = [
            (#"{"prompt": "<|im_start|>user\nHi<|im_end|>", "chosen": "Hello"}"#,
             .invalidMessages(file: "t.jsonl", line: 1, field: "prompt",
                              reason: #"holds the ChatML marker <|im_start|> in a plain prompt; give the turns as a list of messages [{"role", "content"}]"#)),
            (#"{"prompt": "Question:\#(H) Hi\#(A)", "chosen": " Hello"}"#,
             .invalidMessages(file: "t.jsonl", line: 1, field: "prompt",
                              reason: #"holds the HH marker "\n\nHuman:" but does not start with "\n\nHuman:"; expected an HH transcript "\n\nHuman: ...\n\nAssistant:" or plain text"#)),
            (#"{"prompt": "\#(H) Hi", "chosen": "\#(A) Hello", "rejected": " Bye"}"#,
             .invalidMessages(file: "t.jsonl", line: 1, field: "rejected",
                              reason: #"expected the response to start with "\n\nAssistant: " (explicit-prompt HH whose prompt stops before the final marker)"#)),
            (#"{"prompt": "\#(H) Hi", "chosen": " Hello"}"#,
             .invalidMessages(file: "t.jsonl", line: 1, field: "prompt",
                              reason: #"an HH transcript prompt must end with "\n\nAssistant:" (or each response must start with "\n\nAssistant: ")"#)),
            (#"{"prompt": "\#(H)Hi\#(A)", "chosen": " Hello"}"#,
             .invalidMessages(file: "t.jsonl", line: 1, field: "prompt", reason: #"malformed HH transcript at character 8: expected a space after "Human:""#)),
        ]
        for (line, expected) in cases {
            assertProbesError(expected) { try parseExamples(line + "\n", file: "t.jsonl") }
        }
    }
}
