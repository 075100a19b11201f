import Base
import Foundation
import Tokenizer
import XCTest
@testable import Probes

/// Issue 32: every field of the field's own files read as its authors wrote it. One fixture (ours) per shape:
/// the learning-dynamics repository's helpful-base and UltraFeedback probe files (`formal_prob_*`, `prob_*_gen`,
/// `prob_*_selfr`), the DPO reference code's HH transcripts, TRL's standard, conversational, prompt-completion,
/// language-modelling and unpaired forms, and UltraFeedback-binarized's message lists. Each test states exactly
/// what is scored: the prompt and response strings under a template, and (where the authors concatenate token
/// ids of a separately tokenised prompt and response) the same ids as the authors' concatenation.
final class ConformanceTests: XCTestCase {
    private func path(_ name: String) -> String { fixturePath("conformance/" + name) }

    /// The fixture's lines as written: every key with its JSON value.
    private func authorLines(_ name: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path(name), encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    /// What is scored for `field` of `ex` under `template`: (prompt text, response text).
    private func scored(_ ex: PreferenceExample, _ field: String, _ template: ChatTemplate) throws -> (String, String) {
        let prompt = try XCTUnwrap(template.prompt(ex.promptSource), "\(template) cannot render line \(ex.line)")
        return (prompt, template.response(try ex.text(of: field), after: ex.promptSource, separated: ex.isSeparated(field)))
    }

    /// Every string key but the prompt is a response field, and every key of the line has a note.
    private func assertEveryFieldRead(_ name: String, except notResponses: Set<String> = ["prompt"],
                                      file: StaticString = #filePath, line: UInt = #line) throws {
        let examples = try loadExamples(path: path(name))
        for (ex, author) in zip(examples, try authorLines(name)) {
            let strings = Set(author.filter { $0.value is String }.map(\.key)).subtracting(notResponses)
            XCTAssertTrue(strings.isSubset(of: Set(ex.fields.keys)), "\(name):\(ex.line): not read: \(strings.subtracting(ex.fields.keys).sorted())", file: file, line: line)
            XCTAssertEqual(Set(ex.notes.keys), Set(author.keys), "\(name):\(ex.line): every key has a note", file: file, line: line)
            XCTAssertTrue(ex.otherFields.isEmpty || ex.otherFields.keys.allSatisfy { !(author[$0] is String) }, file: file, line: line)
        }
    }

    func testLearningDynamicsHelpfulBaseProbeFileScoresAll13FieldsAsItsAuthorsDid() throws {
        let name = "ld-hh-formal-prob.jsonl"
        try assertEveryFieldRead(name)
        let examples = try loadExamples(path: path(name))
        XCTAssertEqual(examples.map(\.form), [.explicitHH, .explicitHH])
        XCTAssertEqual(examples[0].fields.count, 13)
        XCTAssertEqual(examples[0].unseparated, ["chosen_selfr", "chosen_gptsemantic", "chosen_gptformat", "reject_gptsemantic",
                                                 "reject_gptformat", "irr_hum", "random_permute", "random_nonhum"])
        // The second line's empty chosen_initial has no space either; its shuffled text happens to start with one.
        XCTAssertTrue(examples[1].unseparated.contains("chosen_initial"))
        XCTAssertFalse(examples[1].unseparated.contains("random_permute"))
        let tokenizer = ByteTokenizer()
        for (ex, author) in zip(examples, try authorLines(name)) {
            let prompt = author["prompt"] as! String
            for field in ex.fields.keys.sorted() {
                let written = author[field] as! String
                // hh and raw both score the author's prompt + response, byte for byte and id for id (the DPO reference
                // code's fork tokenises the two separately and concatenates the ids, as we do)
                for template in [ChatTemplate.hh, .raw] {
                    let (p, r) = try scored(ex, field, template)
                    XCTAssertEqual(p, prompt, "\(template) \(field)")
                    XCTAssertEqual(r, written, "\(template) \(field)")
                    XCTAssertEqual(tokenizer.encode(p) + tokenizer.encode(r), tokenizer.encode(prompt) + tokenizer.encode(written))
                }
                // ChatML: the turns as messages, the response on its own line after the marker, space or not
                let (_, r) = try scored(ex, field, .chatml)
                XCTAssertEqual(r, (written.hasPrefix(" ") ? String(written.dropFirst()) : written) + "<|im_end|>", field)
            }
        }
        XCTAssertEqual(examples[0].fields["irr_hum"], "The lighthouse keeper counted the ships as the fog rolled in from the bay.")
        XCTAssertEqual(examples[0].notes["irr_hum"], "response, written without the leading space: scored as written, right after the prompt")
        XCTAssertEqual(examples[0].notes["chosen"], #"response; its leading " " removed (put back when it is scored)"#)
    }

    func testAuditCountsTheLeadingSpacePerField() throws {
        let report = try audit(path: path("ld-hh-formal-prob.jsonl"), tokenizer: ByteTokenizer())
        XCTAssertEqual(report.separators.count, 13)
        XCTAssertEqual(report.separators["chosen"].map { [$0.with, $0.without] }, [2, 0])
        XCTAssertEqual(report.separators["irr_hum"].map { [$0.with, $0.without] }, [0, 2])
        XCTAssertEqual(report.separators["chosen_initial"].map { [$0.with, $0.without] }, [1, 1])
        XCTAssertEqual(report.separators["random_permute"].map { [$0.with, $0.without] }, [1, 1])
        XCTAssertTrue(report.rendered.contains("irr_hum             0 with, 2 without"), report.rendered)
        XCTAssertEqual(report.categories.count, 13)
    }

    func testAProbeSetKeepsTheLeadingSpaceAsWrittenThroughItsFile() throws {
        let set = try ProbeSet.load(path: path("ld-hh-formal-prob.jsonl"))
        let irr = try XCTUnwrap(set.probes[0].response("irr_hum"))
        XCTAssertFalse(irr.separated)
        XCTAssertTrue(try XCTUnwrap(set.probes[0].response("chosen")).separated)
        let out = try temporaryDirectory(self).appendingPathComponent("set.jsonl").path
        try set.writeJSONL(path: out)
        let back = try loadExamples(path: out)[0]
        let author = try authorLines("ld-hh-formal-prob.jsonl")[0]
        for field in ["chosen", "irr_hum", "reject_gptformat", "irr_train"] {
            XCTAssertEqual(try scored(back, field, .raw).1, author[field] as? String, field)
        }
    }

    func testLearningDynamicsGenAndSelfRephraseFiles() throws {
        for name in ["ld-hh-prob-gen.jsonl", "ld-hh-prob-selfr.jsonl", "ld-uf-prob-gen.jsonl", "ld-uf-prob-selfr.jsonl", "ld-uf-formal-prob.jsonl"] {
            try assertEveryFieldRead(name)
            for (ex, author) in zip(try loadExamples(path: path(name)), try authorLines(name)) {
                for field in ex.fields.keys {
                    let (p, r) = try scored(ex, field, .raw)
                    XCTAssertEqual(p + r, (author["prompt"] as! String) + (author[field] as! String), "\(name) \(field)")
                }
            }
        }
        // The self-rephrase request is a plain prompt (no HH markers); its response is one space, scored as it is.
        let selfr = try loadExamples(path: path("ld-hh-prob-selfr.jsonl"))[0]
        XCTAssertEqual(selfr.form, .plainPrompt)
        XCTAssertEqual(selfr.chosen, " ")
        // UltraFeedback's "Human: ...\nAssistant:" has no "\n\n": a plain prompt, scored as written under raw, and
        // as one user turn (the text as it is) under chatml.
        let uf = try loadExamples(path: path("ld-uf-formal-prob.jsonl"))[0]
        XCTAssertEqual(uf.form, .plainPrompt)
        XCTAssertEqual(uf.fields.count, 13)
        XCTAssertEqual(uf.prompt, [ChatMessage(role: "user", content: "Human: how do I keep cut flowers fresh longer\nAssistant:")])
    }

    func testDPOReferenceCodeHHTranscripts() throws {
        try assertEveryFieldRead("dpo-hh.jsonl", except: [])
        let ex = try loadExamples(path: path("dpo-hh.jsonl"))[0]
        let author = try authorLines("dpo-hh.jsonl")[0]
        XCTAssertEqual(ex.form, .implicitHH)
        for field in ["chosen", "rejected"] {
            let (p, r) = try scored(ex, field, .hh)
            XCTAssertEqual(p + r, author[field] as? String)
            XCTAssertEqual(p, "\n\nHuman: How do I stop my bread from going stale so fast?\n\nAssistant:")
        }
    }

    func testTRLStandardAndConversationalForms() throws {
        let standard = try loadExamples(path: path("trl-standard-preference.jsonl"))[0]
        XCTAssertEqual(standard.form, .plainPrompt)
        XCTAssertEqual(try scored(standard, "chosen", .raw).0 + scored(standard, "chosen", .raw).1, "The sky is blue.")
        XCTAssertEqual(try scored(standard, "chosen", .chatml).1, " blue.<|im_end|>")

        let conversational = try loadExamples(path: path("trl-conversational-preference.jsonl"))[0]
        XCTAssertEqual(conversational.form, .promptMessages)
        XCTAssertEqual(try scored(conversational, "rejected", .chatml).1, "It is green.<|im_end|>")
        XCTAssertTrue(try scored(conversational, "chosen", .chatml).0.hasSuffix("<|im_start|>user\nWhat colour is the sky?<|im_end|>\n<|im_start|>assistant\n"))

        let chat = try loadExamples(path: path("trl-conversational-language-modeling.jsonl"))[0]
        XCTAssertEqual(chat.form, .chat)
        XCTAssertEqual(chat.chosen, "It is blue.")
        XCTAssertNotNil(chat.notes["messages"])
        for name in ["trl-standard-preference.jsonl", "trl-conversational-preference.jsonl"] { try assertEveryFieldRead(name) }
    }

    func testTRLPromptCompletionAndLanguageModellingLines() throws {
        let pc = try loadExamples(path: path("trl-prompt-completion.jsonl"))[0]
        XCTAssertEqual(pc.form, .promptCompletion)
        XCTAssertNil(pc.chosen)
        XCTAssertEqual(try scored(pc, "completion", .raw).0 + scored(pc, "completion", .raw).1, "The sky is blue.")
        let cpc = try loadExamples(path: path("trl-conversational-prompt-completion.jsonl"))[0]
        XCTAssertEqual(cpc.form, .promptCompletion)
        XCTAssertEqual(cpc.fields["completion"], "It is blue.")

        let lm = try loadExamples(path: path("trl-language-modeling.jsonl"))[0]
        XCTAssertEqual(lm.form, .text)
        XCTAssertEqual(lm.fields, ["text": "The sky is blue."])
        XCTAssertEqual(lm.prompt, [])
        XCTAssertEqual(lm.notes["text"], "the whole text (language modelling: no prompt)")

        let unpaired = try loadExamples(path: path("trl-unpaired.jsonl"))
        XCTAssertEqual(unpaired.map(\.form), [.unpaired, .unpaired])
        XCTAssertEqual(unpaired.map(\.label), [true, false])
        XCTAssertEqual(unpaired[0].notes["label"], "feedback: desirable or not")
        for name in ["trl-prompt-completion.jsonl", "trl-conversational-prompt-completion.jsonl", "trl-unpaired.jsonl"] { try assertEveryFieldRead(name) }
        try assertEveryFieldRead("trl-language-modeling.jsonl", except: [])
    }

    func testUltraFeedbackBinarizedMessageLists() throws {
        let ex = try loadExamples(path: path("ultrafeedback-binarized.jsonl"))[0]
        XCTAssertEqual(ex.form, .plainPrompt)
        XCTAssertEqual(ex.chosen, "A banana.")
        XCTAssertEqual(ex.rejected, "A cucumber.")
        XCTAssertEqual(ex.fields["messages"], "A banana.", "the message list is the chosen conversation again")
        XCTAssertEqual(ex.numbers, ["score_chosen": 9, "score_rejected": 2.5])
        XCTAssertEqual(ex.notes["score_chosen"], "not a response: a number")
        XCTAssertEqual(try scored(ex, "chosen", .chatml).1, "A banana.<|im_end|>")
        try assertEveryFieldRead("ultrafeedback-binarized.jsonl")
    }
}
