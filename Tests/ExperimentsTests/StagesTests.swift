import Foundation
import RunStore
import Tokenizer
import Training
import XCTest
@testable import Experiments

/// Stages and preference objectives end to end on the tiny preset: SFT, then DPO / cDPO / IPO /
/// hinge from its weights, and Chain of Hindsight.
final class StagesTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("alignscope-stages-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["tiny-train.jsonl", "tiny-probes.jsonl", "tiny-stages.json5"] {
            let src = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!
            try FileManager.default.copyItem(at: src, to: dir.appendingPathComponent(name))
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func testPlanNamesStagesAndResolvesInitFrom() throws {
        let e = try Experiment.load(path: dir.appendingPathComponent("tiny-stages.json5").path)
        XCTAssertEqual(e.runs.map(\.name), [
            "tiny-stages/sft", "tiny-stages/dpo/label_smoothing=0", "tiny-stages/dpo/label_smoothing=0.2",
            "tiny-stages/ipo", "tiny-stages/hinge", "tiny-stages/coh",
        ])
        XCTAssertEqual(e.runs[1].config.initFrom, .init(run: "tiny-stages/sft", step: nil))
        XCTAssertEqual(e.runs[3].config.initFrom, .init(run: "tiny-stages/sft", step: 2))
        XCTAssertEqual(e.runs[2].config.objective, .dpo(beta: 0.1, labelSmoothing: 0.2))
        XCTAssertNil(e.runs[5].config.initFrom)
    }

    func testStageErrors() {
        func parse(_ stages: String) throws {
            _ = try Experiment.parse(text: """
                { name: "x", model: { preset: "tiny" }, data: { train: { path: "a" }, probes: { path: "b" } }, train: { steps: 2 },
                  stages: \(stages) }
                """, file: "s.json5", baseDirectory: dir)
        }
        let cases: [(String, String)] = [
            ("[{ name: \"a\", init_from: { run: \"b\" } }, { name: \"b\" }]",
             "s.json5: stage a: init_from.run: expected the name of a run planned before this one (runs: ), found \"b\""),
            ("[{ name: \"a\" }, { name: \"a\" }]", "s.json5: stages[1].name: expected a name used by no other stage, found \"a\""),
            ("[{ name: \"a\", objective: { kind: \"dpo\", tau: 1 } }]", "s.json5: objective.tau: unknown key (allowed here: kind, beta, label_smoothing, loss_type, loss_weights, f_divergence_type, f_alpha_divergence_coef, discopop_tau, dpop_lambda, ld_alpha, use_weighting, sync_ref_model, ref_model_mixup_alpha, ref_model_sync_steps, reference)"),
            ("[{ name: \"a\", objective: { kind: \"dpo\", beta: 0 } }]", "s.json5: stages[0]: objective.beta: expected a number > 0, found 0"),
            ("[{ nme: \"a\" }]", "s.json5: stages[0].name: expected a stage name of 1-64 bytes without '/', '=', spaces or control characters, not starting with '.', found nothing"),
            ("[]", "s.json5: stages: expected a non-empty list of stage objects, found an array"),
        ]
        for (stages, expected) in cases {
            XCTAssertThrowsError(try parse(stages), expected) { XCTAssertEqual("\($0)", expected) }
        }
    }

    /// A stage's sweep of a key the experiment also sweeps takes the stage's values (it was dropped).
    func testAStageSweepOverridesTheExperimentsSweepOfTheSameKey() throws {
        let e = try Experiment.parse(text: """
            { name: "x", model: { preset: "tiny" }, data: { train: { path: "a" }, probes: { path: "b" } }, train: { steps: 4 },
              sweep: { seed: [1, 2], "train.lr": [1e-5] },
              stages: [{ name: "a" }, { name: "b", sweep: { seed: [7] } }] }
            """, file: "s.json5", baseDirectory: dir)
        XCTAssertEqual(e.runs.map(\.name), ["x/a/lr=1e-05,seed=1", "x/a/lr=1e-05,seed=2", "x/b/lr=1e-05,seed=7"])
        XCTAssertEqual(e.runs.map(\.config.seed), [1, 2, 7])
    }

    func testInitFromAStepTheParentNeverReachesIsRefused() {
        XCTAssertThrowsError(try Experiment.parse(text: """
            { name: "x", model: { preset: "tiny" }, data: { train: { path: "a" }, probes: { path: "b" } }, train: { steps: 4 },
              stages: [{ name: "a" }, { name: "b", init_from: { run: "a", step: 5 } }] }
            """, file: "s.json5", baseDirectory: dir)) {
            XCTAssertEqual("\($0)", "s.json5: stage b: init_from.step: expected a step of run x/a (it trains 4 steps), found 5")
        }
    }

    func testStagesRunInOrderAndPreferenceRunsStartFromSFTWeights() throws {
        let experiment = try Experiment.load(path: dir.appendingPathComponent("tiny-stages.json5").path)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let ex = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
        let summary = try ex.runAll()
        XCTAssertEqual(summary.finished.count, 6, "failed: \(summary.failed), skipped: \(summary.skipped)")

        func logprobs(_ run: String, step: Int) throws -> [Int64: Double] {
            var out: [Int64: Double] = [:]
            for row in try store.query("""
                SELECT l.response_id, l.logprob FROM logprobs l JOIN runs ON runs.id = l.run_id JOIN responses r ON r.id = l.response_id
                WHERE runs.name = ? AND l.step = ? AND r.category != 'greedy'
                """, [.text(run), .integer(Int64(step))]) {
                out[row[0].int64!] = row[1].double!
            }
            return out
        }
        // The DPO run's step 0 is the SFT run's final model; IPO's is SFT's step-2 snapshot.
        let sftFinal = try logprobs("tiny-stages/sft", step: 4)
        XCTAssertFalse(sftFinal.isEmpty)
        XCTAssertEqual(try logprobs("tiny-stages/dpo/label_smoothing=0", step: 0), sftFinal)
        XCTAssertEqual(try logprobs("tiny-stages/ipo", step: 0), try logprobs("tiny-stages/sft", step: 2))
        XCTAssertNotEqual(try logprobs("tiny-stages/coh", step: 0), try logprobs("tiny-stages/sft", step: 0),
                          "CoH scores under the helpful prefix")

        // Preference runs record the TRL-named diagnostics every step.
        for run in ["tiny-stages/dpo/label_smoothing=0", "tiny-stages/dpo/label_smoothing=0.2", "tiny-stages/ipo", "tiny-stages/hinge"] {
            let names = Set(try store.query("""
                SELECT DISTINCT m.name FROM train_metrics m JOIN runs ON runs.id = m.run_id WHERE runs.name = ?
                """, [.text(run)]).map { $0[0].string! })
            for metric in ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracy", "logps/chosen", "logps/rejected"] {
                XCTAssertTrue(names.contains(metric), "\(run) lacks \(metric)")
            }
        }
        // DPO raises the margin over its reference (the SFT weights): the last step's margin is positive.
        let margin = try store.query("""
            SELECT value FROM train_metrics m JOIN runs ON runs.id = m.run_id
            WHERE runs.name = 'tiny-stages/dpo/label_smoothing=0' AND m.name = 'rewards/margins' ORDER BY step DESC LIMIT 1
            """)[0][0].double!
        XCTAssertGreaterThan(margin, 0)
        // The greedy category is decoded at every evaluation and recorded with its step.
        let greedy = try store.query("SELECT count(*) FROM responses WHERE category = 'greedy' AND origin LIKE 'greedy:max_tokens=8:step=%'")[0][0].int!
        XCTAssertGreaterThan(greedy, 0)
    }
}
