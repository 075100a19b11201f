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
