import Base
import Foundation
@testable import RunStore
import XCTest

/// `alignscope merge` against the real executable: runs of one sweep written with `run --only` into one store each
/// (as cluster tasks or several machines would) and merged into an empty store hold what one store running the
/// whole sweep holds, ids aside; merging again adds nothing; a shard whose rows disagree with the main store is
/// refused naming the run, with nothing of it merged; a shard of an older schema version is migrated first.
extension ReliabilityTests {
    func testShardsMergeIntoWhatOneStoreHolds() throws {
        let spec = "reliability-sweep.json5"
        let whole = try run(["run", spec, "--db", path("whole.sqlite"), "--quiet"])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        let reference = try snapshot(path("whole.sqlite"))
        let names = try RunStore(path: path("whole.sqlite"), readOnly: true).query("SELECT name FROM runs ORDER BY id").map { $0[0].string! }
        XCTAssertEqual(names.count, 6)
        var shards: [String] = []
        for (k, name) in names.enumerated() {
            let shard = path("shard-\(k).sqlite")
            let r = try run(["run", spec, "--db", shard, "--only", name, "--checkpoints", path("ck-\(k)"), "--quiet"])
            XCTAssertEqual(r.status, 0, r.stderr)
            shards.append(shard)
        }
        let main = path("main.sqlite")
        let merged = try run(["merge", "--db", main] + shards)
        XCTAssertEqual(merged.status, 0, merged.stderr)
        var got = try snapshot(main)
        // runs planned but not run in a shard are "planned" there; the shard that ran each one brought it in finished
        for table in ["runs", "logprobs", "train_metrics", "samples"] {
            XCTAssertEqual(got[table]?.count, reference[table]?.count, table)
            XCTAssertEqual(got[table], reference[table], "\(table) after merging")
        }
        // probes and responses by content: none doubled
        let store = try RunStore(path: main, readOnly: true)
        XCTAssertEqual(try store.query("SELECT count(*) FROM responses"), try RunStore(path: path("whole.sqlite"), readOnly: true).query("SELECT count(*) FROM responses"))
        // idempotent
        let again = try run(["merge", "--db", main] + shards)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout.components(separatedBy: "nothing new").count - 1, shards.count, again.stdout)
        got = try snapshot(main)
        XCTAssertEqual(got["logprobs"], reference["logprobs"])

        // a shard that disagrees: refused with the run named, nothing of it merged
        let bad = path("bad.sqlite")
        try FileManager.default.copyItem(atPath: shards[2], toPath: bad)
        let badStore = try RunStore(path: bad)
        let first = try badStore.query("SELECT run_id, step, response_id FROM logprobs ORDER BY run_id, step, response_id LIMIT 1")[0]
        _ = try badStore.query("UPDATE logprobs SET logprob = logprob + 1 WHERE run_id = ? AND step = ? AND response_id = ?", first)
        let name = try badStore.query("SELECT name FROM runs WHERE id = ?", [first[0]])[0][0].string!
        _ = try badStore.query("INSERT INTO train_metrics (run_id, step, name, value) SELECT id, 999, 'loss', 1 FROM runs LIMIT 1")
        let refused = try run(["merge", "--db", main, bad])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("run \(name) holds other logprobs rows here than in the main store; nothing was merged"), refused.stderr)
        XCTAssertEqual(try store.query("SELECT count(*) FROM train_metrics WHERE step = 999")[0][0].int, 0, "nothing of the refused shard was merged")

        // into an empty store, a shard of schema version 1 (the store of commit 59e209a): migrated, then merged
        let legacy = path("legacy.sqlite")
        let sql = try String(contentsOf: Bundle.module.url(forResource: "Fixtures/legacy-59e209a.sql", withExtension: nil)!, encoding: .utf8)
        try Database(path: legacy, journalModeWAL: false).executeScript(sql)
        let before = try RunStore(path: legacy, readOnly: true)
        XCTAssertLessThan(try before.storedSchemaVersion(), RunStore.schemaVersion)
        let legacyRows = try before.query("SELECT count(*) FROM logprobs")[0][0].int!
        let fresh = try run(["merge", "--db", path("fresh.sqlite"), legacy])
        XCTAssertEqual(fresh.status, 0, fresh.stderr)
        XCTAssertEqual(try RunStore(path: legacy, readOnly: true).storedSchemaVersion(), RunStore.schemaVersion)
        XCTAssertEqual(try RunStore(path: path("fresh.sqlite"), readOnly: true).query("SELECT count(*) FROM logprobs")[0][0].int, legacyRows)
        XCTAssertGreaterThan(legacyRows, 0)
    }
}
