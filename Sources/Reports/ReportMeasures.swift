import Base
import RunStore

/// What a report reads beside the log-probabilities (schema version 3 on): the measures' curves, the
/// per-token changes by position, and the greedy answers. Stores written before version 3 have none
/// of it and their reports are as before.
struct MeasureData: Equatable {
    /// Rows of `measure_curves` other than `logprob` (which the log-probability figures show), by run
    /// id, ordered by measure, step, category, split.
    var curves: [Int64: [MeasureRow]] = [:]
    /// Per-token changes from the first to the last evaluation by position bucket, by run id (runs
    /// without `token_logprobs` rows are absent).
    var buckets: [Int64: TokenBuckets] = [:]
    /// Greedy answers by run id (runs without a greedy category are absent).
    var greedy: [Int64: [GreedyAnswer]] = [:]

    /// Whether any run has measure curves (then the report has measures.csv and its note).
    var hasCurves: Bool { curves.values.contains { !$0.isEmpty } }

    struct MeasureRow: Equatable {
        var measure: String
        var step: Int
        var category: String
        var split: String
        var mean: Double?
        var sem: Double?
        var n: Int
    }

    /// Where in a response a token sits: the first token after the prompt, tokens 2-5, the rest, and
    /// the end-of-turn token (the last one, when the run's template ends turns with a token: ChatML).
    enum Bucket: String, CaseIterable {
        case first = "first token", early = "tokens 2-5", rest = "the rest", endOfTurn = "end of turn"

        static func of(position: Int, count: Int, endsWithTurnToken: Bool) -> Bucket {
            if endsWithTurnToken && position == count - 1 { return .endOfTurn }
            if position == 0 { return .first }
            return position <= 4 ? .early : .rest
        }
    }

    struct TokenBuckets: Equatable {
        var startStep: Int
        var endStep: Int
        /// Whether the last token of every response is the end-of-turn token (template `chatml`).
        var endsWithTurnToken: Bool
        /// Per (category, split, bucket): every token's change in log-probability, in the store's order.
        var changes: [CategorySplit: [Bucket: [Double]]]
        /// Per (category, split): the summed token changes of the first token, the end-of-turn token and the rest.
        var parts: [CategorySplit: TokenParts]
    }

    /// Sums over the responses of one category and split of their tokens' changes, by part of the response.
    struct TokenParts: Equatable {
        var responses = 0
        var first = 0.0
        var body = 0.0
        var endOfTurn = 0.0
        var total: Double { first + body + endOfTurn }
    }

    struct GreedyAnswer: Equatable {
        var step: Int
        var category: String
        var probeIdx: Int
        var text: String
        var endedTurn: Bool?
        var tokens: Int?
    }

    /// Markers of a new user turn in a greedy answer: the model speaking as the human.
    static let userTurnMarkers = ["\n\nHuman:", "<|im_start|>user"]

