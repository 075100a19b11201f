import Foundation
import RunStore
import XCTest
@testable import Experiments

/// Issue 36: each new preference loss trains a tiny-preset model on its pairs and learns them (the margin it
/// optimises grows), recording TRL's metrics.
final class LossFamilyTests: XCTestCase {
    /// Runs one objective for `steps` steps on the tiny fixtures; returns its `rewards/margins` per step.
    func margins(objective: String, steps: Int = 12) throws -> [Int: Double] {
        let dir = try temporaryFolder("loss-family", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        let text = """
            { name: "lf", model: { preset: "tiny", seed: 0 }, template: "hh", objective: \(objective),
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: \(steps), batch_size: 2, lr: 3e-3, max_length: 160 }, eval: { every: \(steps) } }
            """
        try text.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        try RunExecutor.validateInputs(of: experiment)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let summary = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll()
        XCTAssertEqual(summary.finished, ["lf"], "\(summary.failed)")
        var out: [Int: Double] = [:]
        for row in try store.query("SELECT step, value FROM train_metrics WHERE name = 'rewards/margins'") { out[row[0].int!] = row[1].double! }
        let names = Set(try store.query("SELECT DISTINCT name FROM train_metrics").map { $0[0].string! })
        for metric in ["rewards/chosen", "rewards/rejected", "rewards/accuracy", "logps/chosen", "logps/rejected"] {
            XCTAssertTrue(names.contains(metric), "\(objective) lacks \(metric)")
        }
        return out
    }

    /// The mean margin of the last three steps exceeds that of the first three (batches differ step to step).
    func assertLearns(_ m: [Int: Double], _ what: String, steps: Int = 12) {
        let first = (1...3).compactMap { m[$0] }.reduce(0, +) / 3, last = (steps - 2...steps).compactMap { m[$0] }.reduce(0, +) / 3
        XCTAssertGreaterThan(last, first, "\(what): margins \(m.sorted { $0.key < $1.key }.map(\.value))")
    }

    func testSimPOLearnsItsPairs() throws {
        assertLearns(try margins(objective: #"{ kind: "simpo", beta: 2, simpo_gamma: 0.5 }"#), "simpo")
    }
}
