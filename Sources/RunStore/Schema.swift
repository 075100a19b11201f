/// The run store's schema as forward migrations: `migrations[i]` takes a store from version `i`
/// to version `i + 1`. A migration is never edited once released; changes are new migrations.
///
/// Conventions: timestamps are TEXT in UTC ISO 8601 with milliseconds
/// (`2025-01-31T12:00:00.000Z`, sortable, readable by `julianday()`); log-probabilities are natural
/// logs; `step` is the number of optimizer steps taken before the evaluation (0 = before training).
enum Schema {
    /// Timestamp expression used for every `*_at` column.
    static let now = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

    static let migrations: [String] = [migration1, migration2, migration3, migration4, migration5, migration6, migration7, migration8]

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

extension Schema {
    /// Version 3 (issue 19): the probe measures and per-token log-probabilities.
    ///
    /// - `measures(run_id, step, response_id, name, value)`: one row per measure of a scored response
    ///   (names and formulas: `Base.Measure`, analysis/README.md), beside its `logprobs` row. A long table
    ///   rather than columns, so that a measure added later (a reward model's `reward`) is rows, not a
    ///   migration. Stores from version 2 get `mean_token_logprob` filled in from `logprobs`
    ///   (logprob / n_tokens, the same definition); their other measures stay absent.
    /// - `token_logprobs(run_id, step, response_id, position, token, logprob, argmax)`: with
    ///   `eval.tokens`, every response token's log-probability given the prompt and the earlier tokens,
    ///   and the most likely token at that position. Position 0 is the first token after the prompt;
    ///   the last position (n_tokens - 1) is the end-of-turn token when the template ends turns with one.
    /// - `measure_curves`: mean and standard error of `logprob` (from `category_curves`) and of every
    ///   measure per run, step, category, split and measure. `token_deltas`: each token's change since the run's first
    ///   evaluation (NULL where that evaluation did not score the same response).
    static let migration3 = """
        CREATE TABLE measures (
            run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step        INTEGER NOT NULL,
            response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
            name        TEXT NOT NULL,
            value       REAL,
            PRIMARY KEY (run_id, step, response_id, name)
        ) WITHOUT ROWID;

        INSERT INTO measures (run_id, step, response_id, name, value)
        SELECT run_id, step, response_id, 'mean_token_logprob', logprob / n_tokens
        FROM logprobs WHERE n_tokens > 0;

        CREATE TABLE token_logprobs (
            run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step        INTEGER NOT NULL,
            response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
            position    INTEGER NOT NULL,
            token       INTEGER NOT NULL,
            logprob     REAL NOT NULL,
            argmax      INTEGER NOT NULL,
            PRIMARY KEY (run_id, step, response_id, position)
        ) WITHOUT ROWID;

        CREATE VIEW measure_curves AS
        SELECT run_id, step, category, split, 'logprob' AS measure, mean_logprob AS mean, sem, n
        FROM category_curves
        UNION ALL
        SELECT m.run_id AS run_id,
               m.step AS step,
               r.category AS category,
               p.split AS split,
               m.name AS measure,
               avg(m.value) AS mean,
               CASE WHEN count(m.value) > 1 THEN
                   sqrt(max(0.0, (sum(m.value * m.value) - sum(m.value) * sum(m.value) / count(m.value))
                                 / (count(m.value) - 1)) / count(m.value))
               END AS sem,
               count(m.value) AS n
        FROM measures AS m
        JOIN responses AS r ON r.id = m.response_id
        JOIN probes AS p ON p.id = r.probe_id
        GROUP BY m.run_id, m.step, r.category, p.split, m.name;

        CREATE VIEW token_deltas AS
        SELECT t.run_id AS run_id,
               t.step AS step,
               t.response_id AS response_id,
               r.probe_id AS probe_id,
               r.category AS category,
               p.split AS split,
               t.position AS position,
               l.n_tokens AS n_tokens,
               t.token AS token,
               t.logprob AS logprob,
               f.logprob AS first_logprob,
               t.logprob - f.logprob AS delta
        FROM token_logprobs AS t
        JOIN responses AS r ON r.id = t.response_id
        JOIN probes AS p ON p.id = r.probe_id
        JOIN logprobs AS l ON l.run_id = t.run_id AND l.step = t.step AND l.response_id = t.response_id
        LEFT JOIN token_logprobs AS f
               ON f.run_id = t.run_id
              AND f.step = (SELECT min(step) FROM logprobs AS e WHERE e.run_id = t.run_id)
              AND f.response_id = t.response_id
              AND f.position = t.position;
        """
}

extension Schema {
    /// Version 4 (issue 23): every response an online objective (`objective.kind` "ppo") sampled while it trained.
    ///
    /// `samples(run_id, step, data_line, sample, prompt, text, reward, kl, advantage, n_tokens, eos)`: at optimizer
    /// step `step` (1-based: the samples the step trained on), sample `sample` of the training prompt on line
    /// `data_line` of the training file; `prompt` as the file gives it (its text, or its messages as JSON), `text`
    /// the response decoded without its end-of-turn token, `reward` the reward source's score (before the missing-EOS
    /// and KL penalties), `kl` the summed per-token KL estimate to the reference, `advantage` what the update used,
    /// `n_tokens` the response's tokens (its end-of-turn token included), `eos` 1 when it ended with the end-of-turn
    /// token, 0 when it was cut at `max_tokens`.
    static let migration4 = """
        CREATE TABLE samples (
            run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step       INTEGER NOT NULL,
            data_line  INTEGER NOT NULL,
            sample     INTEGER NOT NULL,
            prompt     TEXT NOT NULL,
            text       TEXT NOT NULL,
            reward     REAL NOT NULL,
            kl         REAL NOT NULL,
            advantage  REAL NOT NULL,
            n_tokens   INTEGER NOT NULL,
            eos        INTEGER NOT NULL,
            PRIMARY KEY (run_id, step, data_line, sample)
        ) WITHOUT ROWID;
        """
}

extension Schema {
    /// Version 5 (issue 24): where a merged run was computed, and the Slurm job of a submitted run.
    /// `run_jobs(run_id, job_id, submitted_at)`: the array task (`JOB_TASK`) `alignscope slurm` last submitted the run as. `run_origins(run_id, store_id)`: for a finished run that
    /// `merge` brought in from a shard, the id of the store its checkpoints were written for (the shard's, or the
    /// origin the shard itself recorded). A later run starting from that run's weights accepts a checkpoint written
    /// for this store or for the run's origin.
    static let migration5 = """
        CREATE TABLE run_origins (
            run_id   INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
            store_id TEXT NOT NULL
        );

        CREATE TABLE run_jobs (
            run_id       INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
            job_id       TEXT NOT NULL,
            submitted_at TEXT NOT NULL DEFAULT (\(now))
        );
        """
}

extension Schema {
    /// Version 6 (issue 35): the text of the tokens a run's `token_logprobs` rows name, so that SQL users read
    /// tokens without a tokenizer. `token_texts(run_id, token, text)`: every token id of the run's token rows (the
    /// scored token and the argmax), decoded alone by the run's tokenizer (a byte-level token holding part of a
    /// multi-byte character decodes to U+FFFD; the response's text is in `responses`). Per run, because runs of one
    /// store may use different models. `token_text_deltas` is `token_deltas` with the texts joined.
    static let migration6 = """
        CREATE TABLE token_texts (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            token  INTEGER NOT NULL,
            text   TEXT NOT NULL,
            PRIMARY KEY (run_id, token)
        ) WITHOUT ROWID;

        CREATE VIEW token_text_deltas AS
        SELECT d.*, tt.text AS token_text
        FROM token_deltas AS d
        LEFT JOIN token_texts AS tt ON tt.run_id = d.run_id AND tt.token = d.token;
        """

