/// The run store's schema as forward migrations: `migrations[i]` takes a store from version `i`
/// to version `i + 1`. A migration is never edited once released; changes are new migrations.
///
/// Conventions: timestamps are TEXT in UTC ISO 8601 with milliseconds
/// (`2025-01-31T12:00:00.000Z`, sortable, readable by `julianday()`); log-probabilities are natural
/// logs; `step` is the number of optimizer steps taken before the evaluation (0 = before training).
enum Schema {
    /// Timestamp expression used for every `*_at` column.
    static let now = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

    static let migrations: [String] = [migration1, migration2]

    /// Version 1: every table, index and view of DESIGN.md's run store, plus leases
    /// (`runs.owner`, `runs.heartbeat_at`).
    ///
    /// Indexes: `logprobs` is clustered on (run_id, step, response_id) (WITHOUT ROWID), so one
    /// run's curves are a range scan and a response's step-0 value one lookup. There is
    /// deliberately no index on `logprobs(response_id)`: it would triple the cost of writing
    /// evaluations, and only deleting a response (never done by AlignScope) needs it.
    static let migration1 = """
        CREATE TABLE experiments (
            id          INTEGER PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            spec        TEXT NOT NULL,
            spec_sha256 TEXT NOT NULL,
            created_at  TEXT NOT NULL DEFAULT (\(now))
        );

        CREATE TABLE runs (
            id            INTEGER PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            name          TEXT NOT NULL,
            config        TEXT NOT NULL,
            config_sha256 TEXT NOT NULL UNIQUE,
            seed          INTEGER NOT NULL,
            status        TEXT NOT NULL DEFAULT 'planned'
                          CHECK (status IN ('planned', 'running', 'finished', 'failed', 'interrupted')),
            error         TEXT,
            created_at    TEXT NOT NULL DEFAULT (\(now)),
            started_at    TEXT,
            finished_at   TEXT,
            last_step     INTEGER,
            owner         TEXT,
            heartbeat_at  TEXT
        );
        CREATE INDEX runs_experiment ON runs(experiment_id, name);
        CREATE INDEX runs_name ON runs(name);

        CREATE TABLE params (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            key    TEXT NOT NULL,
            value,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX params_key_value ON params(key, value);

        CREATE TABLE probes (
            id        INTEGER PRIMARY KEY,
            probe_set TEXT NOT NULL,
            idx       INTEGER NOT NULL,
            prompt    TEXT NOT NULL,
            split     TEXT NOT NULL CHECK (split IN ('train', 'heldout')),
            UNIQUE (probe_set, idx)
        );

        CREATE TABLE responses (
            id       INTEGER PRIMARY KEY,
            probe_id INTEGER NOT NULL REFERENCES probes(id) ON DELETE CASCADE,
            category TEXT NOT NULL,
            text     TEXT NOT NULL,
            origin   TEXT NOT NULL,
            UNIQUE (probe_id, category, text)
        );
        CREATE INDEX responses_category ON responses(category);

        CREATE TABLE logprobs (
            run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step        INTEGER NOT NULL,
            response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
            logprob     REAL NOT NULL,
            n_tokens    INTEGER NOT NULL,
            PRIMARY KEY (run_id, step, response_id)
        ) WITHOUT ROWID;

        CREATE TABLE train_metrics (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step   INTEGER NOT NULL,
            name   TEXT NOT NULL,
            value  REAL,
            PRIMARY KEY (run_id, step, name)
        ) WITHOUT ROWID;

        CREATE VIEW category_curves AS
        SELECT l.run_id AS run_id,
               l.step AS step,
               r.category AS category,
               p.split AS split,
               avg(l.logprob) AS mean_logprob,
               avg(l.logprob / nullif(l.n_tokens, 0)) AS mean_token_logprob,
               CASE WHEN count(*) > 1 THEN
                   sqrt(max(0.0, (sum(l.logprob * l.logprob) - sum(l.logprob) * sum(l.logprob) / count(*))
                                 / (count(*) - 1)) / count(*))
               END AS sem,
               count(*) AS n
        FROM logprobs AS l
        JOIN responses AS r ON r.id = l.response_id
        JOIN probes AS p ON p.id = r.probe_id
        GROUP BY l.run_id, l.step, r.category, p.split;

        CREATE VIEW logprob_deltas AS
        SELECT l.run_id AS run_id,
               l.step AS step,
               l.response_id AS response_id,
               r.probe_id AS probe_id,
               r.category AS category,
               p.split AS split,
               l.logprob AS logprob,
               s.logprob AS start_logprob,
               l.logprob - s.logprob AS delta
        FROM logprobs AS l
        JOIN responses AS r ON r.id = l.response_id
        JOIN probes AS p ON p.id = r.probe_id
        LEFT JOIN logprobs AS s ON s.run_id = l.run_id AND s.step = 0 AND s.response_id = l.response_id;
        """
}

extension Schema {
    /// Version 2 (issue 15): the store's identity and each run's input fingerprints.
    ///
    /// - `store_info('store_id')`: 32 random hex digits, made when the store is created. A run's
    ///   checkpoint records the id of the store it was written for, and resumes only into that store:
    ///   a deleted and recreated store, or another file beside it, starts the run over.
    /// - `run_inputs(run_id, input, path, sha256)`: the content hash of each file a run reads
    ///   (`model`, `train`, `probes`), recorded when the run starts from step 0; a resume whose files
    ///   no longer match is refused.
    static let migration2 = """
        CREATE TABLE store_info (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO store_info (key, value) VALUES ('store_id', lower(hex(randomblob(16))));

        CREATE TABLE run_inputs (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            input  TEXT NOT NULL,
            path   TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (run_id, input)
        ) WITHOUT ROWID;
        """
}