    static func load(store: RunStore, runs: [RunRecord], params: [Int64: [String: SQLiteValue]]) throws -> MeasureData {
        var out = MeasureData()
        guard try store.storedSchemaVersion() >= 3 else { return out }
        for run in runs {
            let id = SQLiteValue.integer(run.id)
            out.curves[run.id] = try store.query(
                """
                SELECT measure, step, category, split, mean, sem, n FROM measure_curves
                WHERE run_id = ? AND measure != 'logprob' ORDER BY measure, step, category, split
                """, [id]
            ).map {
                MeasureRow(measure: $0[0].string ?? "", step: $0[1].int ?? 0, category: $0[2].string ?? "", split: $0[3].string ?? "",
                           mean: $0[4].double, sem: $0[5].double, n: $0[6].int ?? 0)
            }
            let steps = try store.query("SELECT min(step), max(step) FROM token_logprobs WHERE run_id = ?", [id])[0]
            if let first = steps[0].int, let last = steps[1].int, last > first {
                let endsWithTurnToken = params[run.id]?["template"]?.string == "chatml"
                var changes: [CategorySplit: [Bucket: [Double]]] = [:]
                var parts: [CategorySplit: TokenParts] = [:]
                for row in try store.query(
                    """
                    SELECT category, split, position, n_tokens, delta FROM token_deltas
                    WHERE run_id = ? AND step = ? AND delta IS NOT NULL ORDER BY response_id, position
                    """, [id, .integer(Int64(last))]) {
                    guard let category = row[0].string, let split = row[1].string, let position = row[2].int, let count = row[3].int,
                          let delta = row[4].double else { continue }
                    let key = CategorySplit(category: category, split: split)
                    let bucket = Bucket.of(position: position, count: count, endsWithTurnToken: endsWithTurnToken)
                    changes[key, default: [:]][bucket, default: []].append(delta)
                    if position == 0 { parts[key, default: TokenParts()].responses += 1 }
                    switch bucket {
                    case .first: parts[key, default: TokenParts()].first += delta
                    case .endOfTurn: parts[key, default: TokenParts()].endOfTurn += delta
                    case .early, .rest: parts[key, default: TokenParts()].body += delta
                    }
                }
                if !changes.isEmpty {
                    out.buckets[run.id] = TokenBuckets(startStep: first, endStep: last, endsWithTurnToken: endsWithTurnToken, changes: changes, parts: parts)
                }
            }
            let answers = try store.query(
                """
                SELECT l.step, r.category, p.idx, r.text,
                       (SELECT value FROM measures m WHERE m.run_id = l.run_id AND m.step = l.step
                          AND m.response_id = l.response_id AND m.name = 'ended_turn'),
                       (SELECT value FROM measures m WHERE m.run_id = l.run_id AND m.step = l.step
                          AND m.response_id = l.response_id AND m.name = 'generated_tokens')
                FROM logprobs AS l JOIN responses AS r ON r.id = l.response_id JOIN probes AS p ON p.id = r.probe_id
                WHERE l.run_id = ? AND r.origin LIKE 'greedy:%'
                ORDER BY l.step, r.category, p.idx
                """, [id]
            ).map {
                GreedyAnswer(step: $0[0].int ?? 0, category: $0[1].string ?? "", probeIdx: $0[2].int ?? 0, text: $0[3].string ?? "",
                             endedTurn: $0[4].double.map { $0 == 1 }, tokens: $0[5].double.map { Int($0) })
            }
            if !answers.isEmpty { out.greedy[run.id] = answers }
        }
        return out
    }
}

extension ReportBuilder {
    /// The measures with curves for `run`, in `Measure` order (then any other name alphabetically).
    func measureNames(_ run: RunRecord) -> [String] {
        let present = Set((data.measures.curves[run.id] ?? []).map(\.measure))
        let known = Measure.allCases.map(\.rawValue)
        return known.filter(present.contains) + present.subtracting(known).sorted()
    }

    static func label(ofMeasure name: String) -> String {
        Measure(rawValue: name)?.label ?? name
    }

    /// One figure per measure of `run`: the mean of each category per step, train and held-out panels.
    func measureFigures(_ run: RunRecord) -> [ReportFigure] {
        let rows = data.measures.curves[run.id] ?? []
        return measureNames(run).map { name in
            let mine = rows.filter { $0.measure == name }.map {
                CurvePoint(step: $0.step, category: $0.category, split: $0.split, mean: $0.mean, sem: $0.sem)
            }
            let panels = curvePanels(mine, yLabel: Self.label(ofMeasure: name))
            let figure = LineFigure(title: "\(runTitle(run)): \(name)", panels: panels, sharedY: true, legendNote: Self.bandNote)
            return ReportFigure(
                kind: .measure, file: "run-\(run.id)-measure-\(name).svg",
                caption: "Run \(run.name): `\(name)` (\(Self.label(ofMeasure: name))) of each category, mean over probes, at each evaluation step.",
                svg: figure.svg(), runID: run.id)
        }
    }

    /// The learning-dynamics paper's view of the squeezing effect: per category, the teacher-forced argmax
    /// sequence's log-probability beside the log of the mass outside the argmax, train and held-out.
    func squeezeFigure(_ run: RunRecord) -> ReportFigure? {
        let rows = data.measures.curves[run.id] ?? []
        let names = [Measure.argmaxLogprob.rawValue, Measure.exceptArgmax.rawValue]
        guard names.allSatisfy({ n in rows.contains { $0.measure == n } }) else { return nil }
        let steps = Array(Set(rows.map(\.step))).sorted()
        var panels: [LinePanel] = []
        for split in panelSplits {
            for name in names {
                panels.append(LinePanel(
                    title: "\(name), \(splitTitle(split))", xLabel: "step", yLabel: Self.label(ofMeasure: name),
                    series: data.categories.compactMap { category -> LineSeries? in
                        var byStep: [Int: Double] = [:]
                        for row in rows where row.measure == name && row.category == category && row.split == split { byStep[row.step] = row.mean }
                        guard !byStep.isEmpty else { return nil }
                        return LineSeries(label: data.label(ofCategory: category), x: steps.map(Double.init), y: steps.map { byStep[$0] }, style: data.style(ofCategory: category))
                    }))
            }
        }
        let figure = LineFigure(title: "\(runTitle(run)): argmax against the rest", panels: panels)
        return ReportFigure(
            kind: .squeeze, file: "run-\(run.id)-argmax-vs-rest.svg",
            caption: "Run \(run.name): `argmax_logprob` (log-probability of the teacher-forced argmax sequence) beside `except_argmax` (log of the mass outside the argmax, summed over positions), mean over probes. "
                + squeezeSentence(run),
            svg: figure.svg(), runID: run.id)
    }

