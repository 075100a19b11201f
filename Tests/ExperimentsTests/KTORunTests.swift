import Foundation
import Probes
import RunStore
import Tokenizer
import Training
import XCTest
@testable import Experiments

/// KTO end to end on the tiny preset: paired data split into desirable and undesirable examples (the count
/// reported), unpaired {prompt, completion, label} lines read as they are, TRL's metric names every step, and
/// batches of one refused.
final class KTORunTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = try temporaryFolder("kto", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        let unpaired = [
            #"{"prompt": "Name a colour.", "completion": "Blue.", "label": true}"#,
            #"{"prompt": "Name a colour.", "completion": "I will not.", "label": false}"#,
            #"{"prompt": "Count to three.", "completion": "One, two, three.", "label": true}"#,
            #"{"prompt": "Count to three.", "completion": "Seven.", "label": false}"#,
            #"{"prompt": "Greet me.", "completion": "Hello!", "label": true}"#,
        ]
        try (unpaired.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("unpaired.jsonl"), atomically: false, encoding: .utf8)
    }

    func spec(train: String, batch: Int = 2) -> String {
        """
        {
          name: "kto",
          model: { preset: "tiny", seed: 0 },
          data: { train: { path: "\(train)" }, probes: { path: "tiny-probes.jsonl" } },
          objective: { kind: "kto", beta: 0.1, desirable_weight: 1, undesirable_weight: 1 },
          train: { steps: 8, batch_size: \(batch), lr: 3e-3, max_length: 160 },
          eval: { every: 8 },
        }
        """
    }

    func run(_ text: String) throws -> (RunStore, Int64, [String]) {
        try text.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        try RunExecutor.validateInputs(of: experiment)
        let store = try RunStore(path: dir.appendingPathComponent("runs-\(UUID().uuidString).sqlite").path)
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
        var messages: [String] = []
        executor.progress = { event in
            switch event {
            case .loading(_, let what): messages.append(what)
            case .warning(_, let message): messages.append("warning: " + message)
            default: break
            }
            return .more
        }
        let summary = try executor.runAll()
        XCTAssertEqual(summary.finished.count, 1, "\(summary.failed)")
        return (store, try XCTUnwrap(store.run(name: "kto")).id, messages)
    }

    func testKTOOnPairsSplitIntoUnpairedExamples() throws {
        let (store, id, messages) = try run(spec(train: "tiny-train.jsonl"))
        XCTAssertTrue(messages.contains { $0.contains("6 chosen/rejected pairs split") }, "\(messages)")
        XCTAssertFalse(messages.contains { $0.hasPrefix("warning") }, "6 desirable, 6 undesirable: within the advice")
        let rows = try store.query("SELECT name, COUNT(*) FROM train_metrics WHERE run_id = ? AND step >= 1 GROUP BY name", [.integer(id)])
        let counts = Dictionary(uniqueKeysWithValues: rows.map { ($0[0].string!, $0[1].int!) })
        for name in ["loss", "kl"] { XCTAssertEqual(counts[name], 8, name) }
        // a batch of 2 may hold only one kind: its step has no metric for the other
        for name in ["rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"] {
            XCTAssertTrue((4...8).contains(counts[name] ?? 0), "\(name): \(counts[name] ?? 0)")
        }
        // the desirable completions' implicit reward ends above the undesirable ones'
        func last(_ name: String) throws -> Double {
            try store.query("SELECT AVG(value) FROM train_metrics WHERE run_id = ? AND name = ? AND step > 4", [.integer(id), .text(name)])[0][0].double!
        }
        XCTAssertGreaterThan(try last("rewards/chosen"), try last("rewards/rejected"))
    }

    func testUnpairedLinesAndTheClassWeightWarning() throws {
        // 3 desirable, 2 undesirable: weighted ratio 1.5, outside [1, 4/3]
        let (_, _, messages) = try run(spec(train: "unpaired.jsonl"))
        XCTAssertFalse(messages.contains { $0.contains("split") })
        XCTAssertTrue(messages.contains { $0.hasPrefix("warning: KTO") && $0.contains("1.500") }, "\(messages)")
    }

    /// Rated lines: KTO by `rating_threshold` (refused without one), and a reward model on the pairs they
    /// form, whose margins are the rating differences.
    func testRatedFeedbackForKTOAndRewardModels() throws {
        let rated = [
            #"{"prompt": "Name a colour.", "response": "Blue.", "rating": 9}"#,
            #"{"prompt": "Name a colour.", "response": "I will not.", "rating": 2}"#,
            #"{"prompt": "Name a colour.", "response": "Green, I think.", "rating": 6}"#,
            #"{"prompt": "Greet me.", "response": "Hello!", "rating": 8}"#,
            #"{"prompt": "Greet me.", "response": "Go away.", "rating": 1}"#,
        ]
        try (rated.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("rated.jsonl"), atomically: false, encoding: .utf8)
        try spec(train: "rated.jsonl").write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try RunExecutor.validateInputs(of: try Experiment.load(path: dir.appendingPathComponent("spec.json5").path))) { error in
            XCTAssertTrue("\(error)".contains("rated.jsonl:1") && "\(error)".contains("rating_threshold"), "\(error)")
        }
        let withThreshold = spec(train: "rated.jsonl").replacingOccurrences(of: "undesirable_weight: 1 }", with: "undesirable_weight: 1, rating_threshold: 5 }")
        let (_, _, messages) = try run(withThreshold)
        // ratings >= 5 desirable: 3 desirable, 2 undesirable, a weighted ratio of 1.5
        XCTAssertTrue(messages.contains { $0.hasPrefix("warning: KTO") && $0.contains("1.500") }, "\(messages)")
        // the reward model's pairs and margins: (Blue > I will not, 7), (Blue > Green, 3), (Green > I will not, 4), (Hello > Go away, 7)
        let encoded = try PairEncoder.training(try loadExamples(path: dir.appendingPathComponent("rated.jsonl").path),
                                               objective: .reward(margin: nil, centerRewards: 0, headSeed: 0), tokenizer: ByteTokenizer(),
                                               template: .chatml, maxLength: 160, file: "rated.jsonl")
        guard case let .rewardPairs(pairs, margins) = encoded else { return XCTFail("\(encoded)") }
        XCTAssertEqual(pairs.count, 4)
        XCTAssertEqual(margins, [7, 3, 4, 7])
    }

    func testABatchOfOneIsRefused() throws {
        try spec(train: "tiny-train.jsonl", batch: 1).write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)) { error in
            XCTAssertTrue("\(error)".contains("train.batch_size") && "\(error)".contains("kto"), "\(error)")
        }
    }
}
