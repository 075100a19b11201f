import RunStore

/// `index.html` and `index.md`: the experiment, its runs and parameters, every figure, and the
/// table of `deltas.csv`. Both are built from the same sections, so they always agree.
/// The HTML is also well-formed XML (void elements closed), so tests can parse it.
extension ReportBuilder {
    /// A table as header + rows of plain text; `numeric` marks right-aligned columns.
    struct Table {
        var header: [String]
        var rows: [[String]]
        var numeric: Set<Int> = []
    }

    var title: String { "AlignScope report: \(data.experiment.name)" }

    var summaryLines: [String] {
        let evaluated = data.runs.filter { changes[$0.id] != nil }.count
        var lines = [
            "Experiment `\(data.experiment.name)`, recorded \(data.experiment.createdAt), spec sha256 `\(data.experiment.specSHA256)`.",
            "\(data.runs.count) run\(data.runs.count == 1 ? "" : "s"), \(evaluated) with evaluations; "
                + "categories: \(data.categories.isEmpty ? "none yet" : data.categories.joined(separator: ", ")).",
        ]
        if !data.sweptKeys.isEmpty { lines.append("Swept parameters: " + data.sweptKeys.map { "`\($0)`" }.joined(separator: ", ") + ".") }
        return lines
    }

    var notes: [String] {
        [
            "A log-probability is the sum over a response's tokens of the natural-log probability the model gives it after the prompt (nats); higher is more likely.",
            "Change: each response's log-probability minus its own value at the run's first evaluation step (step 0 when the spec evaluates at the start), averaged over the responses of a category; a response not scored at the first step (`greedy`, whose text changes at every evaluation) is compared with its probe's response of the same category at the first step.",
            "Per-run bands: mean ± 1.96 × standard error over probes (normal approximation). Across-seed bands: mean over runs ± t(0.975, n − 1) × sd / √n, where each run contributes its mean change.",
            "`deltas.csv` and the table below: start and end are the mean log-probabilities at the first and last step of the responses scored at both, change = end − start, frac_rose = share of those responses whose log-probability rose.",
            "CSV files are RFC 4180 with LF line ends, UTF-8; empty fields are missing values.",
        ] + (data.measures.hasCurves ? [
            "Measures (`measures.csv`, one figure per measure and run): computed per response from the model's next-token distribution at each response position, with the response's own tokens as context (teacher forcing); `argmax_logprob` and `except_argmax` are sums over positions, the others means. Formulas: analysis/README.md. Bands as for log-probabilities.",
        ] : [])
    }

    var runsTable: Table {
        // The seed column of `runs`, unless a swept `seed` parameter already shows it.
        let seedColumn = !data.sweptKeys.contains("seed")
        let header = ["id", "name", "status"] + (seedColumn ? ["seed"] : []) + ["last step", "evaluated steps"] + data.sweptKeys
        let rows = data.runs.map { run -> [String] in
            let steps = changes[run.id].map { "\($0.steps.count) (\($0.startStep)–\($0.endStep))" } ?? "none"
            return [String(run.id), run.name, run.status.rawValue] + (seedColumn ? [String(run.seed)] : [])
                + [run.lastStep.map(String.init) ?? "", steps] + parameterFields(run)
        }
        return Table(header: header, rows: rows, numeric: seedColumn ? [0, 3, 4] : [0, 3])
    }

    /// Parameters with the same value in every run.
    var sharedParametersTable: Table {
        let swept = Set(data.sweptKeys)
        let first = data.runs.first.flatMap { data.params[$0.id] } ?? [:]
        let rows = first.keys.filter { !swept.contains($0) }.sorted().map { [$0, ReportData.text(first[$0])] }
        return Table(header: ["parameter", "value"], rows: rows)
    }

    var deltasTable: Table {
        let rows = deltaRows().map { row -> [String] in
            // values: start_step, end_step, start, end, change, frac_rose, n
            let v = row.values
            func fixed(_ s: String, _ decimals: Int) -> String {
                Double(s).map { NumberFormat.fixed($0, decimals: decimals, trim: false) } ?? s
            }
            return row.keys + row.parameters + [v[0], v[1], fixed(v[2], 3), fixed(v[3], 3), fixed(v[4], 3), fixed(v[5], 3), v[6]]
        }
        let header = Self.deltaKeys + parameterColumns(fixed: Self.deltaKeys + Self.deltaValues) + Self.deltaValues
        let first = Self.deltaKeys.count + data.sweptKeys.count
        return Table(header: header, rows: rows, numeric: Set([0] + (first..<header.count)))
    }

