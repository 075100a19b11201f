import Foundation
import XCTest
@testable import Experiments

/// Issue 35: a seed-swept pipeline. `init_from: { stage: NAME }` (and a stage named by `data.train.from`,
/// `label.policy`, `label.scorer`, `objective.reward`) picks the earlier stage's run with the same swept values.
final class SeedPairingTests: XCTestCase {
    func plan(_ stages: String, sweep: String = "sweep: { seed: [1, 2] },") throws -> Experiment {
        let dir = try temporaryFolder("pairing", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        let text = """
            { name: "p", model: { preset: "tiny", seed: 0 }, \(sweep)
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 2, batch_size: 2, max_length: 160 }, stages: \(stages) }
            """
        try text.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        return try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
    }

    func testEachSeedStartsFromTheSameSeedOfTheEarlierStage() throws {
        let experiment = try plan("""
            [ { name: "sft" },
              { name: "rm", init_from: { stage: "sft" }, objective: { kind: "reward" } },
              { name: "label", label: { policy: { run: "sft" }, scorer: { run: "rm" }, samples: 2, max_tokens: 4 } },
              { name: "dpo", init_from: { stage: "sft" }, objective: { kind: "dpo" }, data: { train: { from: { stage: "label" } } } },
              { name: "dpo-mid", init_from: { stage: "sft", step: 1 }, objective: { kind: "dpo" }, sweep: { "objective.beta": [0.1, 0.5] } },
              { name: "spin", init_from: { stage: "sft" }, objective: { kind: "spin", iterations: 2, max_tokens: 4 } },
              { name: "after-spin", init_from: { stage: "spin" } } ]
            """)
        var from: [String: String] = [:]
        for run in experiment.runs { from[run.name] = run.config.initFrom.map { "\($0.run)@\($0.step.map(String.init) ?? "final")" } }
        for k in [1, 2] {
            XCTAssertEqual(from["p/rm/seed=\(k)"], "p/sft/seed=\(k)@final")
            XCTAssertEqual(from["p/dpo/seed=\(k)"], "p/sft/seed=\(k)@final")
            XCTAssertEqual(from["p/dpo-mid/seed=\(k),beta=0.1"], "p/sft/seed=\(k)@1")
            XCTAssertEqual(from["p/dpo-mid/seed=\(k),beta=0.5"], "p/sft/seed=\(k)@1")
            XCTAssertEqual(from["p/spin/seed=\(k)/iter=1"], "p/sft/seed=\(k)@final")
            XCTAssertEqual(from["p/spin/seed=\(k)/iter=2"], "p/spin/seed=\(k)/iter=1@final")
            XCTAssertEqual(from["p/after-spin/seed=\(k)"], "p/spin/seed=\(k)/iter=2@final", "a SPIN stage's run is its last iteration")
            let label = try XCTUnwrap(experiment.runs.first { $0.name == "p/label/seed=\(k)" }).config.label
            XCTAssertEqual(label?.policy, "p/sft/seed=\(k)")
            XCTAssertEqual(label?.scorerRun, "p/rm/seed=\(k)")
            XCTAssertEqual(try XCTUnwrap(experiment.runs.first { $0.name == "p/dpo/seed=\(k)" }).config.data.train.from, "p/label/seed=\(k)")
        }
        // the identity holds the resolved run name, as if it had been written: `stage` leaves no trace
        let byStage = try plan(#"[ { name: "sft" }, { name: "dpo", init_from: { stage: "sft" }, objective: { kind: "dpo" } } ]"#)
        let byName = try plan(#"[ { name: "sft" }, { name: "dpo", init_from: { run: "p/sft/seed=2" }, objective: { kind: "dpo" } } ]"#)
        let a = try XCTUnwrap(byStage.runs.first { $0.name == "p/dpo/seed=2" }), b = try XCTUnwrap(byName.runs.first { $0.name == "p/dpo/seed=2" })
        XCTAssertEqual(a.configSHA256, b.configSHA256)
        XCTAssertFalse(a.configJSON.contains("\"stage\""), a.configJSON)
        XCTAssertNotEqual(byStage.runs.first { $0.name == "p/dpo/seed=1" }?.configSHA256, byName.runs.first { $0.name == "p/dpo/seed=1" }?.configSHA256)
    }

    func testAStageThatCannotBePairedIsOneLineNamingTheKey() throws {
        // sft sweeps seeds the dpo stage does not: two sft runs agree with the dpo run
        XCTAssertThrowsError(try plan("""
            [ { name: "sft", sweep: { seed: [1, 2] } }, { name: "dpo", init_from: { stage: "sft" }, objective: { kind: "dpo" } } ]
            """, sweep: "")) { error in
            XCTAssertTrue("\(error)".contains("stage dpo: init_from.stage: expected a stage planned before this one with exactly one run whose swept values match this run's"), "\(error)")
            XCTAssertTrue("\(error)".contains("p/sft/seed=1, p/sft/seed=2"), "\(error)")
        }
        XCTAssertThrowsError(try plan("""
            [ { name: "dpo", init_from: { stage: "nope" }, objective: { kind: "dpo" } } ]
            """)) { error in XCTAssertTrue("\(error)".contains("init_from.stage"), "\(error)") }
        XCTAssertThrowsError(try plan("""
            [ { name: "sft" }, { name: "dpo", init_from: { stage: "sft", run: "p/sft/seed=1" }, objective: { kind: "dpo" } } ]
            """)) { error in XCTAssertTrue("\(error)".contains("either run"), "\(error)") }
        // the message the issue quotes now points at the way
        XCTAssertThrowsError(try plan("""
            [ { name: "sft" }, { name: "dpo", init_from: { run: "sft" }, objective: { kind: "dpo" } } ]
            """)) { error in XCTAssertTrue("\(error)".contains("init_from: { stage: \"sft\" }"), "\(error)") }
    }
}
