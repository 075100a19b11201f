import Base
import RunStore

/// Everything a report shows, read from the store once and put in a fixed order, so rendering
/// is a pure function of this value.
struct ReportData {
    var storePath: String
    var experiment: ExperimentRecord
    var runs: [RunRecord]
    /// Flattened config of each run (key path -> value), by run id.
    var params: [Int64: [String: SQLiteValue]]
    /// Parameter keys whose value differs between runs of the experiment (sorted).
    var sweptKeys: [String]
    /// Categories in display order (the DESIGN order first, others alphabetically); the index
    /// of a category here is its style everywhere.
    var categories: [String]
    /// Splits in display order (`train`, `heldout`, then others).
    var splits: [String]
    /// Rows of the `category_curves` view, by run id, ordered by step, category, split.
    var curves: [Int64: [CurveRow]]
    /// Per-response changes since the first step, by run id (runs without evaluations are absent).
    /// Computed while reading, one run at a time (explore.html keeps each run's scores as a compact table, `explore`).
    var changes: [Int64: RunChanges]
    /// Training metrics, by run id, ordered by name and step.
    var trainMetrics: [Int64: [MetricRow]]
    /// Measures, per-token changes and greedy answers (schema version 3 on).
    var measures = MeasureData()
    /// Sampled responses of online runs, by run id (schema version 4 on; runs without samples are absent).
    var samples: [Int64: [(step: Int, record: SampleRecord)]] = [:]
    /// Probes, responses, every score and token rows, for explore.html.
    var explore = ExploreData()

    struct CurveRow: Equatable {
        var step: Int
        var category: String
        var split: String
        var meanLogprob: Double?
        var meanTokenLogprob: Double?
        var sem: Double?
        var n: Int
    }

    struct ScoreRow: Equatable {
        var step: Int
        var category: String
        var split: String
        var responseID: Int64
        var logprob: Double
        var probeID: Int64 = 0
        var nTokens: Int = 0
        /// The probe's index in its file: the same probe across runs (whose probe sets, and so probe ids, may differ).
        var probeIdx: Int = 0
    }

    struct MetricRow: Equatable {
        var step: Int
        var name: String
        var value: Double?
    }

    static let categoryOrder = StandardCategories.order
    static let splitOrder = ["train", "heldout"]

