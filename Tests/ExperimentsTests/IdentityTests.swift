import Base
import Foundation
@testable import RunStore
import XCTest
@testable import Experiments

/// Run identities survive upgrades (issue 16): the typed config encodes exactly what the first version
/// hashed, a store written by commit 59e209a (before the redesign) still recognises its finished runs,
/// and a key added later with a default leaves every identity unchanged while it has that default.
final class IdentityTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("alignscope-identity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["tiny-sweep.json5", "tiny-stages.json5", "tiny-train.jsonl", "tiny-probes.jsonl", "legacy-59e209a.sql"] {
            try FileManager.default.copyItem(at: Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!,
                                             to: dir.appendingPathComponent(name))
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func experiments() throws -> [Experiment] {
        try ["tiny-sweep.json5", "tiny-stages.json5"].map { try Experiment.load(path: dir.appendingPathComponent($0).path) }
    }

    /// legacy-59e209a.sql: `sqlite3 .dump` of the store that `alignscope run` of both specs wrote with the
    /// executable of commit 59e209a (schema version 1, the hand-written config encoder), kept as text so
    /// that no database is committed. Rebuilt into a file, then opened: opening migrates it to version 2;
    /// every planned run is found by its identity, finished, and nothing is trained again.
    func testAStoreWrittenBeforeTheRedesignKeepsItsFinishedRuns() throws {
        let path = dir.appendingPathComponent("legacy-59e209a.sqlite").path
        try Database(path: path, journalModeWAL: false)
            .executeScript(String(contentsOf: dir.appendingPathComponent("legacy-59e209a.sql"), encoding: .utf8))
        let store = try RunStore(path: path)
        XCTAssertEqual(try store.storedSchemaVersion(), RunStore.schemaVersion)
        let before = try store.query("SELECT count(*) FROM runs")
        for experiment in try experiments() {
            for run in experiment.runs {
                let record = try XCTUnwrap(try store.run(configSHA256: run.configSHA256), "\(run.name): identity not found")
                XCTAssertEqual(record.name, run.name)
                XCTAssertEqual(record.status, .finished)
                XCTAssertEqual(record.config, run.configJSON, "\(run.name): stored config differs")
            }
            let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
            let summary = try executor.runAll()
            XCTAssertEqual(summary.finished, [])
            XCTAssertEqual(summary.skipped.map(\.reason), Array(repeating: "finished", count: experiment.runs.count))
        }
        XCTAssertEqual(try store.query("SELECT count(*) FROM runs"), before)
    }

    /// The identity rule: a key listed with its default in `defaultedSinceV1` is left out while it has that
    /// default. A newer build that adds `train.precision: "fp32"` gives every run the identity it has today,
    /// and a run that sets another value gets a new one.
    func testAddingADefaultedKeyKeepsEveryIdentity() throws {
        for experiment in try experiments() {
            for run in experiment.runs {
                var tree = run.config.json
                XCTAssertEqual(RunConfig.identityTree(tree, defaulted: [:]).canonical, run.configJSON)
                tree.set(.string("fp32"), at: ["train", "precision"])
                let newer = RunConfig.identityTree(tree, defaulted: ["train.precision": .string("fp32")]).canonical
                XCTAssertEqual(newer, run.configJSON, run.name)
                XCTAssertEqual(SHA256.hex(Array(newer.utf8)), run.configSHA256)
                tree.set(.string("bf16"), at: ["train", "precision"])
                XCTAssertNotEqual(RunConfig.identityTree(tree, defaulted: ["train.precision": .string("fp32")]).canonical, run.configJSON)
            }
        }
    }

    /// The resolved config read back by the same decoder is the same config (the encoder writes what the
    /// decoder reads).
    func testTheResolvedConfigDecodesToItself() throws {
        for experiment in try experiments() {
            for run in experiment.runs {
                let again = try JSONDecoder().decode(RunConfig.self, from: Data(run.configJSON.utf8))
                XCTAssertEqual(again, run.config, run.name)
            }
        }
    }
}
