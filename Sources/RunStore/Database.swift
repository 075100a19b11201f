import CSQLite
import Foundation

/// A connection to one SQLite database file, configured for AlignScope's use:
/// WAL journal, `synchronous=FULL`, foreign keys on, a busy timeout, and a cache of prepared
/// statements. Every statement is prepared and parameterised (`?` placeholders).
///
/// One `Database` may be shared between threads: calls are serialised by a recursive lock, and a
/// `transaction` holds it for its whole body. Several processes may open the same file; writers
/// wait for each other (busy timeout, then retries of `BEGIN IMMEDIATE`), readers never wait.
public final class Database: @unchecked Sendable {
    /// The path given to `init`.
    public let path: String
    /// True when opened with `readOnly: true`.
    public let isReadOnly: Bool
    /// True for ":memory:" and other in-memory databases.
    public let isInMemory: Bool
    /// True when the SQLite library lacked `sqrt` and the connection registered its own.
    public private(set) var registeredSqrtFallback = false

    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]
    private let lock = NSRecursiveLock()
    private var savepointDepth = 0

    /// How many prepared statements are kept before the cache is emptied.
    static let statementCacheLimit = 64
    /// How often `BEGIN IMMEDIATE` is retried after the busy timeout ran out.
    static let beginRetries = 5

    /// Opens (and creates, with its parent directories, unless `readOnly`) the database at `path`.
    /// - Parameter busyTimeout: seconds a statement waits for another connection's lock (polled
    ///   every millisecond, so a busy writer elsewhere cannot starve this one).
    /// - Throws: `StoreError.readOnly` when writing was asked for but the file cannot be written,
    ///   `StoreError.cannotCreateDirectory`, or `StoreError.sqlite` for anything SQLite refuses.
    /// - Parameter displayPath: the path named in errors when `path` is a URI (default: `path`).
    /// - Parameter journalModeWAL: switch the file to WAL when opened for writing (`enableWAL()` later otherwise).
    public init(path: String, readOnly: Bool = false, busyTimeout: Double = 10, displayPath: String? = nil,
                journalModeWAL: Bool = true) throws {
        self.path = displayPath ?? path
        self.isReadOnly = readOnly
        let inMemory = path.isEmpty || path == ":memory:" || path.hasPrefix("file::memory:")
        self.isInMemory = inMemory
        if !readOnly && !inMemory {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                do {
                    try FileManager.default.createDirectory(
                        atPath: directory, withIntermediateDirectories: true)
                } catch {
                    throw StoreError.cannotCreateDirectory(
                        path: path, directory: directory, reason: Self.reason(of: error))
                }
            }
        }
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE))
            | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            let code = db.map { sqlite3_extended_errcode($0) } ?? rc
            let full = Self.noRoom(code: code, message: message, systemErrno: db.map { sqlite3_system_errno($0) } ?? 0, path: path)
            sqlite3_close_v2(db)
            throw StoreError.sqlite(path: path, code: full.code, message: full.message, sql: "open")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        // SQLite's own busy timeout sleeps up to 100 ms between attempts, so a process that
        // commits often (a tight training loop) can starve the others; poll every millisecond.
        // The context carries the timeout in milliseconds: each call sleeps at least 1 ms, so
        // `count` calls have waited at least `count` ms.
        let timeoutMs = Int(max(0, busyTimeout) * 1000)
        sqlite3_busy_handler(
            db,
            { context, count in
                guard Int(count) < Int(bitPattern: context) else { return 0 }
                usleep(1000)
                return 1
            }, UnsafeMutableRawPointer(bitPattern: timeoutMs))
        // SQLite silently falls back to read-only when the OS refuses write access; say so now
        // rather than at the first write, deep inside a run.
        if !readOnly && sqlite3_db_readonly(db, "main") == 1 {
            throw StoreError.readOnly(path: path, detail: "the file is not writable by this user")
        }
        try configure(wal: journalModeWAL)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    private func configure(wal: Bool) throws {
        try execute("PRAGMA foreign_keys = ON")
        if wal { try enableWAL() }
        var probe: OpaquePointer?
        if sqlite3_prepare_v2(handle, "SELECT sqrt(4.0)", -1, &probe, nil) != SQLITE_OK {
            let rc = Self.registerSqrt(on: handle, name: "sqrt")
            guard rc == SQLITE_OK else { throw error(rc, sql: "sqlite3_create_function_v2(sqrt)") }
            registeredSqrtFallback = true
        }
        sqlite3_finalize(probe)
    }

    /// Switches a database opened for writing to WAL with synchronous = FULL (no-op when read-only).
    public func enableWAL() throws {
        if !isReadOnly && !isInMemory {
            // Switching to WAL needs an exclusive lock; retry while another opener holds it.
            let mode = try retryingBusy { try query("PRAGMA journal_mode = WAL") }
            if mode.first?.first?.string?.lowercased() != "wal" {
                throw StoreError.sqlite(
                    path: path, code: SQLITE_ERROR,
                    message: "could not switch to WAL (journal_mode is \(mode.first?.first ?? .null))",
                    sql: "PRAGMA journal_mode = WAL")
            }
            // FULL: a committed evaluation survives a power cut, so resume never loses rows
            // that a checkpoint already counts.
            try execute("PRAGMA synchronous = FULL")
        }
    }

    /// Registers a deterministic one-argument square root under `name` (NULL for NULL or negative
    /// input, as SQLite's own `sqrt`). Used when the library was built without math functions.
    static func registerSqrt(on db: OpaquePointer, name: String) -> Int32 {
        sqlite3_create_function_v2(
            db, name, 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil,
            { context, argc, argv in
                guard argc == 1, let argv, let value = argv[0],
                    sqlite3_value_type(value) != SQLITE_NULL
                else {
                    sqlite3_result_null(context)
                    return
                }
                let x = sqlite3_value_double(value)
                if x < 0 { sqlite3_result_null(context) } else { sqlite3_result_double(context, x.squareRoot()) }
            }, nil, nil, nil)
    }

    // MARK: statements

    /// Runs one statement and returns every result row (column values in select order).
    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> [[SQLiteValue]] {
        try withStatement(sql, parameters) { statement in
            var result: [[SQLiteValue]] = []
            let count = sqlite3_column_count(statement)
            while try step(statement, sql) {
                result.append((0..<count).map { column(statement, $0) })
            }
            return result
        }
    }

    /// Runs one statement and returns every result row keyed by column name.
    public func rows(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> [[String: SQLiteValue]] {
        try withStatement(sql, .positional(parameters)) { statement in try keyedRows(statement, sql) }
    }

    private func keyedRows(_ statement: OpaquePointer, _ sql: String) throws -> [[String: SQLiteValue]] {
        let count = sqlite3_column_count(statement)
        let names = (0..<count).map { String(cString: sqlite3_column_name(statement, $0)) }
        var result: [[String: SQLiteValue]] = []
        while try step(statement, sql) {
            var row: [String: SQLiteValue] = [:]
            for i in 0..<Int(count) { row[names[i]] = column(statement, Int32(i)) }
            result.append(row)
        }
        return result
    }

    /// Runs one statement with named parameters (`:name`, `@name` or `$name` in the SQL; keys with
    /// or without the prefix). Every parameter of the statement must be given, and nothing else.
    @discardableResult
    public func query(_ sql: String, named parameters: [String: SQLiteValue]) throws -> [[SQLiteValue]] {
        try withStatement(sql, .named(parameters)) { statement in
            var result: [[SQLiteValue]] = []
            let count = sqlite3_column_count(statement)
            while try step(statement, sql) {
                result.append((0..<count).map { column(statement, $0) })
            }
            return result
        }
    }

    /// `query(_:named:)` with rows keyed by column name.
    public func rows(_ sql: String, named parameters: [String: SQLiteValue]) throws -> [[String: SQLiteValue]] {
        try withStatement(sql, .named(parameters)) { statement in try keyedRows(statement, sql) }
    }

    /// Runs one statement, discarding any result rows.
    /// - Returns: the rows it inserted, updated or deleted (read under the same lock, so another
    ///   thread's statement cannot interleave).
    @discardableResult
    public func execute(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> Int {
        try withStatement(sql, parameters) { statement in
            while try step(statement, sql) {}
            return sqlite3_stmt_readonly(statement) != 0 ? 0 : Int(sqlite3_changes(handle))
        }
    }

    /// The first column of the first row, or `.null` when there is no row.
    public func scalar(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> SQLiteValue {
        try withStatement(sql, parameters) { statement in
            let value = try step(statement, sql) ? column(statement, 0) : .null
            while try step(statement, sql) {}
            return value
        }
    }

    /// Rowid of the last successful INSERT on this connection.
    public var lastInsertRowID: Int64 { locked { sqlite3_last_insert_rowid(handle) } }

    /// Rows changed by the last INSERT, UPDATE or DELETE on this connection.
    public var changes: Int { locked { Int(sqlite3_changes(handle)) } }

    /// Runs a script of several statements without parameters (schema migrations only).
    func executeScript(_ sql: String) throws {
        try locked {
            var message: UnsafeMutablePointer<CChar>?
            let rc = sqlite3_exec(handle, sql, nil, nil, &message)
            if rc != SQLITE_OK {
                let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
                sqlite3_free(message)
                let full = Self.noRoom(code: sqlite3_extended_errcode(handle), message: text, systemErrno: sqlite3_system_errno(handle), path: path)
                throw StoreError.sqlite(path: path, code: full.code, message: full.message, sql: sql)
            }
        }
    }

    // MARK: transactions

    /// Runs `body` in one write transaction (`BEGIN IMMEDIATE`, so the write lock is taken up
    /// front and a concurrent writer cannot make us fail half-way). Commits when `body` returns,
    /// rolls back when it throws. Nested calls become savepoints.
    @discardableResult
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try locked {
            if savepointDepth > 0 || sqlite3_get_autocommit(handle) == 0 {
                return try savepoint(body)
            }
            try begin()
            savepointDepth = 1
            defer { savepointDepth = 0 }
            do {
                let value = try body()
                try execute("COMMIT")
                return value
            } catch {
                if sqlite3_get_autocommit(handle) == 0 { _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil) }
                throw error
            }
        }
    }

    private func savepoint<T>(_ body: () throws -> T) throws -> T {
        savepointDepth += 1
        defer { savepointDepth -= 1 }
        let name = "alignscope_sp\(savepointDepth)"
        try execute("SAVEPOINT \(name)")
        do {
            let value = try body()
            try execute("RELEASE \(name)")
            return value
        } catch {
            if sqlite3_get_autocommit(handle) == 0 {
                _ = sqlite3_exec(handle, "ROLLBACK TO \(name); RELEASE \(name)", nil, nil, nil)
            }
            throw error
        }
    }

    /// `BEGIN IMMEDIATE`: the busy handler already waits `busyTimeout`; if another writer still
    /// holds the lock after that, back off and try again a few times before giving up.
    private func begin() throws {
        var attempt = 0
        while true {
            do {
                try execute("BEGIN IMMEDIATE")
                return
            } catch let error as StoreError {
                guard let code = error.sqliteCode, code == SQLITE_BUSY || code == SQLITE_LOCKED,
                    attempt < Self.beginRetries
                else { throw error }
                attempt += 1
                usleep(UInt32(20_000 * attempt))
            }
        }
    }

    private func retryingBusy<T>(_ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try body()
            } catch let error as StoreError {
                guard error.sqliteCode == SQLITE_BUSY, attempt < Self.beginRetries * 10 else { throw error }
                attempt += 1
                usleep(UInt32(10_000 * attempt))
            }
        }
    }

    // MARK: internals

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private enum Bindings {
        case positional([SQLiteValue])
        case named([String: SQLiteValue])
    }

    private func withStatement<T>(
        _ sql: String, _ parameters: [SQLiteValue], _ body: (OpaquePointer) throws -> T
    ) throws -> T {
        try withStatement(sql, .positional(parameters), body)
    }

    private func withStatement<T>(
        _ sql: String, _ bindings: Bindings, _ body: (OpaquePointer) throws -> T
    ) throws -> T {
        try locked {
            let statement = try prepared(sql)
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            }
            let expected = Int(sqlite3_bind_parameter_count(statement))
            switch bindings {
            case .positional(let parameters):
                guard expected == parameters.count else {
                    throw StoreError.sqlite(
                        path: path, code: SQLITE_RANGE,
                        message: "statement has \(expected) parameters, \(parameters.count) given", sql: sql)
                }
                for (i, value) in parameters.enumerated() {
                    let rc = bind(statement, Int32(i + 1), value)
                    if rc != SQLITE_OK { throw error(rc, sql: sql) }
                }
            case .named(let parameters):
                var used = Set<String>()
                for i in 0..<Int32(expected) {
                    guard let cName = sqlite3_bind_parameter_name(statement, i + 1) else {
                        throw StoreError.sqlite(
                            path: path, code: SQLITE_RANGE, message: "parameter \(i + 1) is '?', not named", sql: sql)
                    }
                    let name = String(cString: cName)
                    let bare = String(name.dropFirst())
                    guard let value = parameters[name] ?? parameters[bare] else {
                        throw StoreError.sqlite(path: path, code: SQLITE_RANGE, message: "no value for \(name)", sql: sql)
                    }
                    used.insert(parameters[name] != nil ? name : bare)
                    let rc = bind(statement, i + 1, value)
                    if rc != SQLITE_OK { throw error(rc, sql: sql) }
                }
                if let extra = parameters.keys.sorted().first(where: { !used.contains($0) }) {
                    throw StoreError.sqlite(
                        path: path, code: SQLITE_RANGE, message: "the statement has no parameter \(extra)", sql: sql)
                }
            }
            return try body(statement)
        }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        if statements.count >= Self.statementCacheLimit {
            for statement in statements.values { sqlite3_finalize(statement) }
            statements.removeAll()
        }
        var statement: OpaquePointer?
        var rest = ""
        let rc = sql.withCString { text -> Int32 in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v2(handle, text, -1, &statement, &tail)
            if let tail { rest = String(cString: tail).trimmingCharacters(in: .whitespacesAndNewlines) }
            return rc
        }
        guard rc == SQLITE_OK, let statement else { throw error(rc, sql: sql) }
        guard rest.isEmpty || rest == ";" else {
            sqlite3_finalize(statement)
            throw StoreError.sqlite(
                path: path, code: SQLITE_MISUSE, message: "only one statement per call; found more after the first",
                sql: sql)
        }
        statements[sql] = statement
        return statement
    }

    /// One step: true when a row is ready, false when the statement is done.
    private func step(_ statement: OpaquePointer, _ sql: String) throws -> Bool {
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc: throw error(rc, sql: sql)
        }
    }

    private func bind(_ statement: OpaquePointer, _ index: Int32, _ value: SQLiteValue) -> Int32 {
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        switch value {
        case .null: return sqlite3_bind_null(statement, index)
        case .integer(let v): return sqlite3_bind_int64(statement, index, v)
        case .real(let v): return sqlite3_bind_double(statement, index, v)
        case .text(let s):
            let count = Int32(s.utf8.count)
            return s.withCString { sqlite3_bind_text(statement, index, $0, count, transient) }
        case .blob(let b):
            if b.isEmpty { return sqlite3_bind_zeroblob(statement, index, 0) }
            return b.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), transient) }
        }
    }

    private func column(_ statement: OpaquePointer, _ index: Int32) -> SQLiteValue {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, index))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, index))
        case SQLITE_TEXT:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard let text = sqlite3_column_text(statement, index) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard count > 0, let bytes = sqlite3_column_blob(statement, index) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
        default: return .null
        }
    }

    private func error(_ rc: Int32, sql: String) -> StoreError {
        let code = sqlite3_extended_errcode(handle)
        let full = Self.noRoom(code: code != SQLITE_OK ? code : rc, message: String(cString: sqlite3_errmsg(handle)),
                               systemErrno: sqlite3_system_errno(handle), path: path)
        return StoreError.sqlite(path: path, code: full.code, message: full.message, sql: sql)
    }

    /// SQLite says SQLITE_FULL when a write gets ENOSPC, but a write refused because the file may
    /// not grow (EFBIG: the file size limit, `ulimit -f`), a used-up quota, or a full device seen
    /// while syncing or mapping the -shm file all come back as an SQLITE_IOERR, and SQLite's
    /// `sqlite3_system_errno` is often 0 by then. So on an I/O error the store looks for lack of
    /// room itself (`lackOfRoom`); if it finds it, the error becomes SQLITE_FULL with the reason
    /// added to SQLite's message, because that is what the user must act on.
    static func noRoom(code: Int32, message: String, systemErrno: Int32, path: String,
                       fileSizeLimit: UInt64? = currentFileSizeLimit()) -> (code: Int32, message: String) {
        guard code & 0xff == SQLITE_IOERR,
            let reason = lackOfRoom(path: path, systemErrno: systemErrno, fileSizeLimit: fileSizeLimit)
        else { return (code, message) }
        return (SQLITE_FULL, "\(message) (\(reason))")
    }

    /// Why writing to the database at `path` may have failed for lack of room, or nil: the system
    /// error says so, or one of its files (database, -wal, -journal, -shm) is within 64 KiB of the
    /// process's file size limit, or its file system has less than 1 MiB available.
    static func lackOfRoom(path: String, systemErrno: Int32, fileSizeLimit: UInt64?) -> String? {
        if [ENOSPC, EFBIG, EDQUOT].contains(systemErrno) { return String(cString: strerror(systemErrno)) }
        if let limit = fileSizeLimit {
            for suffix in ["", "-wal", "-journal", "-shm"] {
                var info = stat()
                if stat(path + suffix, &info) == 0, UInt64(max(0, info.st_size)) + 65536 > limit {
                    return "\(path + suffix) reached the file size limit of \(limit) bytes (ulimit -f)"
                }
            }
        }
        let directory = (path as NSString).deletingLastPathComponent
        var fs = statvfs()
        if statvfs(directory.isEmpty ? "." : directory, &fs) == 0, UInt64(fs.f_bavail) * UInt64(fs.f_frsize) < 1 << 20 {
            return "no space left on the device"
        }
        return nil
    }

    /// This process's file size limit in bytes (RLIMIT_FSIZE), nil when unlimited.
    static func currentFileSizeLimit() -> UInt64? {
        var limit = rlimit()
        #if os(Linux)
            let resource = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
        #else
            let resource = RLIMIT_FSIZE
        #endif
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < rlim_t(Int64.max) else { return nil }
        return UInt64(limit.rlim_cur)
    }

    private static func reason(of error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError,
            underlying.domain == NSPOSIXErrorDomain, let text = strerror(Int32(underlying.code))
        {
            return String(cString: text)
        }
        return ns.localizedDescription
    }
}