    /// Reads the experiment called `name` (or the only experiment when nil) from `store`.
    static func load(store: RunStore, experiment name: String?) throws -> ReportData {
        let names = try store.query("SELECT name FROM experiments ORDER BY name").compactMap { $0[0].string }
        let chosen: String
        if let name {
            guard names.contains(name) else {
                throw ReportError.experimentNotFound(path: store.path, name: name, available: names)
            }
            chosen = name
        } else {
            guard names.count == 1 else { throw ReportError.experimentNotChosen(path: store.path, available: names) }
            chosen = names[0]
        }
        guard let experiment = try store.experiment(name: chosen) else {
            throw ReportError.experimentNotFound(path: store.path, name: chosen, available: names)
        }
        let runs = try store.runs(experimentID: experiment.id)

        var params: [Int64: [String: SQLiteValue]] = [:]
        var curves: [Int64: [CurveRow]] = [:]
        var changes: [Int64: RunChanges] = [:]
        var exploreScores: [Int64: (steps: [Int], values: [Int64: [Double?]])] = [:]
        var metrics: [Int64: [MetricRow]] = [:]
        var categorySet = Set<String>()
        var splitSet = Set<String>()
        for run in runs {
            let id = SQLiteValue.integer(run.id)
            var runParams: [String: SQLiteValue] = [:]
            for row in try store.query("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [id]) {
                if let key = row[0].string { runParams[key] = row[1] }
            }
            params[run.id] = runParams
            curves[run.id] = try store.query(
                """
                SELECT step, category, split, mean_logprob, mean_token_logprob, sem, n
                FROM category_curves WHERE run_id = ? ORDER BY step, category, split
                """, [id]
            ).map {
                CurveRow(step: $0[0].int ?? 0, category: $0[1].string ?? "", split: $0[2].string ?? "",
                         meanLogprob: $0[3].double, meanTokenLogprob: $0[4].double, sem: $0[5].double, n: $0[6].int ?? 0)
            }
            let scores = try store.query(
                """
                SELECT l.step, r.category, p.split, l.response_id, l.logprob, r.probe_id, l.n_tokens, p.idx
                FROM logprobs AS l
                JOIN responses AS r ON r.id = l.response_id
                JOIN probes AS p ON p.id = r.probe_id
                WHERE l.run_id = ? ORDER BY l.step, l.response_id
                """, [id]
            ).map {
                ScoreRow(step: $0[0].int ?? 0, category: $0[1].string ?? "", split: $0[2].string ?? "",
                         responseID: $0[3].int64 ?? 0, logprob: $0[4].double ?? .nan, probeID: $0[5].int64 ?? 0, nTokens: $0[6].int ?? 0, probeIdx: $0[7].int ?? 0)
            }
            changes[run.id] = RunChanges(scores: scores)
            exploreScores[run.id] = ExploreData.scoreTable(scores)
            metrics[run.id] = try store.query(
                "SELECT step, name, value FROM train_metrics WHERE run_id = ? ORDER BY name, step", [id]
            ).map { MetricRow(step: $0[0].int ?? 0, name: $0[1].string ?? "", value: $0[2].double) }
            for row in curves[run.id]! {
                categorySet.insert(row.category)
                splitSet.insert(row.split)
            }
        }
        for run in runs {
            curves[run.id]!.sort { a, b in
                (a.step, rank(a.category, in: categoryOrder), a.category, rank(a.split, in: splitOrder), a.split)
                    < (b.step, rank(b.category, in: categoryOrder), b.category, rank(b.split, in: splitOrder), b.split)
            }
        }
        return ReportData(
            storePath: store.path, experiment: experiment, runs: runs, params: params,
            sweptKeys: sweptKeys(params: params, runs: runs),
            categories: ordered(categorySet, by: categoryOrder), splits: ordered(splitSet, by: splitOrder),
            curves: curves, changes: changes, trainMetrics: metrics,
            measures: try MeasureData.load(store: store, runs: runs, params: params),
            samples: try samples(store: store, runs: runs),
            explore: try ExploreData.load(store: store, runs: runs, scores: exploreScores))
    }

    /// Every recorded sample of each run (none before schema version 4).
    static func samples(store: RunStore, runs: [RunRecord]) throws -> [Int64: [(step: Int, record: SampleRecord)]] {
        guard try store.storedSchemaVersion() >= 4 else { return [:] }
        var out: [Int64: [(step: Int, record: SampleRecord)]] = [:]
        for run in runs {
            let rows = try store.samples(runID: run.id)
            if !rows.isEmpty { out[run.id] = rows }
        }
        return out
    }

    /// Keys whose values (a missing key counts as a value) differ among the runs of one stage: what was swept. Keys
    /// that differ only between stages are the stages' settings (`stageSettings`), not sweeps.
    static func sweptKeys(params: [Int64: [String: SQLiteValue]], runs: [RunRecord]) -> [String] {
        let allKeys = Set(params.values.flatMap(\.keys))
        let byStage = Dictionary(grouping: runs, by: { stage(of: $0) ?? "" })
        return allKeys.filter { key in
            byStage.values.contains { peers in Set(peers.map { unseeded(params[$0.id]?[key]) }).count > 1 }
        }.sorted()
    }

    /// A parameter value with the seeds taken out of a run name it holds ("e/sft/seed=2" -> "e/sft",
    /// "e/dpo/seed=1,beta=0.1" -> "e/dpo/beta=0.1"): a seed-paired run reads its own seed's earlier run
    /// (`init_from`, `data.train.from`, a label stage's policy), which makes it no other setting than its seed does.
    static func unseeded(_ value: SQLiteValue?) -> SQLiteValue? {
        guard case .text(let text)? = value, text.contains("/"), text.contains("=") else { return value }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map { part -> String in
            part.split(separator: ",").filter { item in
                guard let eq = item.firstIndex(of: "=") else { return true }
                return !isSeedKey(String(item[..<eq]))
            }.joined(separator: ",")
        }
        return .text(parts.filter { !$0.isEmpty }.joined(separator: "/"))
    }