    /// A section of the index: heading, intro, figures, then captioned tables.
    struct Section {
        var heading: String
        var intro: String
        var figures: [ReportFigure]
        var tables: [(caption: String, table: Table)] = []
    }

    /// Figures and tables grouped into the index's sections.
    func sections(_ figures: [ReportFigure]) -> [Section] {
        var sections = [
            Section(heading: "All runs side by side", intro: "Every run in one figure: how each category's log-probability moved under each run's training.",
                    figures: figures.filter { $0.kind == .runs }),
            Section(heading: "Across seeds", intro: "The main figure, averaged over the runs that differ only in their seed: how each category's log-probability moved during training.",
                    figures: figures.filter { $0.kind == .seeds }),
            Section(heading: "Change in log-probability", intro: "The main figure, per run: how each category's log-probability moved during training.",
                    figures: figures.filter { $0.kind == .change }),
        ]
        for run in data.runs {
            let own = figures.filter { $0.runID == run.id && $0.kind != .change }
            var tables: [(caption: String, table: Table)] = []
            if let table = greedyTable(run) {
                tables.append(("What the model says: greedy answers per evaluation (ended turn: the decode stopped at the end-of-turn token; new user turn: the answer goes on as the user, \(MeasureData.userTurnMarkers.map { "`\(Self.shortened($0, 40))`" }.joined(separator: " or ")); mean tokens decoded).", table))
            }
            if let table = greedyAnswersTable(run) {
                tables.append(("Greedy answers of the first probes at the first and last evaluation (⏎: ended its turn).", table))
            }
            if let table = samplesTable(run) {
                tables.append(("Sampled responses (online training): of the first three prompts of the first and last step, the best- and worst-scored sample (⏎: ended its turn; every sample is in samples.csv).", table))
            }
            if !own.isEmpty || !tables.isEmpty {
                sections.append(Section(heading: "Run \(run.id): \(run.name)", intro: data.settingDescription(run), figures: own, tables: tables))
            }
        }
        return sections.filter { !$0.figures.isEmpty || !$0.tables.isEmpty }
    }

    // MARK: HTML

