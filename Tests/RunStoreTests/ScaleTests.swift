import Foundation
import XCTest

@testable import RunStore

/// A store the size of a real study: 10 runs x 100 evaluations x 1000 responses = 1,000,000
/// logprob rows. The views must read one run through the indexes, never the whole table.
final class ScaleTests: XCTestCase {
    func testViewsOfOneRunUseTheIndexesOnAMillionRows() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 10)
        let categories = ["chosen", "rejected", "paraphrased_rejected", "variant", "random"]
        _ = try seedProbes(store, probes: 200, heldout: 40, categories: categories)
        var clock = ContinuousClock.now
        try store.database.transaction {
            try store.query(
                """
                WITH RECURSIVE steps(s) AS (SELECT 0 UNION ALL SELECT s + 1 FROM steps WHERE s < 99)
                INSERT INTO logprobs (run_id, step, response_id, logprob, n_tokens)
                SELECT runs.id, steps.s, responses.id,
                       -1.0 - ((runs.id * 7 + steps.s * 13 + responses.id * 17) % 1000) / 100.0,
                       1 + responses.id % 20
                FROM runs CROSS JOIN steps CROSS JOIN responses
                """)
        }
        XCTAssertEqual(try store.query("SELECT count(*) FROM logprobs"), [[1_000_000]])
        print("filled 1,000,000 logprobs in \(ContinuousClock.now - clock)")

        func plan(_ sql: String, _ parameters: [SQLiteValue]) throws -> [String] {
            try store.query("EXPLAIN QUERY PLAN " + sql, parameters).map { $0[3].string ?? "" }
        }
        let curves = "SELECT * FROM category_curves WHERE run_id = ?"
        let curvesPlan = try plan(curves, [.integer(runs[3])])
        XCTAssertTrue(curvesPlan.contains("SEARCH l USING PRIMARY KEY (run_id=?)"), "\(curvesPlan)")
        XCTAssertTrue(curvesPlan.contains { $0.hasPrefix("SEARCH r USING INTEGER PRIMARY KEY") }, "\(curvesPlan)")
        XCTAssertTrue(curvesPlan.contains { $0.hasPrefix("SEARCH p USING INTEGER PRIMARY KEY") }, "\(curvesPlan)")
        XCTAssertFalse(curvesPlan.contains { $0.hasPrefix("SCAN l") }, "no full scan of logprobs: \(curvesPlan)")

        let deltas = "SELECT * FROM logprob_deltas WHERE run_id = ? AND step = ?"
        let deltasPlan = try plan(deltas, [.integer(runs[3]), 50])
        XCTAssertTrue(deltasPlan.contains("SEARCH l USING PRIMARY KEY (run_id=? AND step=?)"), "\(deltasPlan)")
        XCTAssertTrue(
            deltasPlan.contains { $0.hasPrefix("SEARCH s USING PRIMARY KEY (run_id=? AND step=? AND response_id=?)") },
            "\(deltasPlan)")

        clock = ContinuousClock.now
        let rows = try store.query(curves, [.integer(runs[3])])
        print("category_curves for one run of 1,000,000 rows: \(rows.count) rows in \(ContinuousClock.now - clock)")
        XCTAssertEqual(rows.count, 100 * categories.count * 2)
        XCTAssertEqual(rows.map { $0[7].int ?? 0 }.reduce(0, +), 100_000, "every row of the run is counted once")
        clock = ContinuousClock.now
        let deltaRows = try store.query(deltas, [.integer(runs[3]), 50])
        print("logprob_deltas for one run and step: \(deltaRows.count) rows in \(ContinuousClock.now - clock)")
        XCTAssertEqual(deltaRows.count, 1000)
        XCTAssertFalse(deltaRows.contains { $0[8] == .null }, "every response has a step-0 value")
    }
}
