import Foundation
import RunStore
import XCTest
@testable import Experiments

/// A reward model end to end on the tiny preset: an SFT stage, then `objective: { kind: "reward" }` starting
/// from its weights, with per-pair margins read from a field; TRL's metric names every step, the `reward`
/// measure of every probe response at every evaluation, and the probe set's pairwise accuracy.
final class RewardRunTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = try temporaryFolder("reward", copying: ["tiny-probes.jsonl"])
        let train = try String(contentsOf: Bundle.module.url(forResource: "Fixtures/tiny-train.jsonl", withExtension: nil)!, encoding: .utf8)
        // each pair with a margin: its line number / 4
        let lines = train.split(separator: "\n").enumerated().map { i, line in line.dropLast() + ", \"gap\": \(Double(i) / 4)}" }
        try (lines.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("pairs.jsonl"), atomically: false, encoding: .utf8)
    }

    func spec(reward: String = #"{ kind: "reward", margin: "gap", center_rewards: 0.01, head_seed: 3 }"#, data: String = "pairs.jsonl") -> String {
        """
        {
          name: "rm",
          model: { preset: "tiny", seed: 0 },
          data: {
            train: { path: "\(data)" },
            probes: { path: "tiny-probes.jsonl", categories: { chosen: "chosen", rejected: "rejected", non_response: "non_response" } },
          },
          train: { steps: 2, batch_size: 2, lr: 3e-3, max_length: 160 },
          eval: { every: 2 },
          stages: [
            { name: "sft" },
            { name: "rm", init_from: { run: "sft" }, objective: \(reward), train: { steps: 12, lr: 2e-3 }, eval: { every: 6 } },
          ],
        }
        """
    }

    func load(_ text: String) throws -> Experiment {
        try text.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        return try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
    }

    func testARewardModelTrainsFromAnSFTRunAndIsEvaluatedOnRewards() throws {
        let experiment = try load(spec())
        try RunExecutor.validateInputs(of: experiment)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let summary = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll()
        XCTAssertEqual(summary.finished.count, 2, "failed: \(summary.failed)")
        let rm = try XCTUnwrap(store.run(name: "rm/rm"))
        // TRL's names, every step
        let names = try store.query("SELECT name, COUNT(*) FROM train_metrics WHERE run_id = ? AND step >= 1 GROUP BY name", [.integer(rm.id)])
        let counts = Dictionary(uniqueKeysWithValues: names.map { ($0[0].string!, $0[1].int!) })
        for name in ["loss", "accuracy", "margin", "mean_reward", "min_reward", "max_reward"] {
            XCTAssertEqual(counts[name], 12, name)
        }
        // every response of every evaluation has a reward beside its log-probability
        let rewards = try store.query("""
            SELECT l.step, COUNT(*), COUNT(m.value) FROM logprobs l
            LEFT JOIN measures m ON m.run_id = l.run_id AND m.step = l.step AND m.response_id = l.response_id AND m.name = 'reward'
            WHERE l.run_id = ? GROUP BY l.step ORDER BY l.step
            """, [.integer(rm.id)])
        XCTAssertEqual(rewards.map { $0[0].int! }, [0, 6, 12])
        for row in rewards { XCTAssertEqual(row[1].int, row[2].int, "step \(row[0])") }
        // the SFT run has no rewards
        let sft = try XCTUnwrap(store.run(name: "rm/sft"))
        XCTAssertEqual(try store.query("SELECT COUNT(*) FROM measures WHERE run_id = ? AND name = 'reward'", [.integer(sft.id)])[0][0].int, 0)
        // pairwise accuracy on the probes' chosen/rejected, by split and overall, at each evaluation
        let accuracy = try store.query("SELECT step, name, value FROM train_metrics WHERE run_id = ? AND name LIKE 'eval/accuracy%' ORDER BY step, name",
                                       [.integer(rm.id)])
        XCTAssertEqual(Set(accuracy.map { $0[0].int! }), [0, 6, 12])
        XCTAssertTrue(accuracy.contains { $0[1].string == "eval/accuracy" })
        for row in accuracy { XCTAssertTrue((0...1).contains(row[2].double!), "\(row)") }
        // it learned the training pairs (margins up to 1.25 nats to beat)
        let last = try store.query("SELECT value FROM train_metrics WHERE run_id = ? AND name = 'loss' ORDER BY step", [.integer(rm.id)])
        XCTAssertLessThan(last.last![0].double!, last.first![0].double!)
        // the reward model starts from the SFT weights: its step-0 log-probabilities are the SFT run's last
        let start = try store.query("""
            SELECT a.logprob, b.logprob FROM logprobs a JOIN logprobs b ON a.response_id = b.response_id
            WHERE a.run_id = ? AND a.step = 0 AND b.run_id = ? AND b.step = 2
            """, [.integer(rm.id), .integer(sft.id)])
        XCTAssertFalse(start.isEmpty)
        for row in start { XCTAssertEqual(row[0].double!, row[1].double!, accuracy: 1e-3) }
    }

    func testBadRewardInputsAreRefusedBeforeAnythingRuns() throws {
        // a margin field the data lacks
        var experiment = try load(spec(reward: #"{ kind: "reward", margin: "rating_gap" }"#))
        XCTAssertThrowsError(try RunExecutor.validateInputs(of: experiment)) { error in
            XCTAssertTrue("\(error)".contains("pairs.jsonl:1") && "\(error)".contains("objective.margin") && "\(error)".contains("rating_gap"), "\(error)")
        }
        // pairs without a rejected response
        let onlyChosen = #"{"prompt": "Hi?", "chosen": "Hello there."}"# + "\n"
        try onlyChosen.write(to: dir.appendingPathComponent("chosen.jsonl"), atomically: false, encoding: .utf8)
        experiment = try load(spec(data: "chosen.jsonl"))
        XCTAssertThrowsError(try RunExecutor.validateInputs(of: experiment)) { error in
            XCTAssertTrue("\(error)".contains("chosen.jsonl:1") && "\(error)".contains("rejected") && "\(error)".contains("reward"), "\(error)")
        }
        // a bad key
        XCTAssertThrowsError(try load(spec(reward: #"{ kind: "reward", beta: 0.1 }"#))) { error in
            XCTAssertTrue("\(error)".contains("objective.beta") && "\(error)".contains("margin, center_rewards, head_seed"), "\(error)")
        }
    }
}
