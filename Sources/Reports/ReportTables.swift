import RunStore

/// The CSV files of a report: long format, one row per observation, swept parameters as columns.
extension ReportBuilder {
    /// Column names of the swept parameters; a key that collides with a fixed column is prefixed `param.`.
    func parameterColumns(fixed: [String]) -> [String] {
        data.sweptKeys.map { fixed.contains($0) ? "param." + $0 : $0 }
    }

    func parameterFields(_ run: RunRecord) -> [String] {
        data.sweptKeys.map { ReportData.text(data.params[run.id]?[$0]) }
    }

    /// `curves.csv`: the `category_curves` view for every run of the experiment.
    func curvesCSV() -> String {
        let keys = ["run_id", "run", "step", "category", "split"]
        let values = ["mean_logprob", "mean_token_logprob", "sem", "n"]
        var csv = CSVWriter(header: keys + parameterColumns(fixed: keys + values) + values)
        for run in data.runs {
            for row in data.curves[run.id] ?? [] {
                csv.append(
                    [String(run.id), run.name, String(row.step), row.category, row.split] + parameterFields(run)
                        + [Self.number(row.meanLogprob), Self.number(row.meanTokenLogprob), Self.number(row.sem), String(row.n)])
            }
        }
        return csv.contents
    }

    /// `deltas.csv`: per run, category and split, the change from the first to the last evaluation; then, for each
    /// setting of two or more seeds, the same over its seeds (`n_seeds` > 1, `run_id` empty).
    func deltasCSV() -> String {
        var csv = CSVWriter(header: Self.deltaKeys + parameterColumns(fixed: Self.deltaKeys + Self.deltaValues) + Self.deltaValues)
        for row in deltaRows() { csv.append(row.keys + row.parameters + row.values) }
        return csv.contents
    }

    static let deltaKeys = ["run_id", "run", "stage", "category", "split"]
    static let deltaValues = ["start_step", "end_step", "start", "end", "change", "ci_low", "ci_high", "frac_rose", "sign_agreement", "n", "n_seeds"]

    struct DeltaRow {
        var keys: [String]
        var parameters: [String]
        var values: [String]
        var key: CategorySplit
        /// The runs the row is about: one, or a setting's seeds.
        var runs: [RunRecord]
        var change: Double
        var halfWidth: Double?
        var fracRose: Double
        var signAgreement: Double?
    }

    /// Rows of `deltas.csv` (also the tables of the index): only categories with responses scored at both the first
    /// and the last step. A run's interval is over its responses (mean ± 1.96 sem); a setting's over its seeds (t).
    func deltaRows() -> [DeltaRow] {
        var rows: [DeltaRow] = []
        for run in data.runs {
            guard let changes = changes[run.id] else { continue }
            for category in data.categories {
                for split in data.splits {
                    let key = CategorySplit(category: category, split: split)
                    guard let pair = changes.final[key], !pair.start.isEmpty else { continue }
                    let deltas = changes.finalDeltas(key)
                    let n = Double(deltas.count)
                    let rose = Double(deltas.filter { $0 > 0 }.count) / n
                    let summary = SampleSummary(deltas)!
                    let half = summary.normalHalfWidth
                    rows.append(DeltaRow(
                        keys: [String(run.id), run.name, ReportData.stage(of: run) ?? "", category, split],
                        parameters: parameterFields(run),
                        values: [
                            String(changes.startStep), String(changes.endStep),
                            Self.number(pair.start.reduce(0, +) / n), Self.number(pair.end.reduce(0, +) / n),
                            Self.number(summary.mean), Self.number(half.map { summary.mean - $0 }), Self.number(half.map { summary.mean + $0 }),
                            Self.number(rose), "", String(deltas.count), "1",
                        ],
                        key: key, runs: [run], change: summary.mean, halfWidth: half, fracRose: rose, signAgreement: nil))
                }
            }
        }
        for runs in seededSettings {
            let steps = Set(runs.map { "\(changes[$0.id]!.startStep)-\(changes[$0.id]!.endStep)" })
            let first = changes[runs[0].id]!
            for category in data.categories {
                for split in data.splits {
                    guard let s = seedSummary(runs, CategorySplit(category: category, split: split)) else { continue }
                    let half = s.change.tHalfWidth
                    var parameters = parameterFields(s.runs[0])
                    for (i, key) in data.sweptKeys.enumerated() where ReportData.isSeedKey(key) { parameters[i] = "" }
                    rows.append(DeltaRow(
                        keys: ["", settingName(s.runs) + " (mean over seeds)", ReportData.stage(of: s.runs[0]) ?? "", category, split],
                        parameters: parameters,
                        values: [
                            steps.count == 1 ? String(first.startStep) : "", steps.count == 1 ? String(first.endStep) : "",
                            Self.number(s.startMean), Self.number(s.endMean), Self.number(s.change.mean),
                            Self.number(half.map { s.change.mean - $0 }), Self.number(half.map { s.change.mean + $0 }),
                            Self.number(s.fracRose), Self.number(s.signAgreement), String(s.responses), String(s.runs.count),
                        ],
                        key: s.key, runs: s.runs, change: s.change.mean, halfWidth: half, fracRose: s.fracRose, signAgreement: s.signAgreement))
                }
            }
        }
        return rows
    }

    /// `comparisons.csv`: every pair of settings, per category and split (`SettingComparison`).
    func comparisonsCSV(_ comparisons: [SettingComparison]) -> String {
        var csv = CSVWriter(header: ["a", "b", "category", "split", "difference", "ci_low", "ci_high", "n_seeds", "frac_a_higher", "n_probes"])
        for c in comparisons {
            let half = c.difference.tHalfWidth
            csv.append([settingName(c.a), settingName(c.b), c.key.category, c.key.split, Self.number(c.difference.mean),
                        Self.number(half.map { c.difference.mean - $0 }), Self.number(half.map { c.difference.mean + $0 }),
                        String(c.difference.n), Self.number(c.fracAHigher), String(c.probes)])
        }
        return csv.contents
    }

    /// `responses.csv`: every response scored at a run's first and last evaluation, with its change and length.
    func responsesCSV() -> String {
        var csv = CSVWriter(header: ["run_id", "run", "category", "split", "probe_idx", "n_tokens", "start", "end", "change"])
        for run in data.runs {
            guard let c = changes[run.id] else { continue }
            for category in data.categories {
                for split in data.splits {
                    let key = CategorySplit(category: category, split: split)
                    guard let pair = c.final[key] else { continue }
                    for (i, probe) in (c.finalProbes[key] ?? []).enumerated() {
                        csv.append([String(run.id), run.name, category, split, String(probe.probeIdx), String(probe.tokens),
                                    Self.number(pair.start[i]), Self.number(pair.end[i]), Self.number(pair.end[i] - pair.start[i])])
                    }
                }
            }
        }
        return csv.contents
    }

    /// `train.csv`: every training metric of every run.
    func trainCSV() -> String {
        let keys = ["run_id", "run", "step", "name"]
        let values = ["value"]
        var csv = CSVWriter(header: keys + parameterColumns(fixed: keys + values) + values)
        for run in data.runs {
            let rows = (data.trainMetrics[run.id] ?? []).sorted { ($0.step, $0.name) < ($1.step, $1.name) }
            for row in rows {
                csv.append([String(run.id), run.name, String(row.step), row.name] + parameterFields(run) + [Self.number(row.value)])
            }
        }
        return csv.contents
    }

    static func number(_ value: Double?) -> String {
        value.map(NumberFormat.general) ?? ""
    }
}

extension String {
    /// The string with its first letter in upper case ("held-out probes" -> "Held-out probes").
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
