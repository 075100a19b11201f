import Foundation
import RunStore
import XCTest

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
