import CSQLite
import Foundation

/// AlignScope's run store: experiments, runs and their leases, probe sets, and the numbers every
/// evaluation and training step produces, in one SQLite file (schema: `Schema.migration1`,
/// documented in the README). Several processes may share one store.
///
/// Writes that belong together (one evaluation step, one probe set, a claim) are one transaction.
public final class RunStore: @unchecked Sendable {
    /// The underlying connection, for callers that need raw SQL.
    public let database: Database
    /// The path of the database file.
    public var path: String { database.path }
    /// The schema version this build writes (number of migrations).
    public static var schemaVersion: Int { Schema.migrations.count }

    /// Opens the store at `path`, creating the file, its directories and the schema as needed and
    /// applying any missing migrations. With `readOnly`, nothing is created or migrated and the
    /// store must already be at `schemaVersion`.
    public init(path: String, readOnly: Bool = false) throws {
        if readOnly && !FileManager.default.fileExists(atPath: path) {
            throw StoreError.notFound(path: path, what: "database file")
        }
        // WAL is switched on only once the file is known to be a store (or empty): another
        // application's database is refused unchanged.
        var db = try Database(path: path, readOnly: readOnly, journalModeWAL: false)
        if readOnly {
            do {
                _ = try db.scalar("SELECT count(*) FROM sqlite_master")
            } catch let error as StoreError where [SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_IOERR].contains(error.sqliteCode ?? 0) {
                // A WAL store on a read-only medium (or in a folder this user cannot write) cannot get
                // its -shm file; nobody can be writing it there, so it is read as immutable. Immutable reading
                // ignores a write-ahead log, so a store whose log still holds rows would look older than it is.
                if let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int, wal > 0 {
                    throw StoreError.readOnly(path: path, detail: "its write-ahead log \((path as NSString).lastPathComponent)-wal holds \(wal) bytes not yet in the store, which cannot be read where the store cannot be written; copy the store with its -wal file to a writable folder (or open it once where it is writable) and read it there")
                }
                db = try Database(path: Self.immutableURI(path), readOnly: true, displayPath: path)
            }
        }
        database = db
        try migrate()
        try database.enableWAL()
    }

    /// `file:` URI of `path` with `immutable=1` (SQLite reads it without locks or a -shm file).
    static func immutableURI(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        return "file:" + (absolute.addingPercentEncoding(withAllowedCharacters: allowed) ?? absolute) + "?immutable=1"
    }

    /// The schema version recorded in the file (0 for an empty file).
    public func storedSchemaVersion() throws -> Int {
        let hasTable = try database.scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
        guard hasTable.int64 == 1 else { return 0 }
        return try database.scalar("SELECT coalesce(max(version), 0) FROM schema_version").int ?? 0
    }

