import Base
import Foundation
import GGUF
import Model
import Probes
import Tokenizer
import XCTest
@testable import Experiments

/// `alignscope label`'s machinery on the qwen2 fixture (Tests/HFModelsTests/Fixtures/qwen2-tiny.gguf, random
/// weights) as policy, reward model and judge: determinism, provenance, ties, resume, and the judge's
/// two-order averaging.
final class LabellingTests: XCTestCase {
    var dir: URL!
    static let fixture = hfFixture("qwen2-tiny.gguf")

    override func setUpWithError() throws {
        dir = try temporaryFolder("label")
    }

    func examples() throws -> [PreferenceExample] {
        try loadExamples(path: Bundle.module.url(forResource: "Fixtures/tiny-train.jsonl", withExtension: nil)!.path)
    }

    /// The inputs a labeller records for the fixture's data (`Labeller.inputs`).
    func inputs(_ l: Labeller) throws -> [String: JSONValue] {
        try l.inputs(data: Bundle.module.url(forResource: "Fixtures/tiny-train.jsonl", withExtension: nil)!.path, prompts: try examples().count)
    }

    func labeller(head: Float? = nil, promptsPerPass: Int = 2) throws -> Labeller {
        let policy = try PretrainedModel.load(path: Self.fixture, maxTokens: 16)
        let rm = policy.model.withRewardHead(seed: 4)
        if let head { rm.parameter("reward_head.weight").update(repeating: head) }
        var settings = Labeller.Settings(samples: 3, temperature: 1, topP: 0.95, maxTokens: 12, seed: 7, template: .chatml)
        settings.promptsPerPass = promptsPerPass
        return Labeller(policy: policy.model, tokenizer: policy.tokenizer, policyName: "qwen2-tiny.gguf",
                        scorer: .rewardModel(model: rm, tokenizer: policy.tokenizer, name: "rm-test"), settings: settings)
    }

    func testLabellingIsDeterministicWithProvenanceAndResumesWithoutDuplicates() throws {
        let data = try examples()
        let whole = dir.appendingPathComponent("whole.jsonl").path
        let summary = try labeller().label(data, out: whole, inputs: try inputs(try labeller()), wayOn: "")
        XCTAssertEqual(summary.written + summary.allEqual, data.count)
        XCTAssertGreaterThan(summary.written, 3)
        let text = try String(contentsOfFile: whole, encoding: .utf8)
        // the same settings again: the same bytes
        let again = dir.appendingPathComponent("again.jsonl").path
        _ = try labeller().label(data, out: again, inputs: try inputs(try labeller()), wayOn: "")
        XCTAssertEqual(try String(contentsOfFile: again, encoding: .utf8), text)
        // provenance, samples with scores, best as chosen and worst as rejected; reads back as training data
        for line in text.split(separator: "\n") {
            guard case let .object(o) = try JSONValue.parseLine(line), case let .array(samples)? = o["samples"],
                  case let .object(origins)? = o["origins"], case let .string(origin)? = origins["chosen"] else { return XCTFail("\(line)") }
            XCTAssertEqual(samples.count, 3)
            for needle in ["policy=qwen2-tiny.gguf", "scorer=rm-test", "temperature=1.0", "top_p=0.95", "max_tokens=12", "seed=7", "sample="] {
                XCTAssertTrue(origin.contains(needle), "\(origin) lacks \(needle)")
            }
            let scored = samples.compactMap { s -> (String, Double)? in
                guard case let .object(x) = s, case let .string(t)? = x["text"], case let .number(v)? = x["score"] else { return nil }
                return (t, v)
            }
            XCTAssertEqual(o["chosen"], .string(scored.max { $0.1 < $1.1 }!.0))
            XCTAssertEqual(o["rejected"], .string(scored.min { $0.1 < $1.1 }!.0))
        }
        let back = try loadExamples(path: whole)
        XCTAssertEqual(back.count, summary.written)
        XCTAssertTrue(back.allSatisfy { $0.chosen != nil && $0.rejected != nil })

        // stopped after the first pass, then a crash mid-line: the next call completes the file as one call would
        let resumed = dir.appendingPathComponent("resumed.jsonl").path
        let first = try labeller().label(data, out: resumed, inputs: try inputs(try labeller()), wayOn: "") { _ in .stop }
        XCTAssertLessThan(first.written + first.allEqual, data.count)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: resumed))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"prompt":"half a li"#.utf8))
        try handle.close()
        let rest = try labeller().label(data, out: resumed, inputs: try inputs(try labeller()), wayOn: "")
        XCTAssertEqual(rest.alreadyDone, first.written + first.allEqual)
        XCTAssertEqual(try String(contentsOfFile: resumed, encoding: .utf8), text)
    }

    func testPromptsWhoseSamplesAllScoreTheSameAreReportedAndSkipped() throws {
        let data = try examples()
        let out = dir.appendingPathComponent("ties.jsonl").path
        let summary = try labeller(head: 0).label(data, out: out, inputs: try inputs(try labeller(head: 0)), wayOn: "")  // a zero head: every reward is 0
        XCTAssertEqual(summary.written, 0)
        XCTAssertEqual(summary.allEqual, data.count)
        XCTAssertEqual(summary.tiedLines, data.map(\.line))
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "")
        // skipped prompts are remembered: nothing is sampled again
        let again = try labeller(head: 0).label(data, out: out, inputs: try inputs(try labeller(head: 0)), wayOn: "")
        XCTAssertEqual(again.alreadyDone, data.count)
        XCTAssertEqual(again.written + again.allEqual, 0)
    }

    /// Both orders asked: a judge that favours whichever response it sees first by 5 nats, and prefers b by
    /// 0.5, says "A" in both orders; averaged, b wins by 0.5.
    func testTheJudgesTwoOrdersCancelPositionBias() {
        let bias = 5.0, d = -0.5
        let ab = bias + d, ba = bias - d
        XCTAssertGreaterThan(ab, 0)
        XCTAssertGreaterThan(ba, 0, "each order alone picks the first response")
        XCTAssertEqual(Judge.preference(abMargin: ab, baMargin: ba), d, accuracy: 1e-12)
    }

    /// A real (random-weight) judge: preferences are antisymmetric bit for bit, a sample's score is its mean
    /// preference over the others, and a template without its placeholders is refused in one line.
    func testARealJudgeIsAntisymmetric() throws {
        let loaded = try PretrainedModel.load(path: Self.fixture, maxTokens: 16)
        let judge = try Judge(model: loaded.model, tokenizer: loaded.tokenizer, chat: .chatml)
        let a = "Boil it for nine minutes.", b = "Eggs are nice."
        let pref = judge.preferences(prompt: "How do I boil an egg?", [(a, b), (b, a)])
        XCTAssertEqual(pref[0], -pref[1])
        XCTAssertNotEqual(pref[0], 0)
        let ex = try examples()[0]
        let scores = judge.scores(prompt: ex, responses: [a, b, "Cook it."])
        XCTAssertEqual(scores.reduce(0, +), 0, accuracy: 1e-9)
        let agreement = try XCTUnwrap(judge.agreement(try examples()))
        XCTAssertEqual(agreement.pairs, 6)
        XCTAssertTrue((0...1).contains(agreement.agreement))
        XCTAssertThrowsError(try Judge(model: loaded.model, tokenizer: loaded.tokenizer, template: "Is {a} better than {b}?", chat: .chatml)) { error in
            XCTAssertTrue("\(error)".contains("{prompt}") && !"\(error)".contains("\n"), "\(error)")
        }
    }
}
