import Foundation
import RunStore
import XCTest
@testable import Experiments

/// Issue 34 (its parts done so far) against the real executable: every metric an objective emits is recorded.
extension ReliabilityTests {
    func testEveryObjectiveMetricIsRecorded() throws {
        let base = try String(contentsOf: dir.appendingPathComponent("reliability-crash.json5"), encoding: .utf8)
            .replacingOccurrences(of: "steps: 40", with: "steps: 2")
        try write(base, to: "sft.json5")
        try write(base.replacingOccurrences(of: #"name: "reliability-crash""#, with: #"name: "dpo", objective: { kind: "dpo" }"#), to: "dpo.json5")
        for (spec, expected) in [("sft.json5", ["logps/mean_token", "objective/tokens"]),
                                 ("dpo.json5", ["pairs", "rewards/margins", "logps/chosen"])] {
            let db = path(spec + ".sqlite")
            let result = try run(["run", spec, "--db", db, "--quiet"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let names = Set(try RunStore(path: db, readOnly: true).query("SELECT DISTINCT name FROM train_metrics").compactMap { $0[0].string })
            for name in expected + ["loss", "lr", "grad_norm", "tokens"] { XCTAssertTrue(names.contains(name), "\(spec): no \(name) in \(names.sorted())") }
        }
    }
}

/// Issue 34: an objective is one place. No source file outside `Sources/Training/Objectives/` matches on an
/// objective's kind (its cases `sft`, `pair`, `coh`, `reward(...)`, `kto`, `spin`, `ppo`); they ask the objective.
final class ArchitectureTests: XCTestCase {
    func testNoObjectiveKindDispatchOutsideTheObjectivesFolder() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
        let pattern = try NSRegularExpression(pattern: #"case\s+(let\s+)?\.(sft|pair|coh|kto|spin|ppo)\b|case\s+(let\s+)?\.reward\("#)
        var found: [String] = [], inside = 0
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
        for case let url as URL in files where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where pattern.firstMatch(in: String(line), range: NSRange(line.startIndex..., in: line)) != nil {
                if url.path.contains("/Training/Objectives/") { inside += 1; continue }
                found.append("\(url.lastPathComponent):\(n + 1): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        XCTAssertEqual(found, [], "objective-kind dispatch outside Sources/Training/Objectives")
        XCTAssertGreaterThan(inside, 20, "the pattern finds the objectives' own matches (it can fail)")
    }
}

/// Issue 34: a stage is one type. `Stages.stage(for:)` is the one place that tells the kinds of run apart; each stage
/// says what it reads, what `plan` prints of it, and does its work behind the same protocol.
final class StageTests: XCTestCase {
    func testEachKindOfRunIsItsStage() throws {
        let dir = try temporaryFolder("stages", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        let stages = """
            [
              { name: "sft" },
              { name: "rm", init_from: { run: "sft" }, objective: { kind: "reward" } },
              { name: "label", label: { policy: { run: "sft" }, scorer: { run: "rm" }, samples: 3, max_tokens: 8 } },
              { name: "dpo", init_from: { run: "sft" }, objective: { kind: "dpo" }, data: { train: { from: { stage: "label" } } } },
              { name: "ppo", init_from: { run: "sft" }, objective: { kind: "ppo", reward: { run: "rm" }, max_tokens: 6 } },
              { name: "spin", init_from: { run: "sft" }, objective: { kind: "spin", iterations: 2, max_tokens: 6 } },
            ]
            """
        let text = """
            { name: "st", model: { preset: "tiny", seed: 0 },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 2, batch_size: 2, max_length: 160 }, eval: { every: 2 }, stages: \(stages) }
            """
        try text.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        var kinds: [String: String] = [:], reads: [String: [String]] = [:]
        for run in experiment.runs {
            kinds[run.name] = "\(type(of: Stages.stage(for: run.config)))"
            reads[run.name] = run.config.inputRuns
        }
        XCTAssertEqual(kinds, ["st/sft": "OfflineStage", "st/rm": "OfflineStage", "st/label": "LabellingStage", "st/dpo": "OfflineStage",
                               "st/ppo": "OnlineStage", "st/spin/iter=1": "SpinStage", "st/spin/iter=2": "SpinStage"])
        XCTAssertEqual(reads, ["st/sft": [], "st/rm": ["st/sft"], "st/label": ["st/sft", "st/rm"], "st/dpo": ["st/sft", "st/label"],
                               "st/ppo": ["st/sft", "st/rm"], "st/spin/iter=1": ["st/sft"], "st/spin/iter=2": ["st/spin/iter=1"]])
        let label = try XCTUnwrap(experiment.runs.first { $0.name == "st/label" })
        XCTAssertEqual(label.config.planSummary, "label: 3 samples per prompt of st/sft, scored by reward model st/rm")
        let dpo = try XCTUnwrap(experiment.runs.first { $0.name == "st/dpo" })
        XCTAssertEqual(dpo.config.planSummary, "2 steps, batch 2, lr 2e-05, seed 1, evals at 0,2, trains on the pairs of st/label")
    }

    /// Stages are made in one place: no file outside `Stages/Stage.swift` constructs one.
    func testStagesAreChosenInOnePlace() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
        let pattern = try NSRegularExpression(pattern: #"\b(OfflineStage|SpinStage|OnlineStage|LabellingStage)\("#)
        var found: [String] = [], inside = 0
        for case let url as URL in FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)! where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            let n = pattern.numberOfMatches(in: text, range: NSRange(text.startIndex..., in: text))
            if url.lastPathComponent == "Stage.swift" { inside += n } else if n > 0 { found.append(url.lastPathComponent) }
        }
        XCTAssertEqual(found, [])
        XCTAssertEqual(inside, 4, "the pattern finds the four constructions in Stage.swift (it can fail)")
    }
}
