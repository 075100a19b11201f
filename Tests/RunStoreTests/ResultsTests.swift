import CSQLite
import Foundation
import XCTest

@testable import RunStore

final class ResultsTests: XCTestCase {
    func testAnEvaluationIsWrittenWhollyOrNotAtAll() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 1)
        let ids = try seedProbes(store, probes: 3, heldout: 1, categories: ["chosen", "rejected"])
        let responseIDs = ids.values.sorted()
        let good = responseIDs.map { LogprobRow(responseID: $0, logprob: -Double($0), nTokens: 4) }
        try store.writeEvaluation(runID: runs[0], step: 0, rows: good)
        XCTAssertEqual(try store.query("SELECT count(*) FROM logprobs"), [[6]])

        // An unknown response id in the middle of step 10: the foreign key fails, nothing of step 10 stays.
        var bad = good
        bad.insert(LogprobRow(responseID: 9999, logprob: -1, nTokens: 1), at: 3)
        let error = assertStoreError(try store.writeEvaluation(runID: runs[0], step: 10, rows: bad))
        XCTAssertEqual(error?.sqliteCode, SQLITE_CONSTRAINT)
        XCTAssertTrue(error?.description.contains(store.path) ?? false)
        XCTAssertTrue(error?.description.contains("INSERT OR REPLACE INTO logprobs") ?? false, "\(String(describing: error))")
        XCTAssertEqual(try store.query("SELECT count(*) FROM logprobs WHERE step = 10"), [[0]])
        XCTAssertEqual(try store.query("SELECT count(*) FROM logprobs"), [[6]])

        // A NaN is refused before anything is written.
        var nan = good
        nan[4].logprob = .nan
        guard case .invalidValue(_, let detail)? = assertStoreError(try store.writeEvaluation(runID: runs[0], step: 10, rows: nan)) else {
            return XCTFail("expected invalidValue")
        }
        XCTAssertEqual(detail, "run \(runs[0]) step 10 response \(responseIDs[4]): log-probability is NaN")
        XCTAssertEqual(try store.query("SELECT count(*) FROM logprobs WHERE step = 10"), [[0]])

        // Writing a step again replaces its rows.
        try store.writeEvaluation(runID: runs[0], step: 0, rows: good.map { LogprobRow(responseID: $0.responseID, logprob: -0.5, nTokens: 2) })
        XCTAssertEqual(try store.query("SELECT count(*), sum(logprob), sum(n_tokens) FROM logprobs"), [[6, -3.0, 12]])
    }

    func testTrainMetricsAndStatus() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 2)
        _ = try seedRuns(store, count: 1, experiment: "other")
        for step in 1...3 {
            try store.writeTrainMetrics(
                runID: runs[0], step: step,
                metrics: [("loss", 3.0 - Double(step) / 2), ("lr", 1e-5), ("grad_norm", .infinity)])
        }
        try store.writeTrainMetrics(runID: runs[0], step: 3, metrics: [("loss", 1.25)])
        try store.writeTrainMetrics(runID: runs[0], step: 4, metrics: [("lr", 1e-5)])
        try store.writeTrainMetrics(runID: runs[1], step: 1, metrics: [("loss", .nan)])
        XCTAssertEqual(try store.query("SELECT count(*) FROM train_metrics WHERE run_id = ?", [.integer(runs[0])]), [[10]])
        XCTAssertEqual(try store.query("SELECT value FROM train_metrics WHERE name = 'grad_norm' LIMIT 1"), [[.real(.infinity)]])
        XCTAssertEqual(try store.query("SELECT value FROM train_metrics WHERE run_id = ?", [.integer(runs[1])]), [[.null]])

        XCTAssertTrue(try store.claim(runID: runs[0]))
        try store.setLastStep(runID: runs[0], step: 4)
        let rows = try store.statusRows(experiment: "exp")
        XCTAssertEqual(rows.map(\.name), ["exp/run0", "exp/run1"])
        XCTAssertEqual(rows[0].status, .running)
        XCTAssertEqual(rows[0].lastStep, 4)
        XCTAssertEqual(rows[0].lastLoss, 1.25, "the loss of the highest step that has one, after replacement")
        XCTAssertEqual(rows[0].lastLossStep, 3)
        XCTAssertNotNil(rows[0].startedAt)
        XCTAssertEqual(rows[0].owner, RunStore.processOwner)
        XCTAssertTrue(rows[0].isHeldByLiveOwner())
        XCTAssertLessThan(try XCTUnwrap(rows[0].heartbeatAge), 60)
        try store.query("UPDATE runs SET owner = ? WHERE id = ?", [.text("\(RunStore.currentHostName()):\(try deadPID())"), .integer(runs[0])])
        XCTAssertFalse(try store.statusRows(experiment: "exp")[0].isHeldByLiveOwner(), "dead owner")
        XCTAssertFalse(rows[1].isHeldByLiveOwner(), "planned")
        XCTAssertEqual(rows[1].status, .planned)
        XCTAssertNil(rows[1].lastLoss, "a NaN loss reads back as NULL")
        XCTAssertEqual(rows[1].lastLossStep, 1)
        XCTAssertEqual(try store.statusRows().map(\.experiment), ["exp", "exp", "other"])
    }

    func testTruncateRemovesEverythingPastTheStep() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 2)
        let ids = try seedProbes(store, probes: 2, heldout: 0, categories: ["chosen"]).values.sorted()
        for run in runs {
            for step in stride(from: 0, through: 30, by: 10) {
                try store.writeEvaluation(runID: run, step: step, rows: ids.map { LogprobRow(responseID: $0, logprob: -1, nTokens: 1) })
            }
            for step in 1...30 { try store.writeTrainMetrics(runID: run, step: step, metrics: [("loss", 1), ("lr", 1)]) }
            try store.setLastStep(runID: run, step: 30)
        }
        let removed = try store.truncate(runID: runs[0], afterStep: 10)
        XCTAssertEqual(removed.logprobs, 4)
        XCTAssertEqual(removed.trainMetrics, 40)
        XCTAssertEqual(
            try store.query("SELECT DISTINCT step FROM logprobs WHERE run_id = ? ORDER BY step", [.integer(runs[0])]),
            [[0], [10]])
        XCTAssertEqual(try store.query("SELECT max(step) FROM train_metrics WHERE run_id = ?", [.integer(runs[0])]), [[10]])
        XCTAssertEqual(try store.run(id: runs[0])?.lastStep, 10)
        // The other run is untouched.
        XCTAssertEqual(try store.query("SELECT count(*) FROM logprobs WHERE run_id = ?", [.integer(runs[1])]), [[8]])
        XCTAssertEqual(try store.run(id: runs[1])?.lastStep, 30)
        // Truncating past the end changes nothing, and last_step is never raised.
        XCTAssertTrue(try store.truncate(runID: runs[0], afterStep: 50) == (0, 0))
        XCTAssertEqual(try store.run(id: runs[0])?.lastStep, 10)
    }
}
