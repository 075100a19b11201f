import Foundation
import XCTest

@testable import RunStore

final class SchemaTests: XCTestCase {
    func testCreatesEveryTableViewAndTheVersion() throws {
        let store = try temporaryStore(self)
        XCTAssertEqual(try store.storedSchemaVersion(), RunStore.schemaVersion)
        XCTAssertEqual(RunStore.schemaVersion, 8)
        let objects = Set(
            try store.query("SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
                .compactMap { $0[0].string })
        for expected in [
            "table schema_version", "table experiments", "table runs", "table params", "table probes",
            "table responses", "table logprobs", "table train_metrics", "view category_curves", "view logprob_deltas",
            "view run_overview", "view response_scores",
        ] {
            XCTAssertTrue(objects.contains(expected), "missing \(expected); have \(objects.sorted())")
        }
    }

    /// The DESIGN.md schema is a public interface: every documented column, in order.
    func testColumnsMatchTheDesign() throws {
        let store = try temporaryStore(self)
        func columns(_ table: String) throws -> [String] {
            try store.query("SELECT name FROM pragma_table_info(?) ORDER BY cid", [.text(table)]).map { $0[0].string! }
        }
        XCTAssertEqual(try columns("experiments"), ["id", "name", "spec", "spec_sha256", "created_at"])
        XCTAssertEqual(
            try columns("runs"),
            ["id", "experiment_id", "name", "config", "config_sha256", "seed", "status", "error", "created_at",
             "started_at", "finished_at", "last_step", "owner", "heartbeat_at"])
        XCTAssertEqual(try columns("params"), ["run_id", "key", "value"])
        XCTAssertEqual(try columns("probes"), ["id", "probe_set", "idx", "prompt", "split"])
        XCTAssertEqual(try columns("responses"), ["id", "probe_id", "category", "text", "origin"])
        XCTAssertEqual(try columns("logprobs"), ["run_id", "step", "response_id", "logprob", "n_tokens"])
        XCTAssertEqual(try columns("train_metrics"), ["run_id", "step", "name", "value"])
        XCTAssertEqual(
            try columns("category_curves"),
            ["run_id", "step", "category", "split", "mean_logprob", "mean_token_logprob", "sem", "n"])
        XCTAssertEqual(
            try columns("logprob_deltas"),
            ["run_id", "step", "response_id", "probe_id", "category", "split", "logprob", "start_logprob", "delta"])
        XCTAssertEqual(try columns("measures"), ["run_id", "step", "response_id", "name", "value"])
        XCTAssertEqual(try columns("token_logprobs"), ["run_id", "step", "response_id", "position", "token", "logprob", "argmax", "gain_token", "gain"])
        XCTAssertEqual(try columns("attributions"), ["run_id", "step", "response_id", "logprob", "predicted", "observed"])
        XCTAssertEqual(try columns("influences"), ["run_id", "step", "response_id", "example", "data_line", "contribution", "cosine"])
        XCTAssertEqual(try columns("pair_measures"), ["run_id", "step", "example", "data_line", "name", "value"])
        XCTAssertEqual(try columns("run_origins"), ["run_id", "store_id"])
        XCTAssertEqual(try columns("run_jobs"), ["run_id", "job_id", "submitted_at"])
        XCTAssertEqual(try columns("samples"), ["run_id", "step", "data_line", "sample", "prompt", "text", "reward", "kl", "advantage", "n_tokens", "eos"])
        XCTAssertEqual(try columns("measure_curves"), ["run_id", "step", "category", "split", "measure", "mean", "sem", "n"])
        XCTAssertEqual(
            try columns("token_deltas"),
            ["run_id", "step", "response_id", "probe_id", "category", "split", "position", "n_tokens", "token", "logprob",
             "first_logprob", "delta"])
    }

    func testReopeningIsIdempotentAndKeepsData() throws {
        let path = try temporaryDirectory(self) + "/runs.sqlite"
        let first = try RunStore(path: path)
        try first.recordExperiment(name: "e", spec: "{}", specSHA256: "s")
        let second = try RunStore(path: path)
        let third = try RunStore(path: path)
        XCTAssertEqual(try third.query("SELECT version FROM schema_version"), [[1], [2], [3], [4], [5], [6], [7], [8]])
        XCTAssertEqual(try second.experiment(name: "e")?.specSHA256, "s")
    }

    func testConcurrentFirstOpensMigrateOnce() throws {
        let path = try temporaryDirectory(self) + "/runs.sqlite"
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do { _ = try RunStore(path: path) } catch { failures.add("\(error)") }
        }
        XCTAssertEqual(failures.all, [])
        XCTAssertEqual(try RunStore(path: path).query("SELECT count(*) FROM schema_version"), [[8]])
    }

    func testANewerSchemaIsRefused() throws {
        let path = try temporaryDirectory(self) + "/runs.sqlite"
        try RunStore(path: path).query("INSERT INTO schema_version (version) VALUES (10)")
        let error = assertStoreError(try RunStore(path: path))
        XCTAssertEqual(error, .schemaTooNew(path: path, found: 10, supported: 8))
        XCTAssertEqual(
            error?.description,
            "\(path): schema version 10 is newer than this AlignScope supports (8); use a newer alignscope")
    }

    func testReadOnlyOpenNeedsAnExistingStore() throws {
        let dir = try temporaryDirectory(self)
        XCTAssertEqual(
            assertStoreError(try RunStore(path: dir + "/missing.sqlite", readOnly: true)),
            .notFound(path: dir + "/missing.sqlite", what: "database file"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/missing.sqlite"))
    }
}

/// Thread-safe collector of failure messages from concurrent work.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ message: String) { lock.lock(); messages.append(message); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return messages }
}
