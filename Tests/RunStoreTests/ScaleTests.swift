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

    /// Issue 19's size bound: a 64-probe, 9-category, 3-evaluation run with per-token rows stays under
    /// 50 MB. Every response here is 255 tokens (the longest `train.max_length: 256` allows; real probe
    /// responses are 20-70), every row has all ten measures, written through `writeEvaluation`.
    /// The per-run views read through the primary keys.
    func testAPerTokenRunOfSixtyFourProbesStaysUnderFiftyMegabytes() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 1)
        let categories = ["chosen", "rejected", "paraphrased_rejected", "variant", "random", "non_response", "a", "b", "c"]
        let ids = try seedProbes(store, probes: 64, heldout: 16, categories: categories).values.sorted()
        let names = ["mean_token_logprob", "argmax_logprob", "argmax_match", "except_argmax", "entropy", "energy", "p_e",
                     "peakiness", "ended_turn", "generated_tokens"]
        for step in [0, 5, 10] {
            var rows: [LogprobRow] = []
            for id in ids {
                var measures: [String: Double] = [:]
                for (k, name) in names.enumerated() { measures[name] = -Double(k) / 7 - Double(id) }
                var tokens: [TokenRow] = []
                for position in 0..<255 {
                    let token = Int32((position * 7919 + Int(id)) % 49152), argmax = Int32((position * 104729) % 49152)
                    tokens.append(TokenRow(token: token, logprob: -Double(position % 13) / 3.1 - Double(step), argmax: argmax))
                }
                rows.append(LogprobRow(responseID: id, logprob: -Double(id % 97) - Double(step), nTokens: 255,
                                       measures: measures, tokens: tokens))
            }
            try store.writeEvaluation(runID: runs[0], step: step, rows: rows)
        }
        XCTAssertEqual(try store.query("SELECT count(*) FROM token_logprobs"), [[.integer(Int64(64 * 9 * 3 * 255))]])
        _ = try store.query("PRAGMA wal_checkpoint(TRUNCATE)")
        let bytes = try FileManager.default.attributesOfItem(atPath: store.path)[.size] as! Int
        let wal = (try? FileManager.default.attributesOfItem(atPath: store.path + "-wal")[.size] as? Int) ?? 0
        print("per-token store of 64 probes x 9 categories x 3 evaluations x 255 tokens: \(bytes + wal) bytes")
        XCTAssertLessThan(bytes + wal, 50_000_000)

        func plan(_ sql: String) throws -> [String] {
            try store.query("EXPLAIN QUERY PLAN " + sql, [.integer(runs[0])]).map { $0[3].string ?? "" }
        }
        let deltas = try plan("SELECT * FROM token_deltas WHERE run_id = ? AND step = 10")
        XCTAssertTrue(deltas.contains { $0.hasPrefix("SEARCH t USING PRIMARY KEY (run_id=? AND step=?)") }, "\(deltas)")
        XCTAssertTrue(deltas.contains { $0.hasPrefix("SEARCH f USING PRIMARY KEY (run_id=? AND step=? AND response_id=? AND position=?)") }, "\(deltas)")
        let curves = try plan("SELECT * FROM measure_curves WHERE run_id = ?")
        XCTAssertFalse(curves.contains { $0.hasPrefix("SCAN measures") || $0.hasPrefix("SCAN logprobs") }, "\(curves)")
        XCTAssertEqual(try store.query("SELECT count(*) FROM token_deltas WHERE run_id = ? AND step = 10 AND delta != -10", [.integer(runs[0])]),
                       [[0]])
    }
}