    /// In words: how argmax_logprob and except_argmax of each category moved from the first to the last
    /// evaluation (all probes, both splits weighted by their probe counts).
    func squeezeSentence(_ run: RunRecord) -> String {
        let rows = data.measures.curves[run.id] ?? []
        guard let first = rows.map(\.step).min(), let last = rows.map(\.step).max(), last > first else { return "" }
        func pooled(_ name: String, _ category: String, _ step: Int) -> Double? {
            let at = rows.filter { $0.measure == name && $0.category == category && $0.step == step && $0.mean != nil }
            let n = at.reduce(0) { $0 + $1.n }
            return n == 0 ? nil : at.reduce(0.0) { $0 + $1.mean! * Double($1.n) } / Double(n)
        }
        var parts: [String] = []
        for category in data.categories {
            guard let a0 = pooled("argmax_logprob", category, first), let a1 = pooled("argmax_logprob", category, last),
                  let e0 = pooled("except_argmax", category, first), let e1 = pooled("except_argmax", category, last) else { continue }
            let argmax = a1 > a0 ? "rose" : (a1 < a0 ? "fell" : "stayed")
            let rest = e1 > e0 ? "rose" : (e1 < e0 ? "fell" : "stayed")
            let reading: String
            switch (a1 > a0, e1 > e0) {
            case (true, false): reading = "mass moved onto the argmax tokens (peakier)"
            case (false, true): reading = "mass moved off the argmax tokens (flatter)"
            case (true, true): reading = "both rose"
            case (false, false): reading = "both fell"
            }
            // the change itself, to 3 significant digits: a small one is not rounded away ("fell -0.26 -> -0.26")
            func moved(_ word: String, _ x0: Double, _ x1: Double) -> String {
                word == "stayed" ? "stayed at \(NumberFormat.fixed(x0, decimals: 2, trim: false))"
                    : "\(word) by \(NumberFormat.significant(abs(x1 - x0), digits: 3)) (\(NumberFormat.fixed(x0, decimals: 2, trim: false)) → \(NumberFormat.fixed(x1, decimals: 2, trim: false)))"
            }
            parts.append("\(data.label(ofCategory: category)): argmax \(moved(argmax, a0, a1)), rest \(moved(rest, e0, e1)): \(reading)")
        }
        return parts.isEmpty ? "" : "From step \(first) to \(last): " + parts.joined(separator: "; ") + "."
    }

    /// Where the change happens: each token's change in log-probability from the first to the last
    /// evaluation, by position bucket and category (runs with `eval.tokens`).
    func positionFigure(_ run: RunRecord) -> ReportFigure? {
        guard let buckets = data.measures.buckets[run.id] else { return nil }
        let shown = MeasureData.Bucket.allCases.filter { $0 != .endOfTurn || buckets.endsWithTurnToken }
        // held-out probes (what training did not see), or train when the run has none
        let split = buckets.changes.keys.contains { $0.split == "heldout" } ? "heldout" : (data.splits.first ?? "train")
        let panels = shown.map { bucket in
            DistributionPanel(
                title: bucket.rawValue, valueLabel: "change in token log-probability (nats)",
                groups: data.categories.compactMap { category in
                    guard let values = buckets.changes[CategorySplit(category: category, split: split)]?[bucket], !values.isEmpty else { return nil }
                    return Distribution(label: data.label(ofCategory: category), values: values, style: data.style(ofCategory: category))
                },
                referenceValue: 0)
        }.filter { !$0.groups.isEmpty }
        guard !panels.isEmpty else { return nil }
        let figure = DistributionFigure(title: "\(runTitle(run)): change by token position, step \(buckets.startStep) to \(buckets.endStep)", panels: panels)
        return ReportFigure(
            kind: .positions, file: "run-\(run.id)-positions.svg",
            caption: "Run \(run.name): change of each response token's log-probability from step \(buckets.startStep) to \(buckets.endStep), by where the token sits: "
                + "the first token after the prompt, tokens 2-5, the rest"
                + (buckets.endsWithTurnToken ? ", and the end-of-turn token" : " (the template ends turns with no token)")
                + "; \(splitTitle(split)) (every split's tokens are in confounds.csv and explore.html); box = quartiles, marker = mean.",
            svg: figure.svg(), runID: run.id)
    }