    /// Version 7 (issue 38): per-step attribution (`attributions`: a probe response's predicted and observed one-step
    /// change; `influences`: the prediction decomposed over the step's training examples, `example` -1 the carried
    /// part), measures of training pairs (`pair_measures`: CHES at the run's starting weights) and, per response token,
    /// the token whose probability rose most since the starting weights (`token_logprobs.gain_token`, `gain`).
    static let migration7 = """
        CREATE TABLE attributions (
            run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step        INTEGER NOT NULL,
            response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
            logprob     REAL NOT NULL,
            predicted   REAL NOT NULL,
            observed    REAL NOT NULL,
            PRIMARY KEY (run_id, step, response_id)
        ) WITHOUT ROWID;

        CREATE TABLE influences (
            run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step         INTEGER NOT NULL,
            response_id  INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
            example      INTEGER NOT NULL,
            data_line    INTEGER,
            contribution REAL NOT NULL,
            cosine       REAL,
            PRIMARY KEY (run_id, step, response_id, example)
        ) WITHOUT ROWID;

        CREATE TABLE pair_measures (
            run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step      INTEGER NOT NULL,
            example   INTEGER NOT NULL,
            data_line INTEGER NOT NULL,
            name      TEXT NOT NULL,
            value     REAL,
            PRIMARY KEY (run_id, step, example, name)
        ) WITHOUT ROWID;

        ALTER TABLE token_logprobs ADD COLUMN gain_token INTEGER;
        ALTER TABLE token_logprobs ADD COLUMN gain REAL;
        """

