import Base
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
                       responses: [ProbeResponse(category: "chosen", text: String(repeating: "r", count: 2000), origin: "data")])
        }
        XCTAssertEqual(assertStoreError(try store.recordProbeSet(name: "big", probes: probes))?.sqliteCode, SQLITE_FULL)
        XCTAssertEqual(try store.query("SELECT count(*) FROM probes"), [[0]])

        // Once there is room again, the same writes succeed.
        try store.query("PRAGMA max_page_count = 1000000")
        try store.writeTrainMetrics(runID: runs[0], step: 2, metrics: metrics)
        XCTAssertEqual(try store.recordProbeSet(name: "big", probes: probes).count, 20)
        XCTAssertEqual(try store.query("PRAGMA integrity_check"), [["ok"]])
    }

    /// SQLite reports a write refused for lack of room (EFBIG from the file size limit, EDQUOT, ENOSPC
    /// while syncing) as an I/O error, often with no system errno; the store calls it what it is for
    /// the user, a full disk, and keeps SQLite's own message.
    func testIOErrorsFromLackOfRoomAreSQLITE_FULL() throws {
        // Extended result codes are C macros that Swift does not import: SQLITE_IOERR | (n << 8).
        let SQLITE_IOERR_READ = SQLITE_IOERR | 1 << 8, SQLITE_IOERR_WRITE = SQLITE_IOERR | 3 << 8
        let SQLITE_IOERR_FSYNC = SQLITE_IOERR | 4 << 8
        let dir = try temporaryDirectory(self)
        let path = dir + "/runs.sqlite"
        _ = FileManager.default.createFile(atPath: path, contents: Data(count: 4096))
        _ = FileManager.default.createFile(atPath: path + "-wal", contents: Data(count: 200_000))

        // The system error says so.
        let tooLarge = Database.noRoom(code: SQLITE_IOERR_WRITE, message: "disk I/O error", systemErrno: EFBIG, path: path, fileSizeLimit: nil)
        XCTAssertEqual(tooLarge.code, SQLITE_FULL)
        XCTAssertEqual(tooLarge.message, "disk I/O error (\(String(cString: strerror(EFBIG))))")
        XCTAssertEqual(Database.noRoom(code: SQLITE_IOERR_FSYNC, message: "m", systemErrno: EDQUOT, path: path, fileSizeLimit: nil).code, SQLITE_FULL)
        // No errno, but the -wal file is at the process's file size limit.
        let atLimit = Database.noRoom(code: SQLITE_IOERR, message: "disk I/O error", systemErrno: 0, path: path, fileSizeLimit: 200_000)
        XCTAssertEqual(atLimit.code, SQLITE_FULL)
        XCTAssertEqual(atLimit.message, "disk I/O error (\(path)-wal reached the file size limit of 200000 bytes (ulimit -f))")
        // Far from the limit, or no limit, on a file system with room: the I/O error stays what it is.
        XCTAssertEqual(Database.noRoom(code: SQLITE_IOERR_WRITE, message: "m", systemErrno: 0, path: path, fileSizeLimit: 1 << 30).code, SQLITE_IOERR_WRITE)
        XCTAssertEqual(Database.noRoom(code: SQLITE_IOERR_READ, message: "m", systemErrno: EIO, path: path, fileSizeLimit: nil).code, SQLITE_IOERR_READ)
        // Other codes are never reinterpreted.
        XCTAssertEqual(Database.noRoom(code: SQLITE_CONSTRAINT, message: "m", systemErrno: EFBIG, path: path, fileSizeLimit: 1).code, SQLITE_CONSTRAINT)
    }

    #if os(Linux)
    /// A real refused write: this process may not grow any file past a limit set just above the
    /// WAL's current size (RLIMIT_FSIZE, with SIGXFSZ ignored, as `ulimit -f` does), so the
    /// commit of a large transaction fails with EFBIG. Nothing of it is kept; with room again it succeeds.
    func testAFileThatMayNotGrowIsAFullDiskAndLeavesNothingHalfWritten() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 1)
        try store.writeTrainMetrics(runID: runs[0], step: 1, metrics: [("loss", 2)])
        let walSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: store.path + "-wal")[.size] as? Int)
        let resource = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
        var saved = rlimit()
        XCTAssertEqual(getrlimit(resource, &saved), 0)
        let savedHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = saved
        limited.rlim_cur = rlim_t(walSize + 16 * 4096)
        XCTAssertEqual(setrlimit(resource, &limited), 0)
        let metrics = (0..<4000).map { (name: "metric_\($0)_" + String(repeating: "x", count: 40), value: Double($0)) }
        let error = assertStoreError(try store.writeTrainMetrics(runID: runs[0], step: 2, metrics: metrics))
        XCTAssertEqual(setrlimit(resource, &saved), 0)
        signal(SIGXFSZ, savedHandler)

        XCTAssertEqual(error?.sqliteCode, SQLITE_FULL)
        let text = error?.description ?? ""
        XCTAssertTrue(text.hasPrefix("\(store.path): the disk (or the database size limit) is full: "), text)
        XCTAssertTrue(text.contains("file size limit") || text.contains(String(cString: strerror(EFBIG))), text)
        XCTAssertEqual(try store.query("SELECT count(*) FROM train_metrics"), [[1]])
        try store.writeTrainMetrics(runID: runs[0], step: 2, metrics: metrics)
        XCTAssertEqual(try store.query("SELECT count(*) FROM train_metrics"), [[.integer(1 + 4000)]])
        XCTAssertEqual(try store.query("PRAGMA integrity_check"), [["ok"]])
    }
    #endif
}