    /// The stage a run belongs to: the component after the experiment's name in `<experiment>/<stage>[/<swept
    /// values>]`, nil for an experiment without stages (its second component, if any, is swept values: `k=v`).
    static func stage(of run: RunRecord) -> String? {
        let parts = run.name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2, !parts[1].contains("=") else { return nil }
        return String(parts[1])
    }

    /// Stages in order of their first run (empty for an experiment without stages).
    var stages: [String] {
        var seen: [String] = []
        for run in runs { if let s = Self.stage(of: run), !seen.contains(s) { seen.append(s) } }
        return seen
    }

    /// Per stage, its settings that are not those of every run (key -> the values its runs have, in run order, each
    /// once, a run name without its seeds: `unseeded`); the experiment's shared settings are `sharedKeys`.
    func stageSettings(_ stage: String) -> [(key: String, values: [String])] {
        let mine = runs.filter { Self.stage(of: $0) == stage }
        let shared = Set(sharedKeys)
        let keys = Set(mine.flatMap { params[$0.id]?.keys.map { $0 } ?? [] }).subtracting(shared).sorted()
        return keys.map { key in
            var values: [String] = []
            for run in mine {
                let v = Self.text(Self.unseeded(params[run.id]?[key]))
                if !values.contains(v) { values.append(v) }
            }
            return (key, values)
        }
    }

    /// Keys with the same value in every run.
    var sharedKeys: [String] {
        let allKeys = Set(params.values.flatMap(\.keys))
        return allKeys.filter { key in Set(runs.map { params[$0.id]?[key] }).count == 1 }.sorted()
    }

    static func rank(_ value: String, in order: [String]) -> Int {
        order.firstIndex(of: value) ?? order.count
    }

    static func ordered(_ values: Set<String>, by order: [String]) -> [String] {
        values.sorted { (rank($0, in: order), $0) < (rank($1, in: order), $1) }
    }

    /// A category as readers see it in figures and tables: its name with underscores as spaces
    /// ("paraphrased_rejected" -> "paraphrased rejected"); CSV files keep the name.
    func label(ofCategory category: String) -> String { category.replacingOccurrences(of: "_", with: " ") }

    /// The style of a category: the same in every figure of the report.
    func style(ofCategory category: String) -> SeriesStyle {
        SeriesStyle.at(categories.firstIndex(of: category) ?? categories.count)
    }

    /// The swept parameters of a run as `key=value` pairs (without `excluding`).
    func settingDescription(_ run: RunRecord, excluding: Set<String> = []) -> String {
        sweptKeys.filter { !excluding.contains($0) }.compactMap { key in
            let value = Self.text(params[run.id]?[key])
            return value.isEmpty ? nil : "\(key)=\(value)"
        }.joined(separator: " ")
    }

    /// A parameter value as written in CSV files and tables.
    static func text(_ value: SQLiteValue?) -> String {
        switch value {
        case nil, .null?: return ""
        case .integer(let v)?: return String(v)
        case .real(let v)?: return NumberFormat.general(v)
        case .text(let s)?: return s
        case .blob(let b)?: return SQLiteValue.blob(b).description
        }
    }

    /// Keys treated as random seeds when grouping runs into settings: `seed` and any `*.seed`.
    static func isSeedKey(_ key: String) -> Bool {
        key == "seed" || key.hasSuffix(".seed")
    }

    /// Swept keys that are seeds.
    var seedKeys: Set<String> { Set(sweptKeys.filter(Self.isSeedKey)) }

    /// Runs grouped by stage and every swept parameter except seeds, in order of their first run: the runs of one
    /// group differ only by seed.
    var settings: [[RunRecord]] {
        let keys = sweptKeys.filter { !Self.isSeedKey($0) }
        var groups: [[SQLiteValue?]: [RunRecord]] = [:]
        var order: [[SQLiteValue?]] = []
        for run in runs {
            let key = [Self.stage(of: run).map { SQLiteValue.text($0) }] + keys.map { Self.unseeded(params[run.id]?[$0]) }
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(run)
        }
        return order.map { groups[$0]! }
    }
}