    private func migrate() throws {
        let target = Self.schemaVersion
        var found = try storedSchemaVersion()
        if found > target { throw StoreError.schemaTooNew(path: path, found: found, supported: target) }
        if found == target { return }
        // Another application's database is never changed: only an empty file becomes a store. (Another process
        // may have made this one a store between the two reads: its tables then come with a schema_version.)
        if found == 0, let table = try database.query(
            "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 1").first?.first?.string {
            found = try storedSchemaVersion()
            if found == 0 {
                throw StoreError.conflict(path: path, detail: "not an AlignScope run store (it holds other tables, e.g. \"\(table)\", and no schema_version); nothing was changed")
            }
            if found == target { return }
        }
        if database.isReadOnly {
            // Reading verbs only read what version 1 already holds.
            if found >= 1 { return }
            throw StoreError.conflict(path: path, detail: "not an AlignScope run store (no schema_version table)")
        }
        try database.transaction {
            try database.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (\(Schema.now)))"
            )
            // Re-read inside the write lock: another process may have migrated meanwhile.
            let current = try storedSchemaVersion()
            if current > target { throw StoreError.schemaTooNew(path: path, found: current, supported: target) }
            for version in current..<target {
                try database.executeScript(Schema.migrations[version])
                try database.execute("INSERT INTO schema_version (version) VALUES (?)", [.integer(Int64(version + 1))])
            }
        }
    }

    /// The store's identity (`store_info.store_id`): random, made when the store was created. A run's
    /// checkpoint names it, so that a checkpoint is resumed only into the store that holds its rows.
    public func storeID() throws -> String {
        guard try storedSchemaVersion() >= 2,
              let id = try database.query("SELECT value FROM store_info WHERE key = 'store_id'").first?.first?.string
        else { throw StoreError.notFound(path: path, what: "store_info.store_id (store written by an older AlignScope)") }
        return id
    }

    // MARK: experiments and runs

    /// Records an experiment, or returns the existing one of that name. One spec per name: a stored spec is
    /// never replaced; another spec (another sha256) under a recorded name is refused (`StoreError.conflict`).
    /// - Returns: the experiment's id.
    @discardableResult
    public func recordExperiment(name: String, spec: String, specSHA256: String) throws -> Int64 {
        try database.transaction {
            try database.execute(
                "INSERT INTO experiments (name, spec, spec_sha256) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                [.text(name), .text(spec), .text(specSHA256)])
            let row = try database.query("SELECT id, spec_sha256 FROM experiments WHERE name = ?", [.text(name)])[0]
            guard row[1].string == specSHA256 else {
                throw StoreError.conflict(path: path, detail: "experiment \"\(name)\" is recorded with another spec (sha256 \(row[1].string?.prefix(12) ?? "?"), given \(specSHA256.prefix(12))); a store keeps one spec per experiment name")
            }
            return row[0].int64!
        }
    }

    /// The experiment called `name`, if recorded.
    public func experiment(name: String) throws -> ExperimentRecord? {
        try experiment(where: "name = ?", .text(name))
    }

    /// The experiment with this id, if recorded.
    public func experiment(id: Int64) throws -> ExperimentRecord? {
        try experiment(where: "id = ?", .integer(id))
    }

    private func experiment(where condition: String, _ value: SQLiteValue) throws -> ExperimentRecord? {
        try database.query(
            "SELECT id, name, spec, spec_sha256, created_at FROM experiments WHERE \(condition)", [value]
        ).first.map {
            ExperimentRecord(
                id: $0[0].int64!, name: $0[1].string!, spec: $0[2].string!, specSHA256: $0[3].string!,
                createdAt: $0[4].string!)
        }
    }

    /// Records a planned run with its flattened config `params` (key path -> value, e.g.
    /// `train.lr` -> 1e-5), or returns the existing run with the same `configSHA256` unchanged
    /// (whatever its experiment and name). Idempotent.
    /// - Returns: the run's id.
    @discardableResult
    public func recordRun(
        experimentID: Int64, name: String, config: String, configSHA256: String, seed: Int64,
        params: [String: SQLiteValue]
    ) throws -> Int64 {
        try database.transaction {
            try database.execute(
                """
                INSERT INTO runs (experiment_id, name, config, config_sha256, seed) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (config_sha256) DO NOTHING
                """,
                [.integer(experimentID), .text(name), .text(config), .text(configSHA256), .integer(seed)])
            let id = try database.scalar("SELECT id FROM runs WHERE config_sha256 = ?", [.text(configSHA256)]).int64!
            for key in params.keys.sorted() {
                try database.execute(
                    "INSERT OR IGNORE INTO params (run_id, key, value) VALUES (?, ?, ?)",
                    [.integer(id), .text(key), params[key]!])
            }
            return id
        }
    }

    static let runColumns = """
        id, experiment_id, name, config, config_sha256, seed, status, error, created_at, started_at,
        finished_at, last_step, owner, heartbeat_at
        """

    /// Every run of an experiment, in the order they were recorded.
    public func runs(experimentID: Int64) throws -> [RunRecord] {
        try database.query(
            "SELECT \(Self.runColumns) FROM runs WHERE experiment_id = ? ORDER BY id", [.integer(experimentID)]
        ).map(runRecord)
    }

    /// The run with this id.
    public func run(id: Int64) throws -> RunRecord? {
        try database.query("SELECT \(Self.runColumns) FROM runs WHERE id = ?", [.integer(id)]).first.map(runRecord)
    }

    /// The run with this name; names are not unique when a spec changed a run's config without
    /// changing its name, and then the most recently recorded one is returned.
    public func run(name: String) throws -> RunRecord? {
        try database.query(
            "SELECT \(Self.runColumns) FROM runs WHERE name = ? ORDER BY id DESC LIMIT 1", [.text(name)]
        ).first.map(runRecord)
    }

    /// The run with this config sha256.
    public func run(configSHA256: String) throws -> RunRecord? {
        try database.query(
            "SELECT \(Self.runColumns) FROM runs WHERE config_sha256 = ?", [.text(configSHA256)]
        ).first.map(runRecord)
    }

    private func runRecord(_ row: [SQLiteValue]) -> RunRecord {
        RunRecord(
            id: row[0].int64!, experimentID: row[1].int64!, name: row[2].string!, config: row[3].string!,
            configSHA256: row[4].string!, seed: row[5].int64!,
            status: RunStatus(rawValue: row[6].string ?? "") ?? .planned, error: row[7].string,
            createdAt: row[8].string ?? "", startedAt: row[9].string, finishedAt: row[10].string,
            lastStep: row[11].int, owner: row[12].string, heartbeatAt: row[13].string)
    }

    // MARK: raw SQL for reports and status

    /// Runs one parameterised statement; rows as column arrays in select order.
    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> [[SQLiteValue]] {
        try database.query(sql, parameters)
    }

    /// Runs one parameterised statement; rows keyed by column name.
    public func rows(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> [[String: SQLiteValue]] {
        try database.rows(sql, parameters)
    }

    /// Runs one statement with named parameters (`:experiment` -> key "experiment" or ":experiment"),
    /// as the files in analysis/ use them.
    @discardableResult
    public func query(_ sql: String, named parameters: [String: SQLiteValue]) throws -> [[SQLiteValue]] {
        try database.query(sql, named: parameters)
    }

    /// `query(_:named:)` with rows keyed by column name.
    public func rows(_ sql: String, named parameters: [String: SQLiteValue]) throws -> [[String: SQLiteValue]] {
        try database.rows(sql, named: parameters)
    }
}
