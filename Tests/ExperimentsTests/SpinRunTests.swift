import Base
import Foundation
import RunStore
import XCTest
@testable import Experiments

/// SPIN on the tiny preset: two iterations, each a run of its own starting from the previous one's final
/// weights bit for bit, each with its own generated set (with provenance) and its own reference.
final class SpinRunTests: XCTestCase {
    func testTwoIterationsEachFromTheLastsWeights() throws {
        let dir = try temporaryFolder("spin", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        let spec = """
            {
              name: "self",
              model: { preset: "tiny", seed: 0 },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 2, batch_size: 2, lr: 3e-3, max_length: 160 },
              eval: { every: 2 },
              stages: [
                { name: "sft" },
                { name: "spin", init_from: { run: "sft" }, objective: { kind: "spin", iterations: 2, beta: 0.1, max_tokens: 8 },
                  train: { lr: 1e-3 } },
              ],
            }
            """
        try spec.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        XCTAssertEqual(experiment.runs.map(\.name), ["self/sft", "self/spin/iter=1", "self/spin/iter=2"])
        XCTAssertEqual(experiment.runs[1].config.initFrom?.run, "self/sft")
        XCTAssertEqual(experiment.runs[2].config.initFrom?.run, "self/spin/iter=1")
        try RunExecutor.validateInputs(of: experiment)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
        // each iteration's generation reports its progress (issue 41): 0 first, then up to every prompt
        var generated: [String: [Int]] = [:]
        executor.progress = { event in
            if case let .generated(run, done, total, _) = event { generated[run, default: []].append(done); XCTAssertGreaterThan(total, 0) }
            return .more
        }
        let summary = try executor.runAll()
        XCTAssertEqual(generated.count, 2, "\(generated)")
        for (run, dones) in generated {
            XCTAssertEqual(dones.first, 0, run)
            XCTAssertEqual(dones, dones.sorted(), run)
            XCTAssertGreaterThan(dones.last ?? 0, 0, run)
        }
        XCTAssertEqual(summary.finished, experiment.runs.map(\.name), "\(summary.failed)")
        // each iteration's generated set, with provenance naming its generator
        var sets: [String] = []
        for (k, generator) in [(1, "run:self/sft"), (2, "run:self/spin/iter=1")] {
            let url = executor.checkpointURL(runName: "self/spin/iter=\(k)").deletingLastPathComponent().appendingPathComponent("generated.jsonl")
            let text = try String(contentsOf: url, encoding: .utf8)
            XCTAssertEqual(text.split(separator: "\n").count, 6)
            XCTAssertTrue(text.contains("generator=\(generator)"), String(text.prefix(300)))
            sets.append(text)
        }
        XCTAssertNotEqual(sets[0], sets[1], "iteration 2 generates with its own starting weights")
        // iteration 2 starts where iteration 1 ended, bit for bit: its step-0 scores are iteration 1's final ones
        func scores(_ run: String, _ step: Int) throws -> [Double] {
            try store.query("""
                SELECT l.logprob FROM logprobs l JOIN runs r ON r.id = l.run_id JOIN responses s ON s.id = l.response_id
                WHERE r.name = ? AND l.step = ? AND s.category IN ('chosen', 'rejected') ORDER BY s.probe_id, s.category
                """, [.text(run), .integer(Int64(step))]).map { $0[0].double! }
        }
        let end1 = try scores("self/spin/iter=1", 2), start2 = try scores("self/spin/iter=2", 0)
        XCTAssertFalse(end1.isEmpty)
        XCTAssertEqual(end1.map(\.bitPattern), start2.map(\.bitPattern))
        XCTAssertNotEqual(try scores("self/spin/iter=1", 0), end1, "iteration 1 trained")
        // DPO's metrics, against each iteration's own reference (the margin starts at 0 in both)
        for k in [1, 2] {
            let first = try store.query("""
                SELECT m.value FROM train_metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = ? AND m.step = 1 AND m.name = 'rewards/margins'
                """, [.text("self/spin/iter=\(k)")])
            XCTAssertEqual(first.count, 1)
            // the policy equals the reference at the first step: each iteration's reference is its own start
            XCTAssertEqual(first.first?[0].double ?? .nan, 0, accuracy: 1e-6, "iteration \(k)")
        }
    }

    /// An iteration interrupted after its first step resumes from its checkpoint and its saved generated set:
    /// the set is not generated again, and the run records what an uninterrupted one records.
    func testAnInterruptedIterationResumesWithItsGeneratedSet() throws {
        let dir = try temporaryFolder("spin-resume", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        let spec = """
            {
              name: "self", model: { preset: "tiny", seed: 0 },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 4, batch_size: 2, lr: 1e-3, max_length: 160 }, eval: { every: 2 }, checkpoint: { every: 1 },
              objective: { kind: "spin", iterations: 1, max_tokens: 8, temperature: 1, top_p: 0.9 },
            }
            """
        try spec.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        func losses(_ store: RunStore) throws -> [Double] {
            try store.query("SELECT value FROM train_metrics WHERE name = 'loss' ORDER BY step").map { $0[0].double! }
        }
        // uninterrupted, in a store and folder of its own
        let whole = try temporaryFolder("spin-whole", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        let wholeStore = try RunStore(path: whole.appendingPathComponent("runs.sqlite").path)
        XCTAssertEqual(try RunExecutor(experiment: experiment, store: wholeStore, checkpointRoot: whole).runAll().finished.count, 1)
        // stopped after step 1, then resumed
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
        executor.progress = { event in
            if case .step(_, let step, _, _, _, _) = event, step == 1 { return .stop }
            return .more
        }
        XCTAssertEqual(try executor.runAll().interrupted.count, 1)
        let generated = executor.checkpointURL(runName: "self/iter=1").deletingLastPathComponent().appendingPathComponent("generated.jsonl")
        let before = try Data(contentsOf: generated)
        let stamp = try FileManager.default.attributesOfItem(atPath: generated.path)[.modificationDate] as? Date
        let resumed = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
        var messages: [String] = []
        resumed.progress = { event in
            if case .loading(_, let what) = event { messages.append(what) }
            return .more
        }
        XCTAssertEqual(try resumed.runAll().finished, ["self/iter=1"])
        XCTAssertFalse(messages.contains { $0.contains("generated by the starting weights") }, "generated again: \(messages)")
        XCTAssertEqual(try Data(contentsOf: generated), before)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: generated.path)[.modificationDate] as? Date, stamp)
        XCTAssertEqual(try losses(store).map(\.bitPattern), try losses(wholeStore).map(\.bitPattern))
    }
}
