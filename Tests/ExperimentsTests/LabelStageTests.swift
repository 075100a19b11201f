import Base
import Foundation
import RunStore
import XCTest
@testable import Experiments

/// The whole pipeline in one spec on the tiny preset: SFT -> reward model -> a label stage (samples of the
/// SFT run scored by the reward-model run, or by a judge) -> DPO on the labelled pairs. Every stage is a run
/// in the same store; the label runs' pairs are files in their run folders.
final class LabelStageTests: XCTestCase {
    var dir: URL!
    static let judgeFixture = hfFixture("qwen2-tiny.gguf")

    override func setUpWithError() throws {
        dir = try temporaryFolder("labelstage", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
    }

    func spec(stages: String) -> String {
        """
        {
          name: "pipe",
          model: { preset: "tiny", seed: 0 },
          data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
          train: { steps: 2, batch_size: 2, lr: 3e-3, max_length: 160 },
          eval: { every: 2 },
          stages: \(stages),
        }
        """
    }

    static let pipeline = """
        [
          { name: "sft" },
          { name: "rm", init_from: { run: "sft" }, objective: { kind: "reward" }, train: { steps: 4 } },
          { name: "label", label: { policy: { run: "sft" }, scorer: { run: "rm" }, samples: 3, max_tokens: 8, seed: 2 } },
          { name: "judged", label: { policy: { run: "sft" }, scorer: { judge: "\(judgeFixture)" }, samples: 2, max_tokens: 6 } },
          { name: "dpo", init_from: { run: "sft" }, objective: { kind: "dpo" }, data: { train: { from: { stage: "label" } } } },
          { name: "dpo-judged", init_from: { run: "sft" }, objective: { kind: "dpo" }, data: { train: { from: { stage: "judged" } } } },
        ]
        """

    func load(_ text: String) throws -> Experiment {
        try text.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        return try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
    }

    func testTheWholePipelineRunsAsOneSpec() throws {
        let experiment = try load(spec(stages: Self.pipeline))
        XCTAssertEqual(experiment.runs.map(\.name), ["pipe/sft", "pipe/rm", "pipe/label", "pipe/judged", "pipe/dpo", "pipe/dpo-judged"])
        XCTAssertEqual(experiment.runs[2].config.label?.scorerRun, "pipe/rm")
        XCTAssertEqual(experiment.runs[4].config.data.train.from, "pipe/label")
        try RunExecutor.validateInputs(of: experiment)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
        let summary = try executor.runAll()
        XCTAssertEqual(summary.finished, experiment.runs.map(\.name), "failed: \(summary.failed), skipped: \(summary.skipped)")
        // the label run's pairs, with provenance naming the policy and scorer runs
        let labels = executor.labelsURL(runName: "pipe/label").path
        let lines = try String(contentsOfFile: labels, encoding: .utf8).split(separator: "\n")
        XCTAssertFalse(lines.isEmpty)
        XCTAssertTrue(lines.allSatisfy { $0.contains("policy=run:pipe/sft") && $0.contains("scorer=run:pipe/rm") }, "\(lines[0])")
        let label = try XCTUnwrap(store.run(name: "pipe/label"))
        let metrics = Dictionary(uniqueKeysWithValues: try store.query("SELECT name, value FROM train_metrics WHERE run_id = ?", [.integer(label.id)])
            .map { ($0[0].string!, $0[1].double!) })
        XCTAssertEqual(metrics["label/prompts"], 6)
        XCTAssertEqual(metrics["label/pairs"], Double(lines.count))
        XCTAssertEqual(metrics["label/pairs"]! + metrics["label/all_equal"]!, 6)
        // the judge's agreement with the probe set's human labels is stored
        let judged = try XCTUnwrap(store.run(name: "pipe/judged"))
        let agreement = try store.query("SELECT value FROM train_metrics WHERE run_id = ? AND name = 'label/judge_agreement'", [.integer(judged.id)])
        XCTAssertEqual(agreement.count, 1)
        // DPO trained on the labelled pairs: its recorded training input is the label run's file
        let dpo = try XCTUnwrap(store.run(name: "pipe/dpo"))
        XCTAssertEqual(try store.runInputs(runID: dpo.id)["train"]?.path, labels)
        XCTAssertEqual(try store.query("SELECT COUNT(*) FROM train_metrics WHERE run_id = ? AND name = 'loss'", [.integer(dpo.id)])[0][0].int, 2)
        // running again finds everything finished and samples nothing
        let again = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll()
        XCTAssertEqual(again.finished, [])
        XCTAssertEqual(try String(contentsOfFile: labels, encoding: .utf8).split(separator: "\n").count, lines.count)
    }

    /// An interrupted label run resumes where it stopped: the pairs file ends as an uninterrupted run's.
    func testAnInterruptedLabelRunResumesWithoutDuplicates() throws {
        let stages = """
            [ { name: "sft" }, { name: "rm", init_from: { run: "sft" }, objective: { kind: "reward" }, train: { steps: 2 } },
              { name: "label", label: { policy: { run: "sft" }, scorer: { run: "rm" }, samples: 2, max_tokens: 6 } } ]
            """
        // 20 prompts: more than one pass of 8
        let many = (0..<20).map { #"{"prompt": "Question \#($0)?", "chosen": "Answer \#($0).", "rejected": "No."}"# }.joined(separator: "\n") + "\n"
        try many.write(to: dir.appendingPathComponent("tiny-train.jsonl"), atomically: false, encoding: .utf8)
        let experiment = try load(spec(stages: stages))
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        _ = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll(only: "pipe/sft")
        _ = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll(only: "pipe/rm")
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
        var passes = 0
        executor.progress = { event in
            if case .labelled(let run, _, _, _) = event, run == "pipe/label" { passes += 1; return .stop }
            return .more
        }
        let stopped = try executor.runAll(only: "pipe/label")
        XCTAssertEqual(stopped.interrupted.map(\.0), ["pipe/label"], "\(stopped)")
        XCTAssertEqual(passes, 1)
        let labels = executor.labelsURL(runName: "pipe/label").path
        let partial = try String(contentsOfFile: labels, encoding: .utf8)
        let resumed = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll(only: "pipe/label")
        XCTAssertEqual(resumed.finished, ["pipe/label"])
        let full = try String(contentsOfFile: labels, encoding: .utf8)
        XCTAssertTrue(full.hasPrefix(partial))
        let numbers = full.split(separator: "\n").map { line -> Int in
            guard case .object(let o) = try! JSONValue.parseLine(line), case .number(let n)? = o["label_line"] else { return -1 }
            return Int(n)
        }
        XCTAssertEqual(numbers.count, Set(numbers).count, "no prompt twice")
    }

    func testBadLabelStagesAreRefusedWithTheKeyNamed() throws {
        let cases: [(String, String)] = [
            (#"[{ name: "sft" }, { name: "label", label: { policy: { run: "sft" } } }]"#, "label.scorer"),
            (#"[{ name: "sft" }, { name: "label", label: { scorer: { run: "sft" } } }]"#, "label.scorer.run"),
            (#"[{ name: "sft" }, { name: "dpo", objective: { kind: "dpo" }, data: { train: { from: { stage: "sft" } } } }]"#, "data.train.from.stage"),
            (#"[{ name: "label", label: { scorer: { judge: "j.gguf" }, samples: 1 } }]"#, "label.samples"),
            (#"[{ name: "dpo", data: { train: { from: "x" } } }]"#, "data.train.from"),
        ]
        for (stages, key) in cases {
            XCTAssertThrowsError(try load(spec(stages: stages)), stages) { error in
                XCTAssertTrue("\(error)".contains(key) && !"\(error)".contains("\n"), "\(stages): \(error)")
            }
        }
        // a judge question without its placeholders, and a missing judge: refused before anything runs
        try "Is {a} good?".write(to: dir.appendingPathComponent("q.txt"), atomically: false, encoding: .utf8)
        let bad = try load(spec(stages: #"[{ name: "label", label: { scorer: { judge: "\#(Self.judgeFixture)", template: "q.txt" } } }]"#))
        XCTAssertThrowsError(try RunExecutor.validateInputs(of: bad)) { XCTAssertTrue("\($0)".contains("{prompt}"), "\($0)") }
        let missing = try load(spec(stages: #"[{ name: "label", label: { scorer: { judge: "nope.gguf" } } }]"#))
        XCTAssertThrowsError(try RunExecutor.validateInputs(of: missing)) { XCTAssertTrue("\($0)".contains("nope.gguf"), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs.sqlite").path), "nothing written")
    }
}