    /// Version 8 (issue 41): two views for `sqlite3` without hand-written joins, both carrying experiment and run names.
    /// `run_overview`: one row per run with its stage (the name's component after the experiment's, when it is not a
    /// swept value `key=value`), status, last step and loss, and the settings that vary between the experiment's runs
    /// (`key=value, ...` from `params`, keys in order). `response_scores`: one row per recorded log-probability with the
    /// probe's split, index and prompt, the response's category and text, its token count, and the log-probability
    /// summed and per token.
    static let migration8 = """
        CREATE VIEW run_overview AS
        SELECT r.id AS run_id,
               e.name AS experiment,
               r.name AS run,
               CASE WHEN r.name = e.name OR substr(r.name, 1, length(e.name) + 1) != e.name || '/' THEN NULL
                    ELSE (SELECT CASE WHEN instr(first, '=') > 0 THEN NULL ELSE first END
                          FROM (SELECT CASE WHEN instr(rest, '/') > 0 THEN substr(rest, 1, instr(rest, '/') - 1) ELSE rest END AS first
                                FROM (SELECT substr(r.name, length(e.name) + 2) AS rest)))
               END AS stage,
               r.status,
               r.last_step,
               (SELECT t.value FROM train_metrics AS t WHERE t.run_id = r.id AND t.name = 'loss' ORDER BY t.step DESC LIMIT 1) AS last_loss,
               (SELECT group_concat(key || '=' || value, ', ')
                FROM (SELECT p.key, p.value FROM params AS p
                      WHERE p.run_id = r.id
                        AND p.key IN (SELECT q.key FROM params AS q JOIN runs AS o ON o.id = q.run_id
                                      WHERE o.experiment_id = r.experiment_id
                                      GROUP BY q.key
                                      HAVING count(DISTINCT q.value) > 1
                                          OR count(*) < (SELECT count(*) FROM runs AS a WHERE a.experiment_id = r.experiment_id))
                      ORDER BY p.key)) AS varying,
               r.seed,
               r.started_at,
               r.finished_at,
               r.error
        FROM runs AS r
        JOIN experiments AS e ON e.id = r.experiment_id;

        CREATE VIEW response_scores AS
        SELECT e.name AS experiment,
               r.name AS run,
               l.run_id AS run_id,
               l.step AS step,
               p.split AS split,
               s.category AS category,
               p.idx AS probe,
               p.prompt AS prompt,
               s.text AS text,
               l.n_tokens AS tokens,
               l.logprob AS logprob,
               l.logprob / nullif(l.n_tokens, 0) AS token_logprob,
               l.response_id AS response_id
        FROM logprobs AS l
        JOIN runs AS r ON r.id = l.run_id
        JOIN experiments AS e ON e.id = r.experiment_id
        JOIN responses AS s ON s.id = l.response_id
        JOIN probes AS p ON p.id = s.probe_id;
        """
}
