import CSQLite

/// Everything that can go wrong in the run store. Each case carries the database path and, where
/// SQLite reported the failure, the SQL and SQLite's own message; `description` is one line.
public enum StoreError: Error, CustomStringConvertible, Equatable, Sendable {
    /// SQLite returned `code` (extended result code) with `message` while running `sql`.
    case sqlite(path: String, code: Int32, message: String, sql: String)
    /// The database (or its directory) cannot be written although writing was asked for.
    case readOnly(path: String, detail: String)
    /// The parent directory of the database could not be created.
    case cannotCreateDirectory(path: String, directory: String, reason: String)
    /// The file is a store written by a newer AlignScope (schema version `found` > `supported`).
    case schemaTooNew(path: String, found: Int, supported: Int)
    /// A record the caller named does not exist.
    case notFound(path: String, what: String)
    /// The caller tried to record something that contradicts what the store already holds.
    case conflict(path: String, detail: String)
    /// A value that cannot be stored faithfully (e.g. a NaN log-probability).
    case invalidValue(path: String, detail: String)

    /// The primary SQLite result code (`SQLITE_BUSY`, `SQLITE_FULL`, ...) for `.sqlite`, else nil.
    public var sqliteCode: Int32? {
        if case .sqlite(_, let code, _, _) = self { return code & 0xff }
        return nil
    }

    public var description: String {
        switch self {
        case let .sqlite(path, code, message, sql):
            return "\(path): \(Self.explain(code: code, message: message)) (while running: \(Self.oneLine(sql)))"
        case let .readOnly(path, detail):
            return "\(path): the database is read-only: \(detail)"
        case let .cannotCreateDirectory(path, directory, reason):
            return "\(path): cannot create the directory \(directory): \(reason)"
        case let .schemaTooNew(path, found, supported):
            return "\(path): schema version \(found) is newer than this AlignScope supports (\(supported)); use a newer alignscope"
        case let .notFound(path, what):
            return "\(path): \(what) not found"
        case let .conflict(path, detail):
            return "\(path): \(detail)"
        case let .invalidValue(path, detail):
            return "\(path): \(detail)"
        }
    }

    /// SQLite's message, prefixed with what it means for the user when the code is one people meet.
    static func explain(code: Int32, message: String) -> String {
        let name = codeName(code)
        let hint: String?
        switch code & 0xff {
        case SQLITE_READONLY: hint = "the database is read-only (check the permissions of the file and its directory)"
        case SQLITE_FULL: hint = "the disk (or the database size limit) is full"
        case SQLITE_CANTOPEN: hint = "cannot open the database file (missing directory or no permission)"
        case SQLITE_BUSY, SQLITE_LOCKED: hint = "the database stayed locked by another process past the timeout"
        case SQLITE_CORRUPT, SQLITE_NOTADB: hint = "the file is not a valid SQLite database or is corrupt"
        case SQLITE_IOERR: hint = "an I/O error occurred"
        case SQLITE_PERM: hint = "permission denied"
        default: hint = nil
        }
        return (hint.map { "\($0): " } ?? "") + "\(message) [\(name)]"
    }

    static func codeName(_ code: Int32) -> String {
        switch code & 0xff {
        case SQLITE_ERROR: return "SQLITE_ERROR"
        case SQLITE_PERM: return "SQLITE_PERM"
        case SQLITE_BUSY: return "SQLITE_BUSY"
        case SQLITE_LOCKED: return "SQLITE_LOCKED"
        case SQLITE_NOMEM: return "SQLITE_NOMEM"
        case SQLITE_READONLY: return "SQLITE_READONLY"
        case SQLITE_IOERR: return "SQLITE_IOERR"
        case SQLITE_CORRUPT: return "SQLITE_CORRUPT"
        case SQLITE_FULL: return "SQLITE_FULL"
        case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN"
        case SQLITE_CONSTRAINT: return "SQLITE_CONSTRAINT"
        case SQLITE_MISMATCH: return "SQLITE_MISMATCH"
        case SQLITE_NOTADB: return "SQLITE_NOTADB"
        case SQLITE_RANGE: return "SQLITE_RANGE"
        default: return "SQLite error \(code)"
        }
    }

    /// Collapses whitespace runs (SQL spans lines) and shortens long statements, to keep one line.
    static func oneLine(_ sql: String, limit: Int = 240) -> String {
        let collapsed = sql.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        return collapsed.count > limit ? String(collapsed.prefix(limit)) + "…" : collapsed
    }
}
