import Base
import Foundation

/// What merging one shard added to the main store.
public struct MergeSummary: Sendable, Equatable {
    public var shard: String
    public var experiments = 0
    public var runs = 0
    /// Runs of the shard the main store already had (their missing rows were added).
    public var knownRuns = 0
    /// Rows added, by table.
    public var rows: [String: Int] = [:]

    public var addedNothing: Bool { experiments == 0 && runs == 0 && rows.values.allSatisfy { $0 == 0 } }
}

extension RunStore {
    /// A shard must be a run store: a file that is not empty and holds AlignScope's schema (read only, nothing changed).
    public static func checkShard(_ path: String) throws {
        try checkShardFile(path)
        _ = try RunStore(path: path, readOnly: true)
    }

    /// A shard is a file that is not empty (an empty one would be made a new store by opening it).
    static func checkShardFile(_ path: String) throws {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else {
            throw StoreError.notFound(path: path, what: "shard store")
        }
        guard size > 0 else { throw StoreError.conflict(path: path, detail: "is an empty file, not a run store") }
    }

    /// Metrics that measure the machine, not the run: two processes computing the same run record different
    /// values, so they are not compared when runs meet in a merge (the main store's are kept).
    public static let timingMetrics = ["elapsed", "tokens_per_s", "step_time", "time/sampling", "time/scoring", "time/update", "time/attribution"]