    /// Per step of each greedy category: answers, share that ended their turn, share that start a new user
    /// turn, mean tokens decoded.
    func greedyTable(_ run: RunRecord) -> Table? {
        guard let answers = data.measures.greedy[run.id] else { return nil }
        var rows: [[String]] = []
        for category in Set(answers.map(\.category)).sorted() {
            let ofCategory = answers.filter { $0.category == category }
            for step in Set(ofCategory.map(\.step)).sorted() {
                let mine = ofCategory.filter { $0.step == step }
                let n = Double(mine.count)
                let ended = mine.compactMap(\.endedTurn)
                let tokens = mine.compactMap(\.tokens)
                let user = mine.filter { a in MeasureData.userTurnMarkers.contains { a.text.contains($0) } }.count
                rows.append([
                    category, String(step), String(mine.count),
                    ended.isEmpty ? "" : NumberFormat.fixed(Double(ended.filter { $0 }.count) / Double(ended.count), decimals: 2, trim: false),
                    NumberFormat.fixed(Double(user) / n, decimals: 2, trim: false),
                    tokens.isEmpty ? "" : NumberFormat.fixed(Double(tokens.reduce(0, +)) / Double(tokens.count), decimals: 1, trim: false),
                ])
            }
        }
        return Table(header: ["category", "step", "answers", "ended turn", "new user turn", "mean tokens"], rows: rows, numeric: [1, 2, 3, 4, 5])
    }

    /// The greedy answers of the first three probes at the first and the last evaluation; ⏎ marks an answer
    /// that ended its turn.
    func greedyAnswersTable(_ run: RunRecord) -> Table? {
        guard let answers = data.measures.greedy[run.id], let first = answers.map(\.step).min(),
              let last = answers.map(\.step).max() else { return nil }
        let probes = Array(Set(answers.map(\.probeIdx))).sorted().prefix(3)
        var rows: [[String]] = []
        for category in Array(Set(answers.map(\.category))).sorted() {
            for probe in probes {
                func text(_ step: Int) -> String {
                    guard let a = answers.first(where: { $0.category == category && $0.step == step && $0.probeIdx == probe }) else { return "" }
                    return Self.shortened(a.text, 160) + (a.endedTurn == true ? " ⏎" : "")
                }
                rows.append([category, String(probe), text(first), text(last)])
            }
        }
        return Table(header: ["category", "probe", "step \(first)", "step \(last)"], rows: rows, numeric: [1])
    }

    /// `text` on one line (line breaks written as `\n`), cut to `limit` characters.
    static func shortened(_ text: String, _ limit: Int) -> String {
        let line = text.replacingOccurrences(of: "\n", with: "\\n")
        return line.count <= limit ? line : String(line.prefix(limit - 1)) + "…"
    }

    /// `measures.csv`: the `measure_curves` view (every measure but `logprob`, which is in curves.csv).
    func measuresCSV() -> String {
        let keys = ["run_id", "run", "step", "category", "split", "measure"]
        let values = ["mean", "sem", "n"]
        var csv = CSVWriter(header: keys + parameterColumns(fixed: keys + values) + values)
        for run in data.runs {
            let rows = (data.measures.curves[run.id] ?? []).sorted {
                ($0.step, ReportData.rank($0.category, in: ReportData.categoryOrder), $0.category, $0.split, $0.measure)
                    < ($1.step, ReportData.rank($1.category, in: ReportData.categoryOrder), $1.category, $1.split, $1.measure)
            }
            for row in rows {
                csv.append([String(run.id), run.name, String(row.step), row.category, row.split, row.measure] + parameterFields(run)
                    + [Self.number(row.mean), Self.number(row.sem), String(row.n)])
            }
        }
        return csv.contents
    }
}
