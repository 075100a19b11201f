/// Numbers produced by training and evaluation, and their removal on resume.
extension RunStore {
    /// Writes one evaluation step: every scored response with its measures and (when given) its tokens,
    /// in ONE transaction (all or nothing). Rows already present for (run, step, response) are replaced.
    /// - Throws: `StoreError.invalidValue` for a NaN log-probability, measure or token log-probability
    ///   (nothing is written), or the SQLite error of the failing row (e.g. an unknown response id;
    ///   nothing is written).
    /// `tokenTexts`: the text of token ids the rows name (`token_texts`, kept once per run and token).
    public func writeEvaluation(runID: Int64, step: Int, rows: [LogprobRow], tokenTexts: [Int32: String] = [:]) throws {
        for row in rows {
            let what = "run \(runID) step \(step) response \(row.responseID)"
            if row.logprob.isNaN { throw StoreError.invalidValue(path: path, detail: "\(what): log-probability is NaN") }
            if let bad = row.measures.first(where: { $0.value.isNaN }) {
                throw StoreError.invalidValue(path: path, detail: "\(what): measure \(bad.key) is NaN")
            }
            if let bad = row.tokens.firstIndex(where: { $0.logprob.isNaN }) {
                throw StoreError.invalidValue(path: path, detail: "\(what): token \(bad)'s log-probability is NaN")
            }
        }
        let measured = rows.contains { !$0.measures.isEmpty || !$0.tokens.isEmpty }
        if !tokenTexts.isEmpty, try storedSchemaVersion() < 6 {
            throw StoreError.conflict(path: path, detail: "schema version \(try storedSchemaVersion()) has no token_texts table; open the store read-write to migrate it")
        }
        if measured, try storedSchemaVersion() < 3 {
            throw StoreError.conflict(path: path, detail: "schema version \(try storedSchemaVersion()) has no measures table; open the store read-write to migrate it")
        }
        try database.transaction {
            let run = SQLiteValue.integer(runID), s = SQLiteValue.integer(Int64(step))
            for row in rows {
                let response = SQLiteValue.integer(row.responseID)
                try database.execute(
                    "INSERT OR REPLACE INTO logprobs (run_id, step, response_id, logprob, n_tokens) VALUES (?, ?, ?, ?, ?)",
                    [run, s, response, .real(row.logprob), .integer(Int64(row.nTokens))])
                for name in row.measures.keys.sorted() {
                    try database.execute(
                        "INSERT OR REPLACE INTO measures (run_id, step, response_id, name, value) VALUES (?, ?, ?, ?, ?)",
                        [run, s, response, .text(name), .real(row.measures[name]!)])
                }
                for (position, token) in row.tokens.enumerated() {
                    if let gainToken = token.gainToken, let gain = token.gain {
                        try database.execute(
                            "INSERT OR REPLACE INTO token_logprobs (run_id, step, response_id, position, token, logprob, argmax, gain_token, gain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [run, s, response, .integer(Int64(position)), .integer(Int64(token.token)), .real(token.logprob),
                             .integer(Int64(token.argmax)), .integer(Int64(gainToken)), .real(gain)])
                    } else {
                        try database.execute(
                            "INSERT OR REPLACE INTO token_logprobs (run_id, step, response_id, position, token, logprob, argmax) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [run, s, response, .integer(Int64(position)), .integer(Int64(token.token)), .real(token.logprob),
                             .integer(Int64(token.argmax))])
                    }
                }
            }
            for token in tokenTexts.keys.sorted() {
                try database.execute("INSERT OR IGNORE INTO token_texts (run_id, token, text) VALUES (?, ?, ?)",
                                     [run, .integer(Int64(token)), .text(tokenTexts[token]!)])
            }
        }
    }

    /// Writes the training metrics of one step (loss, lr, grad_norm, tokens, tokens_per_s, ...) in
    /// one transaction, replacing earlier values of the same names. A NaN value is stored as NULL
    /// (SQLite has no NaN); infinities are stored as they are.
    public func writeTrainMetrics(runID: Int64, step: Int, metrics: [(name: String, value: Double)]) throws {
        try database.transaction {
            for metric in metrics {
                try database.execute(
                    "INSERT OR REPLACE INTO train_metrics (run_id, step, name, value) VALUES (?, ?, ?, ?)",
                    [.integer(runID), .integer(Int64(step)), .text(metric.name),
                     metric.value.isNaN ? .null : .real(metric.value)])
            }
        }
    }

    /// Writes one step's attribution (`attributions` and `influences`, schema version 7) in one transaction.
    public func writeAttribution(runID: Int64, step: Int, _ rows: [AttributionRecord]) throws {
        for r in rows {
            let values = [r.logprob, r.predicted, r.observed] + r.influences.map(\.contribution)
            if values.contains(where: { !$0.isFinite }) {
                throw StoreError.invalidValue(path: path, detail: "run \(runID) step \(step) response \(r.responseID): a non-finite attribution")
            }
        }
        try database.transaction {
            let run = SQLiteValue.integer(runID), s = SQLiteValue.integer(Int64(step))
            for r in rows {
                let response = SQLiteValue.integer(r.responseID)
                try database.execute(
                    "INSERT OR REPLACE INTO attributions (run_id, step, response_id, logprob, predicted, observed) VALUES (?, ?, ?, ?, ?, ?)",
                    [run, s, response, .real(r.logprob), .real(r.predicted), .real(r.observed)])
                for i in r.influences {
                    try database.execute(
                        "INSERT OR REPLACE INTO influences (run_id, step, response_id, example, data_line, contribution, cosine) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [run, s, response, .integer(Int64(i.example)), i.dataLine.map { .integer(Int64($0)) } ?? .null,
                         .real(i.contribution), i.cosine.map { $0.isFinite ? .real($0) : .null } ?? .null])
                }
            }
        }
    }

    /// Writes measures of training examples (`pair_measures`, schema version 7) in one transaction.
    public func writePairMeasures(runID: Int64, step: Int, _ rows: [(example: Int, dataLine: Int, name: String, value: Double)]) throws {
        try database.transaction {
            for r in rows {
                try database.execute(
                    "INSERT OR REPLACE INTO pair_measures (run_id, step, example, data_line, name, value) VALUES (?, ?, ?, ?, ?, ?)",
                    [.integer(runID), .integer(Int64(step)), .integer(Int64(r.example)), .integer(Int64(r.dataLine)), .text(r.name),
                     r.value.isFinite ? .real(r.value) : .null])
            }
        }
    }

    /// The store a merged run's checkpoints were written for (`run_origins`, schema version 5), if it came from a shard.
    public func runOrigin(runID: Int64) throws -> String? {
        guard try storedSchemaVersion() >= 5 else { return nil }
        return try database.query("SELECT store_id FROM run_origins WHERE run_id = ?", [.integer(runID)]).first?.first?.string
    }

    /// Records the Slurm array task a run was submitted as (`run_jobs`, schema version 5), replacing an earlier one.
    public func setJob(runID: Int64, job: String) throws {
        try database.execute("INSERT OR REPLACE INTO run_jobs (run_id, job_id) VALUES (?, ?)", [.integer(runID), .text(job)])
    }

    /// The Slurm job of every submitted run, by run id (none before schema version 5).
    public func jobs() throws -> [Int64: String] {
        guard try storedSchemaVersion() >= 5 else { return [:] }
        var out: [Int64: String] = [:]
        for row in try database.query("SELECT run_id, job_id FROM run_jobs") { out[row[0].int64!] = row[1].string }
        return out
    }

    /// Writes the responses an online objective sampled at `step` (`samples` table, Schema version 4), in one transaction.
    public func writeSamples(runID: Int64, step: Int, _ rows: [SampleRecord]) throws {
        try database.transaction {
            for r in rows {
                try database.execute(
                    "INSERT OR REPLACE INTO samples (run_id, step, data_line, sample, prompt, text, reward, kl, advantage, n_tokens, eos) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [.integer(runID), .integer(Int64(step)), .integer(Int64(r.dataLine)), .integer(Int64(r.sample)), .text(r.prompt), .text(r.text),
                     .real(r.reward), .real(r.kl), .real(r.advantage), .integer(Int64(r.tokens)), .integer(r.eos ? 1 : 0)])
            }
        }
    }

    /// The sampled responses a run recorded, by step, data line and sample (`steps`: only those steps; nil: all).
    public func samples(runID: Int64, steps: [Int]? = nil) throws -> [(step: Int, record: SampleRecord)] {
        let filter = steps.map { " AND step IN (" + $0.map(String.init).joined(separator: ",") + ")" } ?? ""
        return try database.query(
            "SELECT step, data_line, sample, prompt, text, reward, kl, advantage, n_tokens, eos FROM samples WHERE run_id = ?\(filter) ORDER BY step, data_line, sample",
            [.integer(runID)]).map { row in
                (row[0].int!, SampleRecord(dataLine: row[1].int!, sample: row[2].int!, prompt: row[3].string ?? "", text: row[4].string ?? "",
                                           reward: row[5].double ?? .nan, kl: row[6].double ?? .nan, advantage: row[7].double ?? .nan,
                                           tokens: row[8].int!, eos: row[9].int == 1))
            }
    }

    /// Removes everything a run recorded after `step` (log-probabilities, measures, token rows and
    /// training metrics with a larger step) and lowers `last_step` to `step` if it was past it, in one transaction.
    /// Resume calls this with the checkpoint's step so nothing is counted twice.
    /// - Returns: the number of removed rows of each table.
    @discardableResult
    public func truncate(runID: Int64, afterStep step: Int) throws -> (logprobs: Int, trainMetrics: Int) {
        try database.transaction {
            let s = SQLiteValue.integer(Int64(step))
            let logprobs = try database.execute(
                "DELETE FROM logprobs WHERE run_id = ? AND step > ?", [.integer(runID), s])
            let metrics = try database.execute(
                "DELETE FROM train_metrics WHERE run_id = ? AND step > ?", [.integer(runID), s])
            try database.execute("DELETE FROM measures WHERE run_id = ? AND step > ?", [.integer(runID), s])
            try database.execute("DELETE FROM token_logprobs WHERE run_id = ? AND step > ?", [.integer(runID), s])
            try database.execute("DELETE FROM samples WHERE run_id = ? AND step > ?", [.integer(runID), s])
            if try storedSchemaVersion() >= 7 {
                for table in ["attributions", "influences", "pair_measures"] {
                    try database.execute("DELETE FROM \(table) WHERE run_id = ? AND step > ?", [.integer(runID), s])
                }
            }
            try database.execute(
                "UPDATE runs SET last_step = ? WHERE id = ? AND last_step > ?", [s, .integer(runID), s])
            return (logprobs, metrics)
        }
    }

    /// How many log-probability rows each evaluation step of a run holds (step -> rows).
    public func evaluationRowCounts(runID: Int64) throws -> [Int: Int] {
        var out: [Int: Int] = [:]
        for row in try database.query(
            "SELECT step, count(*) FROM logprobs WHERE run_id = ? GROUP BY step", [.integer(runID)]) {
            out[row[0].int!] = row[1].int!
        }
        return out
    }

    /// The steps for which a run recorded its training loss.
    public func lossSteps(runID: Int64) throws -> Set<Int> {
        Set(try database.query(
            "SELECT step FROM train_metrics WHERE run_id = ? AND name = 'loss'", [.integer(runID)]).compactMap { $0[0].int })
    }

    /// Replaces the input fingerprints of a run (`run_inputs`): input name -> (path, sha256).
    public func setRunInputs(runID: Int64, _ inputs: [String: RunInput]) throws {
        try database.transaction {
            try database.execute("DELETE FROM run_inputs WHERE run_id = ?", [.integer(runID)])
            for name in inputs.keys.sorted() {
                try database.execute(
                    "INSERT INTO run_inputs (run_id, input, path, sha256) VALUES (?, ?, ?, ?)",
                    [.integer(runID), .text(name), .text(inputs[name]!.path), .text(inputs[name]!.sha256)])
            }
        }
    }

    /// The input fingerprints recorded for a run (empty when none were recorded).
    public func runInputs(runID: Int64) throws -> [String: RunInput] {
        guard try storedSchemaVersion() >= 2 else { return [:] }
        var out: [String: RunInput] = [:]
        for row in try database.query("SELECT input, path, sha256 FROM run_inputs WHERE run_id = ?", [.integer(runID)]) {
            out[row[0].string!] = RunInput(path: row[1].string!, sha256: row[2].string!)
        }
        return out
    }

    /// One row per run (of `experiment`, or of every experiment when nil), ordered by experiment
    /// and run id: status, last step, the last recorded loss, start and finish times, owner.
    public func statusRows(experiment: String? = nil) throws -> [RunStatusRow] {
        try database.query(
            """
            SELECT r.id, e.name, r.name, r.status, r.last_step,
                   (SELECT t.value FROM train_metrics AS t WHERE t.run_id = r.id AND t.name = 'loss'
                    ORDER BY t.step DESC LIMIT 1),
                   (SELECT t.step FROM train_metrics AS t WHERE t.run_id = r.id AND t.name = 'loss'
                    ORDER BY t.step DESC LIMIT 1),
                   r.started_at, r.finished_at, r.owner, r.heartbeat_at, r.error,
                   (julianday('now') - julianday(r.heartbeat_at)) * 86400.0
            FROM runs AS r JOIN experiments AS e ON e.id = r.experiment_id
            WHERE ?1 IS NULL OR e.name = ?1
            ORDER BY e.name, r.id
            """, [SQLiteValue(experiment)]
        ).map { row in
            RunStatusRow(
                runID: row[0].int64!, experiment: row[1].string!, name: row[2].string!,
                status: RunStatus(rawValue: row[3].string ?? "") ?? .planned, lastStep: row[4].int,
                lastLoss: row[5].double, lastLossStep: row[6].int, startedAt: row[7].string,
                finishedAt: row[8].string, owner: row[9].string, heartbeatAt: row[10].string, error: row[11].string,
                heartbeatAge: row[12].double)
        }
    }
}
