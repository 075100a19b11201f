import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Leases: a process that runs a run "owns" it (`runs.owner = host:pid`) and refreshes
/// `runs.heartbeat_at`. Another process may take the run over only when that owner is gone:
/// on the same host, its pid no longer exists (`kill(pid, 0)`); on another host (shared file
/// system), its heartbeat is older than `staleAfter` seconds.
///
/// Limits: pid liveness assumes the store's writers share a pid namespace when they share a host
/// name (true for processes on one machine, not for containers with the same host name); a pid
/// reused by an unrelated process keeps the run blocked until that process exits.
extension RunStore {
    /// `host:pid` of this process, the default owner of the runs it claims.
    public static let processOwner: String = "\(currentHostName()):\(getpid())"

    /// Atomically claims a run for `owner`: marks it `running` with `owner` and a fresh heartbeat.
    /// Succeeds for `planned` and `interrupted` runs, for `running` runs whose owner is dead (see
    /// above) or is `owner` itself, and for `failed` runs only when `includeFailed` is true.
    /// Never for `finished` runs. `started_at` keeps the time of the first claim; `error` and
    /// `finished_at` are cleared.
    /// - Returns: true when the caller now holds the run.
    /// - Throws: `StoreError.notFound` if there is no such run.
    public func claim(
        runID: Int64, owner: String = RunStore.processOwner, staleAfter: Double = 120, includeFailed: Bool = false,
        includeFinished: Bool = false
    ) throws -> Bool {
        try database.transaction {
            let rows = try database.query(
                "SELECT status, owner, (julianday('now') - julianday(heartbeat_at)) * 86400.0 FROM runs WHERE id = ?",
                [.integer(runID)])
            guard let row = rows.first else { throw StoreError.notFound(path: path, what: "run \(runID)") }
            switch RunStatus(rawValue: row[0].string ?? "") {
            case .finished where !includeFinished: return false
            case .failed where !includeFailed: return false
            case .running:
                if let holder = row[1].string, holder != owner,
                    Self.isOwnerAlive(holder, heartbeatAge: row[2].double, staleAfter: staleAfter)
                {
                    return false
                }
            default: break
            }
            try database.execute(
                """
                UPDATE runs SET status = 'running', owner = ?, heartbeat_at = \(Schema.now),
                    started_at = coalesce(started_at, \(Schema.now)), finished_at = NULL, error = NULL
                WHERE id = ?
                """, [.text(owner), .integer(runID)])
            return true
        }
    }

    /// Refreshes the heartbeat of a run held by `owner`.
    /// - Returns: false when the run is no longer `running` under `owner` (someone took it over):
    ///   the caller should stop working on it.
    @discardableResult
    public func heartbeat(runID: Int64, owner: String = RunStore.processOwner) throws -> Bool {
        try database.execute(
            "UPDATE runs SET heartbeat_at = \(Schema.now) WHERE id = ? AND owner = ? AND status = 'running'",
            [.integer(runID), .text(owner)]) > 0
    }

    /// Records that every result up to and including `step` is in the store (and refreshes the heartbeat).
    public func setLastStep(runID: Int64, step: Int) throws {
        try updateRun(
            runID, "SET last_step = ?, heartbeat_at = \(Schema.now)", [.integer(Int64(step))])
    }

    /// Marks the run `finished` (with `finished_at`). The owner is kept as a record of who ran it.
    public func finish(runID: Int64) throws {
        try updateRun(runID, "SET status = 'finished', finished_at = \(Schema.now), error = NULL", [])
    }

    /// Marks the run `failed` with a one-line reason (e.g. "loss is NaN at step 12").
    public func fail(runID: Int64, error: String) throws {
        try updateRun(runID, "SET status = 'failed', finished_at = \(Schema.now), error = ?", [.text(error)])
    }

    /// Marks the run `interrupted` (stopped on purpose; resumable), with an optional reason.
    public func markInterrupted(runID: Int64, reason: String? = nil) throws {
        try updateRun(runID, "SET status = 'interrupted', error = ?", [SQLiteValue(reason)])
    }

    private func updateRun(_ runID: Int64, _ setClause: String, _ parameters: [SQLiteValue]) throws {
        if try database.execute("UPDATE runs \(setClause) WHERE id = ?", parameters + [.integer(runID)]) == 0 {
            throw StoreError.notFound(path: path, what: "run \(runID)")
        }
    }

    /// Whether the holder of a lease is alive: same host -> its pid exists; other host -> its
    /// heartbeat (age in seconds, nil when never set) is younger than `staleAfter`.
    public static func isOwnerAlive(
        _ owner: String, heartbeatAge: Double?, staleAfter: Double, localHost: String = currentHostName()
    ) -> Bool {
        if let colon = owner.lastIndex(of: ":"), owner[..<colon] == localHost,
            let pid = Int32(owner[owner.index(after: colon)...])
        {
            guard pid > 0 else { return false }
            return kill(pid, 0) == 0 || errno == EPERM
        }
        guard let age = heartbeatAge else { return false }
        return age < staleAfter
    }

    /// This machine's host name (`gethostname`), without DNS.
    public static func currentHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
