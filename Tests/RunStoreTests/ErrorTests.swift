import CSQLite
import Foundation
import XCTest

@testable import RunStore

/// Stores that cannot be written: each failure is one clear line and leaves the store as it was.
final class ErrorTests: XCTestCase {
    func testAReadOnlyConnectionRefusesWritesClearly() throws {
        let path = try temporaryDirectory(self) + "/runs.sqlite"
        _ = try seedRuns(RunStore(path: path), count: 2)
        let store = try RunStore(path: path, readOnly: true)
        XCTAssertEqual(try store.statusRows().count, 2, "reading works")
        let error = assertStoreError(try store.recordExperiment(name: "new", spec: "{}", specSHA256: "x"))
        XCTAssertEqual(error?.sqliteCode, SQLITE_READONLY)
        let text = error?.description ?? ""
        XCTAssertTrue(text.hasPrefix("\(path): the database is read-only (check the permissions"), text)
        XCTAssertTrue(text.contains("attempt to write a readonly database [SQLITE_READONLY]"), text)
        XCTAssertTrue(text.contains("(while running: INSERT INTO experiments (name, spec, spec_sha256)"), text)
    }

    static let childPathVariable = "RUNSTORE_TEST_READONLY_FILE"

    /// A file without write permission is refused when the store is opened, not at the first
    /// write. Root may write any file, so under root the check re-runs this test as `nobody`.
    func testAReadOnlyFileIsRefusedOnOpen() throws {
        if let path = ProcessInfo.processInfo.environment[Self.childPathVariable] {
            return try checkReadOnlyFile(path)
        }
        let dir = try temporaryDirectory(self)
        let path = dir + "/runs.sqlite"
        _ = try seedRuns(RunStore(path: path), count: 1)
        XCTAssertEqual(chmod(path, 0o444), 0)
        if geteuid() != 0 { return try checkReadOnlyFile(path) }
        #if os(Linux)
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
                throw XCTSkip("running as root and /usr/bin/setpriv is missing: cannot open a file as a user who may not write it")
            }
            // The directory stays writable for the other user (as /tmp is): SQLite's WAL readers
            // need to create the -shm file beside the database.
            XCTAssertEqual(chmod(dir, 0o1777), 0)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = [
                "--reuid=65534", "--regid=65534", "--clear-groups", CommandLine.arguments[0],
                "RunStoreTests.ErrorTests/testAReadOnlyFileIsRefusedOnOpen",
            ]
            process.environment = ProcessInfo.processInfo.environment.merging([Self.childPathVariable: path]) { $1 }
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, text)
            XCTAssertTrue(text.contains("Executed 1 test, with 0 failures"), text)
        #else
            throw XCTSkip("running as root: cannot make a file read-only for this process")
        #endif
    }

    private func checkReadOnlyFile(_ path: String) throws {
        XCTAssertEqual(
            assertStoreError(try RunStore(path: path)),
            .readOnly(path: path, detail: "the file is not writable by this user"))
        XCTAssertEqual(
            StoreError.readOnly(path: path, detail: "the file is not writable by this user").description,
            "\(path): the database is read-only: the file is not writable by this user")
        XCTAssertEqual(try RunStore(path: path, readOnly: true).statusRows().count, 1, "reading still works")
    }

    /// SQLite's page limit stands in for a full disk: SQLite reports both as SQLITE_FULL.
    func testAFullDiskGivesAClearErrorAndLeavesNothingHalfWritten() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 1)
        try store.writeTrainMetrics(runID: runs[0], step: 1, metrics: [("loss", 2)])
        let pages = try store.query("PRAGMA page_count")[0][0].int64!
        XCTAssertEqual(try store.query("PRAGMA max_page_count = \(pages + 1)"), [[.integer(pages + 1)]])

        let metrics = (0..<2000).map { (name: "metric_\($0)", value: Double($0)) }
        let error = assertStoreError(try store.writeTrainMetrics(runID: runs[0], step: 2, metrics: metrics))
        XCTAssertEqual(error?.sqliteCode, SQLITE_FULL)
        let text = error?.description ?? ""
        XCTAssertTrue(text.hasPrefix("\(store.path): the disk (or the database size limit) is full: database or disk is full [SQLITE_FULL]"), text)
        XCTAssertEqual(try store.query("SELECT count(*) FROM train_metrics"), [[1]])

        let probes = (0..<20).map {
            ProbeEntry(idx: $0, prompt: String(repeating: "p", count: 2000), split: "train",
                       responses: [ResponseEntry(category: "chosen", text: String(repeating: "r", count: 2000), origin: "data")])
        }
        XCTAssertEqual(assertStoreError(try store.recordProbeSet(name: "big", probes: probes))?.sqliteCode, SQLITE_FULL)
        XCTAssertEqual(try store.query("SELECT count(*) FROM probes"), [[0]])

        // Once there is room again, the same writes succeed.
        try store.query("PRAGMA max_page_count = 1000000")
        try store.writeTrainMetrics(runID: runs[0], step: 2, metrics: metrics)
        XCTAssertEqual(try store.recordProbeSet(name: "big", probes: probes).count, 20)
        XCTAssertEqual(try store.query("PRAGMA integrity_check"), [["ok"]])
    }
}
