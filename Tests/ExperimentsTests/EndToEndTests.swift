import Foundation
import RunStore
import XCTest
@testable import Experiments

/// Runs the tiny-preset 2x2 sweep for real (SQLite store in a temporary folder).
final class EndToEndTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("alignscope-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["tiny-train.jsonl", "tiny-probes.jsonl", "tiny-sweep.json5"] {
            let src = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!
            try FileManager.default.copyItem(at: src, to: dir.appendingPathComponent(name))
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func executor(_ spec: String = "tiny-sweep.json5") throws -> RunExecutor {
        let experiment = try Experiment.load(path: dir.appendingPathComponent(spec).path)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        return RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
    }

    func count(_ store: RunStore, _ sql: String) throws -> Int {
        try store.query(sql)[0][0].int!
    }

    func testSweepRunsRecordEveryEvaluationAndRerunAddsNothing() throws {
        let ex = try executor()
        XCTAssertEqual(ex.experiment.runs.count, 4)
        let summary = try ex.runAll()
        XCTAssertEqual(summary.finished.count, 4, "failed: \(summary.failed)")
        let store = ex.store
        let evaluations = ex.experiment.runs[0].config.evalSteps.count
        XCTAssertEqual(evaluations, 3)
        let responsesPerProbeSet = 4 * 4  // 4 probes x (chosen, rejected, non_response, random)
        XCTAssertEqual(try count(store, "SELECT count(*) FROM logprobs"), 4 * evaluations * responsesPerProbeSet)
        XCTAssertEqual(try count(store, "SELECT count(*) FROM runs WHERE status = 'finished'"), 4)
        XCTAssertEqual(try count(store, "SELECT count(DISTINCT step) FROM train_metrics"), 4)
        XCTAssertEqual(try count(store, "SELECT count(*) FROM train_metrics WHERE name = 'loss'"), 4 * 4)
        // category_curves: one row per run, step, category and split (probes 0 and 1 are in the training data).
        XCTAssertEqual(try count(store, "SELECT count(*) FROM category_curves"), 4 * evaluations * 4 * 2)
        XCTAssertEqual(try count(store, "SELECT count(*) FROM probes WHERE split = 'train'"), 2 * Int(try count(store, "SELECT count(DISTINCT probe_set) FROM probes")))
        // A random response is never its own prompt's chosen response.
        XCTAssertEqual(try count(store, """
            SELECT count(*) FROM responses r JOIN responses c ON c.probe_id = r.probe_id AND c.category = 'chosen'
            WHERE r.category = 'random' AND r.text = c.text
            """), 0)

        let before = try count(store, "SELECT count(*) FROM logprobs") + (try count(store, "SELECT count(*) FROM train_metrics"))
        let again = try executor().runAll()
        XCTAssertEqual(again.finished.count, 0)
        XCTAssertEqual(again.skipped.count, 4)
        XCTAssertEqual(try count(store, "SELECT count(*) FROM logprobs") + (try count(store, "SELECT count(*) FROM train_metrics")), before)
    }

    /// The example queries of the reference (docs/REFERENCE.md, moved from the README) run on a real store and return rows.
    func testReadmeQueriesRun() throws {
        let ex = try executor()
        XCTAssertEqual(try ex.runAll().finished.count, 4)
        // and one run with per-token rows, for the query over token_deltas
        let spec = try String(contentsOf: dir.appendingPathComponent("tiny-sweep.json5"), encoding: .utf8)
            .replacingOccurrences(of: "name: \"tiny-sweep\"", with: "name: \"tiny-tokens\"")
            .replacingOccurrences(of: "eval: { every: 2 }", with: "eval: { every: 2, tokens: true }")
            .replacingOccurrences(of: "sweep: { \"train.lr\": [1e-3, 3e-3], seed: [1, 2] },", with: "")
        XCTAssert(spec.contains("tokens: true"))
        try spec.write(to: dir.appendingPathComponent("tiny-tokens.json5"), atomically: false, encoding: .utf8)
        XCTAssertEqual(try executor("tiny-tokens.json5").runAll().finished.count, 1)
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/REFERENCE.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let blocks = text.components(separatedBy: "```sql\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        XCTAssertGreaterThanOrEqual(blocks.count, 4)
        for sql in blocks {
            let body = sql.split(separator: "\n").filter { !$0.hasPrefix("--") }.joined(separator: "\n")
                .trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(in: CharacterSet(charactersIn: ";"))
            let rows = try ex.store.query(body)
            XCTAssertFalse(rows.isEmpty, "README query returned no rows: \(sql)")
        }
    }

    func testTrainingRaisesChosenLogprobOnTrainProbes() throws {
        let ex = try executor()
        let run = ex.experiment.runs.first { $0.config.train.lr == 3e-3 && $0.config.seed == 1 }!
        _ = try ex.runAll(only: run.name)
        let rows = try ex.store.query("""
            SELECT step, mean_logprob FROM category_curves c JOIN runs ON runs.id = c.run_id
            WHERE runs.name = ? AND category = 'chosen' AND split = 'train' ORDER BY step
            """, [.text(run.name)])
        XCTAssertEqual(rows.count, 3)
        XCTAssertGreaterThan(rows[2][1].double!, rows[0][1].double!, "chosen log-probability should rise under SFT on chosen")
    }

    func testInterruptedRunResumesToIdenticalRows() throws {
        // Uninterrupted reference.
        let ref = try executor()
        let name = ref.experiment.runs[0].name
        _ = try ref.runAll(only: name)
        let reference = try ref.store.query("SELECT step, response_id, logprob FROM logprobs l JOIN runs ON runs.id = l.run_id WHERE runs.name = ? ORDER BY step, response_id", [.text(name)])
        let refMetrics = try ref.store.query("SELECT step, m.name, value FROM train_metrics m JOIN runs ON runs.id = m.run_id WHERE runs.name = ? AND m.name IN ('loss', 'grad_norm', 'lr') ORDER BY step, m.name", [.text(name)])

        // Fresh store: stop after 3 steps (checkpoints at 2, and at 3 where it stopped), then resume from step 3.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("runs.sqlite"))
        try? FileManager.default.removeItem(at: dir.appendingPathComponent("tiny-sweep"))
        let first = try executor()
        var steps = 0
        first.progress = { event in
            if case .step = event { steps += 1 }
            return steps < 3 ? .more : .stop
        }
        let partial = try first.runAll(only: name)
        XCTAssertEqual(steps, 3, "the run went on after its callback answered stop")
        XCTAssertEqual(partial.finished.count, 0)
        XCTAssertEqual(try first.store.run(name: name)?.status, .interrupted)
        let resumed = try executor()
        var resumedFrom = -1
        resumed.progress = { event in
            if case .started(_, let from, _) = event { resumedFrom = from }
            return .more
        }
        XCTAssertEqual(try resumed.runAll(only: name).finished, [name])
        XCTAssertEqual(resumedFrom, 3, "a stopped run checkpoints the step it stopped after")
        let got = try resumed.store.query("SELECT step, response_id, logprob FROM logprobs l JOIN runs ON runs.id = l.run_id WHERE runs.name = ? ORDER BY step, response_id", [.text(name)])
        let gotMetrics = try resumed.store.query("SELECT step, m.name, value FROM train_metrics m JOIN runs ON runs.id = m.run_id WHERE runs.name = ? AND m.name IN ('loss', 'grad_norm', 'lr') ORDER BY step, m.name", [.text(name)])
        XCTAssertEqual(got, reference)
        XCTAssertEqual(gotMetrics, refMetrics)
    }
}