    /// Brings the store at `shard` into this one (`alignscope merge`), in one transaction: experiments by name
    /// (with the same spec sha256), runs by config sha256, probes by (probe set, index) with the same prompt and
    /// split, responses by (probe, category, text), and every row of `logprobs`, `measures`, `token_logprobs`,
    /// `train_metrics`, `samples`, `params` and `run_inputs` under the main store's ids. A row the main store
    /// already holds must be equal (timing metrics aside, `timingMetrics`): otherwise nothing is merged and the
    /// error names the run. Merging the same shard twice adds nothing. A run's status, last step and times are
    /// taken from the shard when it got further there (finished over anything, else the larger last step).
    /// The shard is opened for writing first, so a shard of an older schema version is migrated (in place).
    /// A finished run brought in records where it was computed (`run_origins`): a later run may start from its
    /// checkpoint, written for that store.
    @discardableResult
    public func merge(shard path: String) throws -> MergeSummary {
        // the schema is checked by opening it for writing below (another application's database is refused unchanged)
        try Self.checkShardFile(path)
        if let main = OutputPath.identity(self.path), let shard = OutputPath.identity(path), main == shard {
            throw StoreError.conflict(path: path, detail: "is the main store itself")
        }
        let shardStore = try RunStore(path: path)
        _ = try shardStore.query("PRAGMA wal_checkpoint(TRUNCATE)")
        var summary = MergeSummary(shard: path)
        try database.execute("ATTACH DATABASE ? AS shard", [.text(path)])
        defer { _ = try? database.execute("DETACH DATABASE shard") }
        try database.transaction {
            for temp in ["experiment_map", "run_map", "probe_map", "response_map", "origin_update"] {
                try database.execute("DROP TABLE IF EXISTS temp.\(temp)")
            }
            // names become folders and script words: the rules `run` applies, before anything is added
            for row in try database.query("SELECT name FROM shard.experiments") where !SafeName.isPathComponent(row[0].string ?? "", maxBytes: 128) {
                throw StoreError.conflict(path: path, detail: "experiment name \(JSONValue.string(row[0].string ?? "").canonical) is not one AlignScope writes (1-128 bytes, no '/', not starting with '.', no spaces, control or format characters); nothing was merged")
            }
            for row in try database.query("SELECT r.name, e.name FROM shard.runs r JOIN shard.experiments e ON e.id = r.experiment_id")
            where !SafeName.isRunName(row[0].string ?? "", experiment: row[1].string ?? "") {
                throw StoreError.conflict(path: path, detail: "run name \(JSONValue.string(row[0].string ?? "").canonical) is not one AlignScope plans for experiment \(row[1].string ?? ""); nothing was merged")
            }
            // experiments: by name, with the same spec
            if let clash = try database.query("""
                SELECT s.name FROM shard.experiments s JOIN main.experiments m ON m.name = s.name WHERE m.spec_sha256 != s.spec_sha256 LIMIT 1
                """).first?.first?.string {
                throw StoreError.conflict(path: path, detail: "experiment \(clash) has another spec here than in the main store")
            }
            summary.experiments = try database.execute("""
                INSERT INTO main.experiments (name, spec, spec_sha256, created_at)
                SELECT name, spec, spec_sha256, created_at FROM shard.experiments WHERE name NOT IN (SELECT name FROM main.experiments) ORDER BY id
                """)
            try database.execute("""
                CREATE TEMP TABLE experiment_map AS SELECT s.id AS sid, m.id AS mid FROM shard.experiments s JOIN main.experiments m ON m.name = s.name
                """)
            // runs: by config sha256
            if let clash = try database.query("""
                SELECT s.name FROM shard.runs s JOIN main.runs m ON m.config_sha256 = s.config_sha256 WHERE m.name != s.name LIMIT 1
                """).first?.first?.string {
                throw StoreError.conflict(path: path, detail: "run \(clash) has the config of another run of the main store")
            }
            summary.knownRuns = try database.query("""
                SELECT count(*) FROM shard.runs WHERE config_sha256 IN (SELECT config_sha256 FROM main.runs)
                """)[0][0].int ?? 0
            // runs this store does not have finished: the shard's finished ones bring their origin (checkpoints' store)
            let shardID = try database.query("SELECT value FROM shard.store_info WHERE key = 'store_id'").first?.first?.string ?? ""
            try database.execute("""
                CREATE TEMP TABLE origin_update AS SELECT s.config_sha256 AS sha, coalesce(o.store_id, ?) AS store_id FROM shard.runs s
                LEFT JOIN shard.run_origins o ON o.run_id = s.id
                WHERE s.status = 'finished' AND s.config_sha256 NOT IN (SELECT config_sha256 FROM main.runs WHERE status = 'finished')
                """, [.text(shardID)])
            summary.runs = try database.execute("""
                INSERT INTO main.runs (experiment_id, name, config, config_sha256, seed, status, error, created_at, started_at, finished_at, last_step)
                SELECT e.mid, s.name, s.config, s.config_sha256, s.seed, s.status, s.error, s.created_at, s.started_at, s.finished_at, s.last_step
                FROM shard.runs s JOIN temp.experiment_map e ON e.sid = s.experiment_id
                WHERE s.config_sha256 NOT IN (SELECT config_sha256 FROM main.runs) ORDER BY s.id
                """)
            try database.execute("""
                CREATE TEMP TABLE run_map AS SELECT s.id AS sid, m.id AS mid, s.name AS name FROM shard.runs s JOIN main.runs m ON m.config_sha256 = s.config_sha256
                """)
            // probes and responses: by content
            if let clash = try database.query("""
                SELECT s.probe_set || ' #' || s.idx FROM shard.probes s JOIN main.probes m ON m.probe_set = s.probe_set AND m.idx = s.idx
                WHERE m.prompt != s.prompt OR m.split != s.split LIMIT 1
                """).first?.first?.string {
                throw StoreError.conflict(path: path, detail: "probe \(clash) has another prompt or split here than in the main store")
            }
            summary.rows["probes"] = try database.execute("""
                INSERT OR IGNORE INTO main.probes (probe_set, idx, prompt, split) SELECT probe_set, idx, prompt, split FROM shard.probes ORDER BY id
                """)
            try database.execute("""
                CREATE TEMP TABLE probe_map AS SELECT s.id AS sid, m.id AS mid FROM shard.probes s JOIN main.probes m ON m.probe_set = s.probe_set AND m.idx = s.idx
                """)
            // a response the main store holds with another text in a static category (data, derived, generated):
            // the two stores scored different probe files under one probe set name
            if let clash = try database.query("""
                SELECT s.probe_set || ' #' || s.idx || ' ' || r.category FROM shard.responses r JOIN shard.probes s ON s.id = r.probe_id
                JOIN temp.probe_map p ON p.sid = r.probe_id JOIN main.responses m ON m.probe_id = p.mid AND m.category = r.category
                WHERE m.text != r.text AND r.origin NOT LIKE 'greedy:%' AND r.origin NOT LIKE 'argmax:%'
                AND m.origin NOT LIKE 'greedy:%' AND m.origin NOT LIKE 'argmax:%' LIMIT 1
                """).first?.first?.string {
                throw StoreError.conflict(path: path, detail: "response \(clash) has another text here than in the main store; nothing was merged")
            }
            summary.rows["responses"] = try database.execute("""
                INSERT OR IGNORE INTO main.responses (probe_id, category, text, origin)
                SELECT p.mid, r.category, r.text, r.origin FROM shard.responses r JOIN temp.probe_map p ON p.sid = r.probe_id ORDER BY r.id
                """)
            try database.execute("""
                CREATE TEMP TABLE response_map AS SELECT s.id AS sid, m.id AS mid FROM shard.responses s JOIN temp.probe_map p ON p.sid = s.probe_id
                JOIN main.responses m ON m.probe_id = p.mid AND m.category = s.category AND m.text = s.text
                """)
            try database.execute("CREATE INDEX temp.response_map_sid ON response_map(sid)")
            // result rows: equal where both stores hold them, added where only the shard does
            let timing = Self.timingMetrics.map { "'\($0)'" }.joined(separator: ", ")
            // the per-run result tables; their columns, keys (the primary key) and values (the rest) are read from the
            // schema itself, so a column a migration adds is merged and compared without a second list here
            let resultTables: [(name: String, uncompared: Set<String>, filter: String)] = [
                ("logprobs", [], ""), ("measures", [], ""), ("token_logprobs", [], ""), ("token_texts", [], ""),
                ("train_metrics", [], "s.name NOT IN (\(timing))"),  // timing metrics measure the machine
                ("samples", [], ""), ("params", [], ""),
                ("run_inputs", ["path"], ""),  // where the file was on that machine
            ]
            var tables: [(name: String, columns: [String], keys: [String], values: [String], filter: String)] = []
            for r in resultTables {
                let info = try database.query("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid", [.text(r.name)])
                let columns = info.map { $0[0].string ?? "" }
                let keys = info.filter { ($0[1].int ?? 0) > 0 }.sorted { ($0[1].int ?? 0) < ($1[1].int ?? 0) }.map { $0[0].string ?? "" }
                precondition(keys.first == "run_id", "merge: \(r.name)'s primary key must start with run_id")
                tables.append((r.name, columns, keys.filter { $0 != "run_id" && $0 != "response_id" },
                               columns.filter { !keys.contains($0) && !r.uncompared.contains($0) }, r.filter))
            }
            for t in tables {
                let hasResponse = t.columns.contains("response_id")
                let joins = "JOIN temp.run_map rm ON rm.sid = s.run_id" + (hasResponse ? " JOIN temp.response_map xm ON xm.sid = s.response_id" : "")
                let match = (["m.run_id = rm.mid"] + (hasResponse ? ["m.response_id = xm.mid"] : []) + t.keys.map { "m.\($0) = s.\($0)" }).joined(separator: " AND ")
                let differs = t.values.map { "m.\($0) IS NOT s.\($0)" }.joined(separator: " OR ")
                if let run = try database.query("""
                    SELECT rm.name FROM shard.\(t.name) s \(joins) JOIN main.\(t.name) m ON \(match)
                    WHERE (\(differs))\(t.filter.isEmpty ? "" : " AND " + t.filter) LIMIT 1
                    """).first?.first?.string {
                    throw StoreError.conflict(path: path, detail: "run \(run) holds other \(t.name) rows here than in the main store; nothing was merged")
                }
                let select = t.columns.map { c in c == "run_id" ? "rm.mid" : c == "response_id" ? "xm.mid" : "s.\(c)" }.joined(separator: ", ")
                summary.rows[t.name] = try database.execute("""
                    INSERT OR IGNORE INTO main.\(t.name) (\(t.columns.joined(separator: ", "))) SELECT \(select) FROM shard.\(t.name) s \(joins)
                    """)
            }
            try database.execute("""
                INSERT OR REPLACE INTO main.run_origins (run_id, store_id)
                SELECT m.id, u.store_id FROM temp.origin_update u JOIN main.runs m ON m.config_sha256 = u.sha
                """)
            // a run's progress: the store where it got further
            try database.execute("""
                UPDATE main.runs SET (status, error, started_at, finished_at, last_step) =
                    (SELECT s.status, s.error, s.started_at, s.finished_at, s.last_step FROM shard.runs s JOIN temp.run_map rm ON rm.sid = s.id WHERE rm.mid = main.runs.id)
                WHERE id IN (SELECT rm.mid FROM temp.run_map rm JOIN shard.runs s ON s.id = rm.sid
                             WHERE main.runs.status != 'finished' AND (s.status = 'finished' OR coalesce(s.last_step, -1) > coalesce(main.runs.last_step, -1)))
                """)
        }
        return summary
    }
}
