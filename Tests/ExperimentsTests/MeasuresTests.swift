import Base
import Foundation
@testable import RunStore
import Tokenizer
import XCTest
@testable import Experiments

/// The probe measures, per-token rows and dynamic `argmax` category, recorded by real (tiny-preset) runs
/// into a real store; and the migration of an old store.
final class MeasuresTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("alignscope-measures-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["tiny-train.jsonl", "tiny-probes.jsonl", "legacy-59e209a.sql"] {
            let src = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!
            try FileManager.default.copyItem(at: src, to: dir.appendingPathComponent(name))
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func spec(tokens: Bool, checkpointed: Bool = false) -> String {
        """
        {
          name: "tiny-measures",
          model: { preset: "tiny", seed: 0 },
          template: "hh",
          data: {
            train: { path: "tiny-train.jsonl" },
            probes: {
              path: "tiny-probes.jsonl",
              categories: {
                chosen: "chosen", rejected: "rejected",
                greedy: { greedy: { max_tokens: 6 } },
                argmax: { argmax: { field: "chosen" } },
              },
            },
          },
          train: { steps: 4, batch_size: 2, lr: 3e-3, max_length: 160, checkpoint_activations: \(checkpointed) },
          eval: { every: 2, tokens: \(tokens) },
        }
        """
    }

    func run(tokens: Bool, checkpointed: Bool = false) throws -> RunStore {
        let path = dir.appendingPathComponent("tiny-measures.json5")
        try spec(tokens: tokens, checkpointed: checkpointed).write(to: path, atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: path.path)
        let store = try RunStore(path: dir.appendingPathComponent("runs-\(tokens)-\(checkpointed).sqlite").path)
        let summary = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll()
        XCTAssertEqual(summary.finished.count, 1, "failed: \(summary.failed)")
        return store
    }

    func int(_ store: RunStore, _ sql: String) throws -> Int { try store.query(sql)[0][0].int! }

    func testEveryScoredResponseHasItsMeasuresTokensAndArgmax() throws {
        let store = try run(tokens: true)
        let scored = try int(store, "SELECT count(*) FROM logprobs")
        // 4 probes x (chosen, rejected, greedy, argmax) x 3 evaluations
        XCTAssertEqual(scored, 4 * 4 * 3)
        // every non-empty response has every distributional measure
        for measure in Measure.distributional {
            XCTAssertEqual(try int(store, """
                SELECT count(*) FROM logprobs l JOIN measures m USING (run_id, step, response_id)
                WHERE m.name = '\(measure.rawValue)' AND l.n_tokens > 0
                """), try int(store, "SELECT count(*) FROM logprobs WHERE n_tokens > 0"), measure.rawValue)
        }
        // decoding facts for greedy responses only
        XCTAssertEqual(try int(store, """
            SELECT count(*) FROM measures m JOIN responses r ON r.id = m.response_id
            WHERE m.name IN ('ended_turn', 'generated_tokens') AND r.category = 'greedy'
            """), 2 * 4 * 3)
        XCTAssertEqual(try int(store, "SELECT count(*) FROM measures WHERE name IN ('ended_turn', 'generated_tokens')"), 2 * 4 * 3)
        XCTAssertEqual(try int(store, """
            SELECT count(*) FROM measures m JOIN measures e USING (run_id, step, response_id)
            WHERE m.name = 'generated_tokens' AND e.name = 'ended_turn' AND NOT ((m.value < 6) = (e.value = 1))
            """), 0, "ended_turn must be 1 exactly when fewer than max_tokens were decoded")
        // the token rows add up to the response's log-probability and agree with its measures
        XCTAssertEqual(try int(store, """
            SELECT count(*) FROM logprobs l
            LEFT JOIN (SELECT run_id, step, response_id, count(*) AS n, sum(logprob) AS s, avg(token = argmax) AS hit
                       FROM token_logprobs GROUP BY run_id, step, response_id) t USING (run_id, step, response_id)
            JOIN measures mt ON mt.run_id = l.run_id AND mt.step = l.step AND mt.response_id = l.response_id AND mt.name = 'mean_token_logprob'
            JOIN measures am ON am.run_id = l.run_id AND am.step = l.step AND am.response_id = l.response_id AND am.name = 'argmax_match'
            WHERE t.n IS NOT l.n_tokens OR abs(t.s - l.logprob) > 1e-6 * (1 + abs(l.logprob))
               OR abs(mt.value - l.logprob / l.n_tokens) > 1e-9 OR abs(am.value - t.hit) > 1e-9
            """), 0)
        // measures are in range: a probability share, entropy >= 0, log of a mass <= 0, norms in [0, sqrt 2]
        XCTAssertEqual(try int(store, """
            SELECT count(*) FROM measures WHERE
               (name IN ('argmax_match', 'energy', 'peakiness') AND NOT (value BETWEEN 0 AND 1))
            OR (name = 'entropy' AND NOT (value >= 0))
            OR (name IN ('argmax_logprob', 'except_argmax') AND NOT (value <= 0))
            OR (name = 'p_e' AND NOT (value BETWEEN 0 AND 1.4142136))
            """), 0)
        // argmax_logprob >= logprob: no sequence is more likely, position by position, than the argmax one
        XCTAssertEqual(try int(store, """
            SELECT count(*) FROM logprobs l JOIN measures m USING (run_id, step, response_id)
            WHERE m.name = 'argmax_logprob' AND m.value < l.logprob - 1e-4
            """), 0)
        // the argmax category: one response per probe and evaluation, its text the decoded argmax tokens of
        // chosen at that step up to the first stop token
        let argmaxRows = try store.query("""
            SELECT l.step, r.probe_id, r.text, r.origin FROM logprobs l JOIN responses r ON r.id = l.response_id
            WHERE r.category = 'argmax' ORDER BY l.step, r.probe_id
            """)
        XCTAssertEqual(argmaxRows.count, 4 * 3)
        let tokenizer = ByteTokenizer()
        for row in argmaxRows {
            let step = row[0].int!, probe = row[1].int64!
            XCTAssertEqual(row[3].string, "argmax:chosen:step=\(step)")
            let ids = try store.query("""
                SELECT t.argmax FROM token_logprobs t JOIN responses r ON r.id = t.response_id
                WHERE r.probe_id = ? AND r.category = 'chosen' AND t.step = ? ORDER BY t.position
                """, [.integer(probe), .integer(Int64(step))]).map { Int32($0[0].int!) }
            XCTAssertFalse(ids.isEmpty)
            let kept = Array(ids.prefix { $0 != tokenizer.eos })
            XCTAssertEqual(row[2].string, tokenizer.decode(kept), "probe \(probe) step \(step)")
        }
        // views: every measure has curves; tokens of static responses have a zero change at the first evaluation
        let curveMeasures = Set(try store.query("SELECT DISTINCT measure FROM measure_curves").map { $0[0].string! })
        XCTAssertEqual(curveMeasures, Set(["logprob"] + Measure.allCases.filter { ![.reward, .klToReference, .reverseKLToReference].contains($0) }.map(\.rawValue)),
                       "every measure but reward (a reward model's) and the KLs (eval.kl)")
        XCTAssertEqual(try int(store, """
            SELECT count(*) FROM measure_curves m JOIN category_curves c USING (run_id, step, category, split)
            WHERE m.measure = 'logprob' AND abs(m.mean - c.mean_logprob) > 1e-9
            """), 0)
        XCTAssertEqual(try int(store, "SELECT count(*) FROM token_deltas WHERE step = 0 AND category = 'chosen' AND delta != 0"), 0)
        XCTAssertGreaterThan(try int(store, "SELECT count(*) FROM token_deltas WHERE step = 4 AND category = 'chosen' AND delta != 0"), 0)
        // token_texts: every token and argmax id of the run's rows has its text, decoded alone by the run's tokenizer
        XCTAssertEqual(try int(store, """
            SELECT count(*) FROM (SELECT token AS id FROM token_logprobs UNION SELECT argmax FROM token_logprobs)
            WHERE id NOT IN (SELECT token FROM token_texts)
            """), 0)
        for row in try store.query("SELECT token, text FROM token_texts") {
            XCTAssertEqual(row[1].string, tokenizer.decode([Int32(row[0].int!)]))
        }
        XCTAssertEqual(try int(store, "SELECT count(*) FROM token_text_deltas WHERE token_text IS NULL"), 0)
        XCTAssertEqual(try int(store, "SELECT count(*) FROM token_text_deltas"), try int(store, "SELECT count(*) FROM token_deltas"))
    }

    /// The measures change nothing that was recorded before them, and per-token rows are recorded only when asked.
    func testLogprobsAreTheSameWithAndWithoutTokenRows() throws {
        let with = try run(tokens: true), without = try run(tokens: false)
        let sql = """
            SELECT l.step, r.category, p.idx, l.logprob, l.n_tokens FROM logprobs l JOIN responses r ON r.id = l.response_id
            JOIN probes p ON p.id = r.probe_id ORDER BY l.step, r.category, p.idx
            """
        XCTAssertEqual(try with.query(sql), try without.query(sql))
        XCTAssertEqual(try int(without, "SELECT count(*) FROM token_logprobs"), 0)
        XCTAssertGreaterThan(try int(with, "SELECT count(*) FROM token_logprobs"), 0)
    }

    /// `train.checkpoint_activations`: a run records the same numbers, bit for bit (training recomputes each
    /// block's activations in backward; the gradients are identical).
    func testCheckpointedActivationsRecordTheSameRun() throws {
        let plain = try run(tokens: false), checkpointed = try run(tokens: false, checkpointed: true)
        let logprobs = "SELECT l.step, r.category, p.idx, l.logprob FROM logprobs l JOIN responses r ON r.id = l.response_id JOIN probes p ON p.id = r.probe_id ORDER BY 1, 2, 3"
        XCTAssertEqual(try plain.query(logprobs), try checkpointed.query(logprobs))
        let metrics = "SELECT step, name, value FROM train_metrics WHERE name IN ('loss', 'grad_norm') ORDER BY 1, 2"
        XCTAssertEqual(try plain.query(metrics), try checkpointed.query(metrics))
        XCTAssertEqual(try plain.query(metrics).count, 8)
    }

    /// A version-1 store (written by commit 59e209a) opens and migrates: its log-probabilities are untouched,
    /// `mean_token_logprob` is filled in from them, and `measure_curves` agrees with `category_curves`.
    func testAnOldStoreMigratesAndKeepsItsNumbers() throws {
        let path = dir.appendingPathComponent("legacy.sqlite").path
        try Database(path: path, journalModeWAL: false)
            .executeScript(String(contentsOf: dir.appendingPathComponent("legacy-59e209a.sql"), encoding: .utf8))
        let before = try Database(path: path, journalModeWAL: false).query("SELECT * FROM logprobs ORDER BY run_id, step, response_id")
        XCTAssertGreaterThan(before.count, 0)
        let store = try RunStore(path: path)
        XCTAssertEqual(try store.storedSchemaVersion(), RunStore.schemaVersion)
        XCTAssertEqual(try store.query("SELECT * FROM logprobs ORDER BY run_id, step, response_id"), before)
        XCTAssertEqual(try int(store, "SELECT count(*) FROM measures WHERE name = 'mean_token_logprob'"), before.count)
        XCTAssertEqual(try int(store, """
            SELECT count(*) FROM measures m JOIN logprobs l USING (run_id, step, response_id)
            WHERE m.value != l.logprob / l.n_tokens
            """), 0)
        XCTAssertEqual(try int(store, """
            SELECT count(*) FROM measure_curves m JOIN category_curves c USING (run_id, step, category, split)
            WHERE (m.measure = 'logprob' AND abs(m.mean - c.mean_logprob) > 1e-9)
               OR (m.measure = 'mean_token_logprob' AND abs(m.mean - c.mean_token_logprob) > 1e-9)
            """), 0)
        XCTAssertEqual(try int(store, "SELECT count(*) FROM measure_curves"), 2 * (try int(store, "SELECT count(*) FROM category_curves")))
    }
}
