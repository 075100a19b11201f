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

    /// `deltas.csv`: per run, category and split, the change from the first to the last evaluation.
    func deltasCSV() -> String {
        var csv = CSVWriter(header: Self.deltaKeys + parameterColumns(fixed: Self.deltaKeys + Self.deltaValues) + Self.deltaValues)
        for row in deltaRows() { csv.append(row.keys + row.parameters + row.values) }
        return csv.contents
    }

    static let deltaKeys = ["run_id", "run", "category", "split"]
    static let deltaValues = ["start_step", "end_step", "start", "end", "change", "frac_rose", "n"]

    struct DeltaRow {
        var keys: [String]
        var parameters: [String]
        var values: [String]
    }

    /// Rows of `deltas.csv` (also the table of the index): only categories with responses scored at
    /// both the first and the last step.
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
                    rows.append(DeltaRow(
                        keys: [String(run.id), run.name, category, split],
                        parameters: parameterFields(run),
                        values: [
                            String(changes.startStep), String(changes.endStep),
                            Self.number(pair.start.reduce(0, +) / n), Self.number(pair.end.reduce(0, +) / n),
                            Self.number(deltas.reduce(0, +) / n), Self.number(rose), String(deltas.count),
                        ]))
                }
            }
        }
        return rows
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
