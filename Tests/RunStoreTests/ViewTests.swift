import Foundation
import XCTest

@testable import RunStore

/// The views against values computed here from the same hand-made numbers.
final class ViewTests: XCTestCase {
    struct Score { var run: Int64; var step: Int; var idx: Int; var category: String; var logprob: Double; var nTokens: Int }

    private let categories = ["chosen", "rejected"]
    private let steps = [0, 10, 20]

    /// 4 probes (idx 0-2 train, idx 3 held out), two categories, two runs, three steps; values
    /// irregular enough that mean and spread differ in every group.
    private func makeStore() throws -> (RunStore, [Int64], [ResponseKey: Int64], [Score]) {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 2)
        let ids = try seedProbes(store, probes: 4, heldout: 1, categories: categories)
        var scores: [Score] = []
        for (r, run) in runs.enumerated() {
            for step in steps {
                var rows: [LogprobRow] = []
                for idx in 0..<4 {
                    for (c, category) in categories.enumerated() {
                        let logprob = -(10 + Double(idx) * 3.7 + Double(c) * 5 + Double(idx * idx) * 0.31)
                            + Double(step) * 0.1 * Double(r + 1) * Double(idx + 1 + c)
                        let nTokens = 5 + idx + 2 * c
                        scores.append(Score(run: run, step: step, idx: idx, category: category, logprob: logprob, nTokens: nTokens))
                        let key = ResponseKey(probeIdx: idx, category: category, text: "\(category) \(idx)")
                        rows.append(LogprobRow(responseID: ids[key]!, logprob: logprob, nTokens: nTokens))
                    }
                }
                try store.writeEvaluation(runID: run, step: step, rows: rows)
            }
        }
        return (store, runs, ids, scores)
    }

    func testCategoryCurvesGiveMeanTokenMeanSEMAndCount() throws {
        let (store, runs, _, scores) = try makeStore()
        let rows = try store.rows("SELECT * FROM category_curves ORDER BY run_id, step, category, split")
        XCTAssertEqual(rows.count, runs.count * steps.count * categories.count * 2)
        for row in rows {
            let split = row["split"]!.string!
            let group = scores.filter {
                $0.run == row["run_id"]!.int64! && $0.step == row["step"]!.int! && $0.category == row["category"]!.string!
                    && ($0.idx == 3) == (split == "heldout")
            }
            let n = Double(group.count)
            let mean = group.map(\.logprob).reduce(0, +) / n
            let tokenMean = group.map { $0.logprob / Double($0.nTokens) }.reduce(0, +) / n
            XCTAssertEqual(row["n"], .integer(Int64(group.count)))
            XCTAssertEqual(row["mean_logprob"]!.double!, mean, accuracy: 1e-12 * abs(mean))
            XCTAssertEqual(row["mean_token_logprob"]!.double!, tokenMean, accuracy: 1e-12 * abs(tokenMean))
            if split == "heldout" {
                XCTAssertEqual(group.count, 1)
                XCTAssertEqual(row["sem"], .null, "sem is NULL for a single response")
            } else {
                XCTAssertEqual(group.count, 3)
                let variance = group.map { ($0.logprob - mean) * ($0.logprob - mean) }.reduce(0, +) / (n - 1)
                let sem = (variance / n).squareRoot()
                XCTAssertGreaterThan(sem, 0.1)
                XCTAssertEqual(row["sem"]!.double!, sem, accuracy: 1e-9 * sem)
            }
        }
    }

    func testSEMOfIdenticalValuesIsZero() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 1)
        let ids = try seedProbes(store, probes: 5, heldout: 0, categories: ["chosen"])
        try store.writeEvaluation(runID: runs[0], step: 0, rows: ids.values.map { LogprobRow(responseID: $0, logprob: -123.456789, nTokens: 7) })
        XCTAssertEqual(try store.query("SELECT n, mean_logprob, sem FROM category_curves"), [[5, -123.456789, 0.0]])
    }

    func testLogprobDeltasAreChangesFromStepZeroOfTheSameRun() throws {
        let (store, runs, ids, scores) = try makeStore()
        // A response first scored at step 20 (a greedy decode) has no step-0 value.
        let probeID = try store.probeIDs(probeSet: "probes")[0]!
        let greedy = try store.addResponse(probeID: probeID, category: "greedy", text: "I think", origin: "generated:greedy")
        try store.writeEvaluation(runID: runs[0], step: 20, rows: [LogprobRow(responseID: greedy, logprob: -4, nTokens: 2)])

        let rows = try store.rows("SELECT * FROM logprob_deltas ORDER BY run_id, step, response_id")
        XCTAssertEqual(rows.count, scores.count + 1)
        var idOf: [Int64: Score] = [:]
        for score in scores where score.run == runs[0] && score.step == 0 {
            idOf[ids[ResponseKey(probeIdx: score.idx, category: score.category, text: "\(score.category) \(score.idx)")]!] = score
        }
        for row in rows {
            let responseID = row["response_id"]!.int64!
            if responseID == greedy {
                XCTAssertEqual(row["start_logprob"], .null)
                XCTAssertEqual(row["delta"], .null)
                XCTAssertEqual(row["category"], "greedy")
                XCTAssertEqual(row["probe_id"], .integer(probeID))
                continue
            }
            let idx = idOf[responseID]!.idx, category = idOf[responseID]!.category
            let here = scores.first { $0.run == row["run_id"]!.int64! && $0.step == row["step"]!.int! && $0.idx == idx && $0.category == category }!
            let start = scores.first { $0.run == here.run && $0.step == 0 && $0.idx == idx && $0.category == category }!
            XCTAssertEqual(row["category"], .text(category))
            XCTAssertEqual(row["split"], .text(idx == 3 ? "heldout" : "train"))
            XCTAssertEqual(row["logprob"], .real(here.logprob))
            XCTAssertEqual(row["start_logprob"], .real(start.logprob))
            XCTAssertEqual(row["delta"]!.double!, here.logprob - start.logprob, accuracy: 1e-12)
            if here.step == 0 { XCTAssertEqual(row["delta"], .real(0)) }
        }
        // The two runs differ (run 1 moves twice as fast), so the join really is per run.
        let deltas = try store.query(
            "SELECT run_id, delta FROM logprob_deltas WHERE step = 10 AND category = 'chosen' AND probe_id = ? ORDER BY run_id",
            [.integer(probeID)])
        XCTAssertEqual(deltas[0][1].double!, 1.0, accuracy: 1e-12)
        XCTAssertEqual(deltas[1][1].double!, 2.0, accuracy: 1e-12)
    }
}
