/// Probe sets: prompts (`probes`) and the responses scored under them (`responses`).
extension RunStore {
    /// Records a probe set in one transaction, or finds it when already recorded (idempotent).
    /// New responses of an existing probe are added. A probe whose `idx` is already recorded in
    /// this set with another prompt or split is a conflict: the probe set changed under the same
    /// name, and the runs that scored the old one would be misread; name the new set differently.
    /// - Returns: the id of every response of `probes`.
    @discardableResult
    public func recordProbeSet(name: String, probes: [ProbeEntry]) throws -> [ResponseKey: Int64] {
        try database.transaction {
            var ids: [ResponseKey: Int64] = [:]
            for probe in probes {
                let probeID = try recordProbe(set: name, probe)
                for response in probe.responses {
                    let key = ResponseKey(probeIdx: probe.idx, category: response.category, text: response.text)
                    ids[key] = try addResponse(
                        probeID: probeID, category: response.category, text: response.text, origin: response.origin)
                }
            }
            return ids
        }
    }

    private func recordProbe(set: String, _ probe: ProbeEntry) throws -> Int64 {
        try database.execute(
            "INSERT INTO probes (probe_set, idx, prompt, split) VALUES (?, ?, ?, ?) ON CONFLICT (probe_set, idx) DO NOTHING",
            [.text(set), .integer(Int64(probe.idx)), .text(probe.prompt), .text(probe.split)])
        let row = try database.query(
            "SELECT id, prompt, split FROM probes WHERE probe_set = ? AND idx = ?",
            [.text(set), .integer(Int64(probe.idx))])[0]
        guard row[1].string == probe.prompt, row[2].string == probe.split else {
            throw StoreError.conflict(
                path: path,
                detail: "probe set '\(set)': probe \(probe.idx) is already recorded with a different "
                    + (row[1].string == probe.prompt ? "split (\(row[2]))" : "prompt")
                    + "; give a changed probe set a new name")
        }
        return row[0].int64!
    }

    /// Adds one response under a probe (e.g. the dynamic `greedy` category), or returns the id of
    /// the identical (probe, category, text) response already recorded; `origin` of an existing
    /// response is left as it was.
    @discardableResult
    public func addResponse(probeID: Int64, category: String, text: String, origin: String) throws -> Int64 {
        try database.transaction {
            try database.execute(
                """
                INSERT INTO responses (probe_id, category, text, origin) VALUES (?, ?, ?, ?)
                ON CONFLICT (probe_id, category, text) DO NOTHING
                """, [.integer(probeID), .text(category), .text(text), .text(origin)])
            return try database.scalar(
                "SELECT id FROM responses WHERE probe_id = ? AND category = ? AND text = ?",
                [.integer(probeID), .text(category), .text(text)]
            ).int64!
        }
    }

    /// Probe ids of a probe set by `idx`.
    public func probeIDs(probeSet: String) throws -> [Int: Int64] {
        var ids: [Int: Int64] = [:]
        for row in try database.query("SELECT idx, id FROM probes WHERE probe_set = ?", [.text(probeSet)]) {
            ids[row[0].int!] = row[1].int64!
        }
        return ids
    }

    /// Every response recorded under a probe set (including dynamic ones), by key.
    public func responseIDs(probeSet: String) throws -> [ResponseKey: Int64] {
        var ids: [ResponseKey: Int64] = [:]
        for row in try database.query(
            """
            SELECT p.idx, r.category, r.text, r.id FROM responses AS r JOIN probes AS p ON p.id = r.probe_id
            WHERE p.probe_set = ?
            """, [.text(probeSet)])
        {
            ids[ResponseKey(probeIdx: row[0].int!, category: row[1].string!, text: row[2].string!)] = row[3].int64!
        }
        return ids
    }
}
