import CSQLite
import Foundation
import XCTest

@testable import RunStore

final class DatabaseTests: XCTestCase {
    func testOpenCreatesDirectoriesAndConfiguresConnection() throws {
        let path = try temporaryDirectory(self) + "/a/b/c/store.sqlite"
        let db = try Database(path: path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        XCTAssertEqual(try db.scalar("PRAGMA journal_mode"), .text("wal"))
        XCTAssertEqual(try db.scalar("PRAGMA foreign_keys"), .integer(1))
        XCTAssertEqual(try db.scalar("PRAGMA synchronous"), .integer(2))  // FULL
        XCTAssertEqual(try db.scalar("PRAGMA busy_timeout"), .integer(10_000))
    }

    func testValuesRoundTripThroughParameters() throws {
        let db = try Database(path: try temporaryDirectory(self) + "/v.sqlite")
        try db.execute("CREATE TABLE t (x)")
        let values: [SQLiteValue] = [
            .null, .integer(Int64.min), .integer(42), .real(-1.5e-300), .real(-.infinity), .text(""),
            .text("héllo \u{1F600}\nline"), .text("nul\u{0}inside"), .blob([]), .blob([0, 255, 7]),
        ]
        for value in values { try db.execute("INSERT INTO t (x) VALUES (?)", [value]) }
        XCTAssertEqual(try db.query("SELECT x FROM t ORDER BY rowid").map { $0[0] }, values)
        XCTAssertEqual(try db.rows("SELECT 1 AS one, 'a' AS letter"), [["one": 1, "letter": "a"]])
    }

    func testRejectsSeveralStatementsAndWrongParameterCounts() throws {
        let db = try Database(path: ":memory:")
        let several = assertStoreError(try db.execute("SELECT 1; SELECT 2"))
        XCTAssertTrue(several?.description.contains("only one statement") ?? false, "\(String(describing: several))")
        let count = assertStoreError(try db.query("SELECT ?, ?", [1]))
        XCTAssertTrue(count?.description.contains("2 parameters, 1 given") ?? false, "\(String(describing: count))")
        let syntax = assertStoreError(try db.query("SELEC 1"))
        XCTAssertEqual(syntax?.sqliteCode, SQLITE_ERROR)
        XCTAssertTrue(syntax?.description.contains("SELEC 1") ?? false, "the SQL is named: \(String(describing: syntax))")
    }

    func testNamedParametersBindByNameAndRefuseMissingOrUnknownOnes() throws {
        let db = try Database(path: ":memory:")
        XCTAssertEqual(try db.query("SELECT :b, @a, :b, $c", named: ["a": 1, ":b": "x", "c": 2.5]), [["x", 1, "x", 2.5]])
        let missing = assertStoreError(try db.query("SELECT :a, :b", named: ["a": 1]))
        XCTAssertTrue(missing?.description.contains("no value for :b") ?? false, "\(String(describing: missing))")
        let unknown = assertStoreError(try db.query("SELECT :a", named: ["a": 1, "typo": 2]))
        XCTAssertTrue(unknown?.description.contains("has no parameter typo") ?? false, "\(String(describing: unknown))")
        let positional = assertStoreError(try db.query("SELECT ?", named: [:]))
        XCTAssertTrue(positional?.description.contains("not named") ?? false, "\(String(describing: positional))")
    }

    func testTransactionRollsBackOnErrorAndNestsAsSavepoints() throws {
        let db = try Database(path: try temporaryDirectory(self) + "/t.sqlite")
        try db.execute("CREATE TABLE t (x INTEGER)")
        struct Boom: Error {}
        XCTAssertThrowsError(
            try db.transaction {
                try db.execute("INSERT INTO t VALUES (1)")
                throw Boom()
            })
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t"), 0)
        try db.transaction {
            try db.execute("INSERT INTO t VALUES (1)")
            XCTAssertThrowsError(
                try db.transaction {
                    try db.execute("INSERT INTO t VALUES (2)")
                    throw Boom()
                })
            try db.transaction { try db.execute("INSERT INTO t VALUES (3)") }
        }
        XCTAssertEqual(try db.query("SELECT x FROM t ORDER BY x").map { $0[0] }, [1, 3])
    }

    func testSqrtIsAvailableAndTheFallbackComputesTheSameFunction() throws {
        let db = try Database(path: ":memory:")
        XCTAssertEqual(try db.scalar("SELECT sqrt(6.25)"), .real(2.5))
        // The fallback is registered only when the library lacks sqrt; exercise it under another name.
        var raw: OpaquePointer?
        XCTAssertEqual(sqlite3_open(":memory:", &raw), SQLITE_OK)
        defer { sqlite3_close(raw) }
        XCTAssertEqual(Database.registerSqrt(on: raw!, name: "fallback_sqrt"), SQLITE_OK)
        var statement: OpaquePointer?
        XCTAssertEqual(
            sqlite3_prepare_v2(raw, "SELECT fallback_sqrt(6.25), fallback_sqrt(-1), fallback_sqrt(NULL), fallback_sqrt(9)",
                               -1, &statement, nil), SQLITE_OK)
        defer { sqlite3_finalize(statement) }
        XCTAssertEqual(sqlite3_step(statement), SQLITE_ROW)
        XCTAssertEqual(sqlite3_column_double(statement, 0), 2.5)
        XCTAssertEqual(sqlite3_column_type(statement, 1), SQLITE_NULL)
        XCTAssertEqual(sqlite3_column_type(statement, 2), SQLITE_NULL)
        XCTAssertEqual(sqlite3_column_double(statement, 3), 3)
    }

    func testDatabaseUnderARegularFileGivesAClearError() throws {
        let dir = try temporaryDirectory(self)
        _ = FileManager.default.createFile(atPath: dir + "/plain", contents: Data("x".utf8))
        let error = assertStoreError(try Database(path: dir + "/plain/sub/store.sqlite"))
        guard case .cannotCreateDirectory(_, let directory, _)? = error else {
            return XCTFail("expected cannotCreateDirectory, got \(String(describing: error))")
        }
        XCTAssertEqual(directory, dir + "/plain/sub")
        XCTAssertTrue(error!.description.hasPrefix(dir + "/plain/sub/store.sqlite: cannot create the directory"))
    }

    func testNotADatabaseGivesAClearError() throws {
        let path = try temporaryDirectory(self) + "/junk.sqlite"
        _ = FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x41, count: 4096))
        let error = assertStoreError(try RunStore(path: path))
        XCTAssertEqual(error?.sqliteCode, SQLITE_NOTADB)
        XCTAssertTrue(error?.description.hasPrefix(path + ": the file is not a valid SQLite database") ?? false,
                      "\(String(describing: error))")
    }
}