    func indexHTML(figures: [ReportFigure]) -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>\(Self.html(title))</title>
            <style>
            body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 1120px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
            table { border-collapse: collapse; font-size: 13px; margin: 0.8em 0 1.5em; }
            th, td { border: 1px solid #d0d0d0; padding: 3px 8px; text-align: left; vertical-align: top; }
            th { background: #f3f3f3; }
            td.num { text-align: right; font-variant-numeric: tabular-nums; }
            figure { margin: 1.2em 0 2em; }
            figure img { max-width: 100%; height: auto; }
            figcaption { font-size: 13px; color: #555; }
            pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
            code { font-size: 0.92em; }
            </style>
            </head>
            <body>
            <h1>\(Self.html(title))</h1>

            """
        for line in summaryLines { html += "<p>\(Self.inlineHTML(line))</p>\n" }
        html += "<p>Data: <a href=\"curves.csv\">curves.csv</a> (mean log-probability per run, step, category, split) · "
            + "<a href=\"deltas.csv\">deltas.csv</a> (change from first to last step) · "
            + "<a href=\"train.csv\">train.csv</a> (training metrics).</p>\n"
        html += "<h2>Runs</h2>\n" + Self.html(runsTable)
        let shared = sharedParametersTable
        if !shared.rows.isEmpty { html += "<details><summary>Parameters shared by all runs</summary>\n" + Self.html(shared) + "</details>\n" }
        let sections = sections(figures)
        if sections.isEmpty { html += "<p>No evaluations recorded yet: there is nothing to plot.</p>\n" }
        var deltasWritten = false
        for section in sections {
            if !deltasWritten && section.heading != "Change in log-probability" && section.heading != "Across seeds" {
                html += deltasSectionHTML
                deltasWritten = true
            }
            html += "<h2>\(Self.html(section.heading))</h2>\n"
            if !section.intro.isEmpty { html += "<p>\(Self.html(section.intro))</p>\n" }
            for figure in section.figures {
                html += "<figure>\n<img src=\"figures/\(Self.html(figure.file))\" alt=\"\(Self.html(figure.caption))\"/>\n"
                    + "<figcaption>\(Self.inlineHTML(figure.caption))</figcaption>\n</figure>\n"
            }
            for (caption, table) in section.tables { html += "<p>\(Self.inlineHTML(caption))</p>\n" + Self.html(table) }
        }
        if !deltasWritten { html += deltasSectionHTML }
        html += "<h2>Notes</h2>\n<ul>\n" + notes.map { "<li>\(Self.inlineHTML($0))</li>\n" }.joined() + "</ul>\n"
        html += "<h2>Spec</h2>\n<details><summary>experiment spec</summary>\n<pre>\(Self.html(data.experiment.spec))</pre>\n</details>\n"
        html += "</body>\n</html>\n"
        return html
    }

    var deltasSectionHTML: String {
        "<h2>Final change per category</h2>\n<p>From <a href=\"deltas.csv\">deltas.csv</a>.</p>\n"
            + (deltasTable.rows.isEmpty ? "<p>No responses scored at two steps yet.</p>\n" : Self.html(deltasTable))
    }

    static func html(_ table: Table) -> String {
        var out = "<table>\n<thead><tr>" + table.header.map { "<th>\(html($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for row in table.rows {
            out += "<tr>" + row.enumerated().map { index, cell in
                table.numeric.contains(index) ? "<td class=\"num\">\(html(cell))</td>" : "<td>\(html(cell))</td>"
            }.joined() + "</tr>\n"
        }
        return out + "</tbody>\n</table>\n"
    }

    static func html(_ text: String) -> String { XMLText.escape(text, attribute: true) }

    /// Escapes `text` and turns `code` spans into `<code>`.
    static func inlineHTML(_ text: String) -> String {
        let parts = text.split(separator: "`", omittingEmptySubsequences: false)
        return parts.enumerated().map { index, part in
            index % 2 == 1 && parts.count % 2 == 1 ? "<code>\(html(String(part)))</code>" : html(String(part))
        }.joined()
    }

    // MARK: Markdown

    func indexMarkdown(figures: [ReportFigure]) -> String {
        var md = "# \(Self.markdown(title))\n\n"
        for line in summaryLines { md += line + "\n\n" }
        md += "Data: [curves.csv](curves.csv) (mean log-probability per run, step, category, split) · "
            + "[deltas.csv](deltas.csv) (change from first to last step) · [train.csv](train.csv) (training metrics).\n\n"
        md += "## Runs\n\n" + Self.markdown(runsTable) + "\n"
        let shared = sharedParametersTable
        if !shared.rows.isEmpty { md += "Parameters shared by all runs:\n\n" + Self.markdown(shared) + "\n" }
        let sections = sections(figures)
        if sections.isEmpty { md += "No evaluations recorded yet: there is nothing to plot.\n\n" }
        var deltasWritten = false
        for section in sections {
            if !deltasWritten && section.heading != "Change in log-probability" && section.heading != "Across seeds" {
                md += deltasSectionMarkdown
                deltasWritten = true
            }
            md += "## \(Self.markdown(section.heading))\n\n"
            if !section.intro.isEmpty { md += Self.markdown(section.intro) + "\n\n" }
            for figure in section.figures {
                md += "![\(Self.markdown(figure.caption))](figures/\(figure.file))\n\n*\(Self.markdown(figure.caption))*\n\n"
            }
            for (caption, table) in section.tables { md += Self.markdown(caption) + "\n\n" + Self.markdown(table) + "\n" }
        }
        if !deltasWritten { md += deltasSectionMarkdown }
        md += "## Notes\n\n" + notes.map { "- \($0)\n" }.joined() + "\n"
        md += "## Spec\n\n````\n\(data.experiment.spec.replacingOccurrences(of: "````", with: "` ` ` `"))\n````\n"
        return md
    }

    var deltasSectionMarkdown: String {
        "## Final change per category\n\nFrom [deltas.csv](deltas.csv).\n\n"
            + (deltasTable.rows.isEmpty ? "No responses scored at two steps yet.\n\n" : Self.markdown(deltasTable) + "\n")
    }

    static func markdown(_ table: Table) -> String {
        func row(_ cells: [String]) -> String { "| " + cells.map(cell).joined(separator: " | ") + " |\n" }
        let rule = "|" + table.header.indices.map { table.numeric.contains($0) ? " ---: |" : " --- |" }.joined() + "\n"
        return row(table.header) + rule + table.rows.map(row).joined()
    }

    /// A table cell: one line, `|` escaped.
    static func cell(_ text: String) -> String {
        markdown(text).replacingOccurrences(of: "|", with: "\\|")
    }

    /// Markdown text on one line with the characters that would start markup escaped (not `_`:
    /// CommonMark/GFM do not emphasise inside words such as `non_response`).
    static func markdown(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "\n", "\r", "\r\n", "\t": out += " "
            case "\\", "*", "[", "]", "<", ">", "`": out += "\\" + String(ch)
            default: out.append(ch)
            }
        }
        return out
    }
}
