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
        /// Shown folded (HTML `<details>`) under its caption.
        var collapsed = false
    }

    var title: String { "AlignScope report: \(data.experiment.name)" }

    var summaryLines: [String] {
        let evaluated = data.runs.filter { changes[$0.id] != nil }.count
        var lines = [
            "Experiment `\(data.experiment.name)`, recorded \(data.experiment.createdAt), spec sha256 `\(data.experiment.specSHA256)`.",
            "\(data.runs.count) run\(data.runs.count == 1 ? "" : "s"), \(evaluated) with evaluations"
                + (data.stages.isEmpty ? "" : " in \(data.stages.count) stage\(data.stages.count == 1 ? "" : "s") (\(data.stages.joined(separator: ", ")))")
                + "; categories: \(data.categories.isEmpty ? "none yet" : data.categories.map(data.label(ofCategory:)).joined(separator: ", ")).",
        ]
        if !data.sweptKeys.isEmpty {
            lines.append("Swept (varying among the runs of one stage): " + data.sweptKeys.map { "`\($0)`" }.joined(separator: ", ") + ".")
        }
        if !seededSettings.isEmpty {
            lines.append("\(seededSettings.count) setting\(seededSettings.count == 1 ? "" : "s") ran with several seeds: tables and figures show the mean over seeds with a 95% t-interval.")
        }
        return lines
    }

    var notes: [String] {
        [
            "A log-probability is the sum over a response's tokens of the natural-log probability the model gives it after the prompt (nats); higher is more likely.",
            "Change: each response's log-probability minus its own value at the run's first evaluation step (step 0 when the spec evaluates at the start), averaged over the responses of a category; a response not scored at the first step (`greedy`, whose text changes at every evaluation) is compared with its probe's response of the same category at the first step.",
            "A run's interval: mean ± 1.96 × standard error over its responses (normal approximation; many probes). Across seeds: each run contributes its mean change; mean over the n runs ± t(0.975, n − 1) × sd / √n (Student's t; few seeds).",
            "sign agreement (across seeds): per probe, r = share of seeds in which its change rose; the mean over probes of max(r, 1 − r). 1: every probe moved the same way in every seed; 0.5: the seeds split evenly.",
            "Comparisons of two settings A and B: the difference of their mean changes, paired by seed (the mean of A − B over the seeds both ran, with its t-interval; no interval with one seed); A > B: the share of probes whose change (mean over seeds) is larger under A.",
            "`deltas.csv`: per run (and, with n_seeds > 1, per setting over its seeds), category and split: start and end are the mean log-probabilities at the first and last step of the responses scored at both, change = end − start with its interval (ci_low, ci_high), frac_rose = share of those responses whose log-probability rose. `responses.csv`: every response's change. `comparisons.csv`, `confounds.csv`: below.",
            "CSV files are RFC 4180 with LF line ends, UTF-8; empty fields are missing values.",
        ] + (data.measures.hasCurves ? [
            "Measures (`measures.csv`, one figure per measure and run): computed per response from the model's next-token distribution at each response position, with the response's own tokens as context (teacher forcing); `argmax_logprob` and `except_argmax` are sums over positions, the others means. Formulas: analysis/README.md. Bands as for log-probabilities.",
        ] : [])
    }

    var runsTable: Table {
        let swept = data.sweptKeys.filter { !ReportData.isSeedKey($0) }
        let header = ["id", "run", "stage", "status", "seed", "last step", "evaluated steps"] + swept
        let rows = data.runs.map { run -> [String] in
            let steps = changes[run.id].map { "\($0.steps.count) (\($0.startStep)–\($0.endStep))" } ?? "none"
            return [String(run.id), run.name, ReportData.stage(of: run) ?? "", run.status.rawValue, String(run.seed),
                    run.lastStep.map(String.init) ?? "", steps] + swept.map { ReportData.text(ReportData.unseeded(data.params[run.id]?[$0])) }
        }
        return Table(header: header, rows: rows, numeric: [0, 4, 5])
    }

    /// Parameters with the same value in every run.
    var sharedParametersTable: Table {
        let first = data.runs.first.flatMap { data.params[$0.id] } ?? [:]
        return Table(header: ["parameter", "value"], rows: data.sharedKeys.map { [$0, ReportData.text(first[$0])] }, collapsed: true)
    }

    /// Each stage's own settings (those not shared by every run), once per stage; several values: its runs differ.
    var stageSettingsTable: Table? {
        let rows = data.stages.flatMap { stage in
            data.stageSettings(stage).map { [stage, $0.key, $0.values.joined(separator: ", ")] }
        }
        return rows.isEmpty ? nil : Table(header: ["stage", "parameter", "value(s)"], rows: rows)
    }

    /// The final change per split as tables with the categories as columns: the means over seeds (when any setting
    /// has several), then every run.
    func changeTables() -> [(caption: String, table: Table)] {
        let rows = deltaRows()
        var out: [(caption: String, table: Table)] = []
        let categories = data.categories.filter { c in rows.contains { $0.key.category == c } }
        func fixed(_ v: Double, _ d: Int = 3) -> String { NumberFormat.fixed(v, decimals: d, trim: false) }
        func percent(_ v: Double) -> String { "\(Int((v * 100).rounded()))%" }
        for split in data.splits {
            let mine = rows.filter { $0.key.split == split }
            let seeded = mine.filter { $0.runs.count > 1 }, single = mine.filter { $0.runs.count == 1 }
            for (group, isSeeds) in [(seeded, true), (single, false)] where !group.isEmpty {
                var names: [String] = []
                var cells: [String: [String: String]] = [:]
                for row in group {
                    let name = isSeeds ? settingName(row.runs) + " (\(row.runs.count) seeds)" : row.runs[0].name
                    if cells[name] == nil { names.append(name) }
                    let interval = row.halfWidth.map { " ± " + fixed($0, 2) } ?? ""
                    let tail = isSeeds ? row.signAgreement.map { " (\(percent($0)))" } ?? "" : " (\(percent(row.fracRose)))"
                    cells[name, default: [:]][row.key.category] = fixed(row.change, 2) + (isSeeds ? interval : "") + tail
                }
                let table = Table(header: [isSeeds ? "setting" : "run"] + categories.map(data.label(ofCategory:)),
                                  rows: names.map { n in [n] + categories.map { cells[n]?[$0] ?? "" } },
                                  numeric: Set(1...max(1, categories.count)))
                let caption = isSeeds
                    ? "\(splitTitle(split).capitalizedFirst): mean change over seeds (nats) ± the half-width of its 95% t-interval (in brackets: the sign agreement over probes)."
                    : "\(splitTitle(split).capitalizedFirst): each run's mean change (nats; in brackets: the share of responses that rose)."
                out.append((caption, table))
            }
        }
        return out
    }

    /// Comparisons of settings on held-out probes (train when there are none): the index's table; every split is in comparisons.csv.
    func comparisonTable(_ comparisons: [SettingComparison]) -> (caption: String, table: Table)? {
        let split = data.splits.contains("heldout") ? "heldout" : (data.splits.first ?? "train")
        let mine = comparisons.filter { $0.key.split == split }
        guard !mine.isEmpty else { return nil }
        let categories = data.categories.filter { c in mine.contains { $0.key.category == c } }
        var names: [String] = []
        var cells: [String: [String: String]] = [:]
        for c in mine {
            let name = "\(settingName(c.a)) − \(settingName(c.b))"
            if cells[name] == nil { names.append(name) }
            let d = c.difference
            let interval = d.tHalfWidth.map { " [\(NumberFormat.fixed(d.mean - $0, decimals: 2, trim: false)), \(NumberFormat.fixed(d.mean + $0, decimals: 2, trim: false))]" } ?? ""
            let higher = c.fracAHigher.map { "; A > B in \(Int(($0 * 100).rounded()))%" } ?? ""
            cells[name, default: [:]][c.key.category] = NumberFormat.fixed(d.mean, decimals: 3, trim: false) + interval + higher
        }
        let shown = Array(names.prefix(30))
        let table = Table(header: ["A − B"] + categories.map(data.label(ofCategory:)), rows: shown.map { n in [n] + categories.map { cells[n]?[$0] ?? "" } },
                          numeric: Set(1...max(1, categories.count)))
        let more = names.count > shown.count ? " The first \(shown.count) of \(names.count) pairs; every pair is in comparisons.csv." : ""
        return ("\(splitTitle(split).capitalizedFirst): difference of mean changes, A − B, paired by seed [95% t-interval when there are two or more seeds]; A > B: share of probes whose change is larger under A.\(more)", table)
    }

    /// A section of the index: heading, intro, figures, then captioned tables.
    struct Section {
        var id: String
        var heading: String
        var intro: String
        var figures: [ReportFigure] = []
        var tables: [(caption: String, table: Table)] = []
    }

    /// Every section of the index in order, tables and figures.
    func sections(_ figures: [ReportFigure]) -> [Section] {
        var sections: [Section] = []
        var settings: [(caption: String, table: Table)] = []
        if let stages = stageSettingsTable { settings.append(("Each stage's own settings (several values: the stage's runs differ).", stages)) }
        let shared = sharedParametersTable
        if !shared.rows.isEmpty { settings.append(("Settings shared by every run.", shared)) }
        sections.append(Section(id: "runs", heading: "Runs", intro: "", tables: [("", runsTable)] + settings))
        let change = changeTables()
        sections.append(Section(id: "change", heading: "Final change per category", intro: changes.isEmpty ? "No evaluations recorded yet: there is nothing to plot." : change.isEmpty ? "No responses scored at two steps yet." : "From the first to the last evaluation (deltas.csv).",
                                tables: change))
        if let comparison = comparisonTable(settingComparisons) {
            sections.append(Section(id: "comparisons", heading: "Comparisons", intro: "Each setting against each other (comparisons.csv).", tables: [comparison]))
        }
        if !confounds.isEmpty {
            let table = confoundsTable(confounds)
            sections.append(Section(id: "confounds", heading: "Confound audit",
                                    intro: (table.rows.isEmpty ? "Nothing flagged. " : "\(table.rows.count) of \(confounds.count) run, category and split rows flagged. ") + confoundNote,
                                    tables: table.rows.isEmpty ? [] : [("", table)]))
        }
        sections += [
            Section(id: "seeds", heading: "Across seeds", intro: "The main figure, averaged over the runs that differ only in their seed.",
                    figures: figures.filter { $0.kind == .seeds }),
            Section(id: "all-runs", heading: "All runs side by side", intro: "How each category's log-probability moved under each run's training.",
                    figures: figures.filter { $0.kind == .runs }),
            Section(id: "per-run", heading: "Change in log-probability, per run", intro: "The main figure, per run: how each category's log-probability moved during training.",
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
                sections.append(Section(id: "run-\(run.id)", heading: "Run \(run.id): \(run.name)", intro: data.settingDescription(run), figures: own, tables: tables))
            }
        }
        return sections.filter { !$0.figures.isEmpty || !$0.tables.isEmpty || $0.id == "change" || $0.id == "confounds" }
    }

    /// The data files the index links to, with what each holds.
    var dataLinks: [(file: String, what: String)] {
        var links: [(file: String, what: String)] = [
            ("explore.html", "explore runs, probes and tokens"),
            ("curves.csv", "mean log-probability per run, step, category, split"),
            ("deltas.csv", "change from first to last step, per run and across seeds"),
            ("responses.csv", "every response's change"),
            ("train.csv", "training metrics"),
        ]
        if !settingComparisons.isEmpty { links.append(("comparisons.csv", "settings compared")) }
        if !confounds.isEmpty { links.append(("confounds.csv", "length and token-position audit")) }
        return links
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
            body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 1220px; margin: 1.5em auto; padding: 0 1em; color: #222; line-height: 1.45; }
            table { border-collapse: collapse; font-size: 13px; margin: 0.8em 0 1.5em; }
            .wide { overflow-x: auto; max-width: 100%; }
            th, td { border: 1px solid #d0d0d0; padding: 3px 8px; text-align: left; vertical-align: top; }
            th { background: #f3f3f3; }
            td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
            figure { margin: 1.2em 0 2em; }
            figure img { max-width: 100%; height: auto; }
            figcaption { font-size: 13px; color: #555; }
            nav.toc { font-size: 14px; column-width: 280px; margin-bottom: 1em; }
            nav.toc a { display: block; }
            pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
            code { font-size: 0.92em; }
            </style>
            </head>
            <body>
            <h1>\(Self.html(title))</h1>

            """
        for line in summaryLines { html += "<p>\(Self.inlineHTML(line))</p>\n" }
        html += "<p>Data: " + dataLinks.map { "<a href=\"\($0.file)\">\($0.file)</a> (\(Self.html($0.what)))" }.joined(separator: " · ") + ".</p>\n"
        let sections = sections(figures)
        html += "<nav class=\"toc\"><strong>Contents</strong>\n" + sections.map { "<a href=\"#\($0.id)\">\(Self.html($0.heading))</a>" }.joined(separator: "\n")
            + "\n<a href=\"#notes\">Notes</a>\n<a href=\"#spec\">Spec</a>\n</nav>\n"
        for section in sections {
            html += "<h2 id=\"\(section.id)\">\(Self.html(section.heading))</h2>\n"
            if !section.intro.isEmpty { html += "<p>\(Self.inlineHTML(section.intro))</p>\n" }
            for figure in section.figures {
                html += "<figure>\n<img src=\"figures/\(Self.html(figure.file))\" alt=\"\(Self.html(figure.caption))\"/>\n"
                    + "<figcaption>\(Self.inlineHTML(figure.caption))</figcaption>\n</figure>\n"
            }
            for (caption, table) in section.tables {
                if table.collapsed {
                    html += "<details><summary>\(Self.inlineHTML(caption))</summary>\n<div class=\"wide\">\n" + Self.html(table) + "</div>\n</details>\n"
                    continue
                }
                if !caption.isEmpty { html += "<p>\(Self.inlineHTML(caption))</p>\n" }
                html += "<div class=\"wide\">\n" + Self.html(table) + "</div>\n"
            }
        }
        html += "<h2 id=\"notes\">Notes</h2>\n<ul>\n" + notes.map { "<li>\(Self.inlineHTML($0))</li>\n" }.joined() + "</ul>\n"
        html += "<h2 id=\"spec\">Spec</h2>\n<details><summary>experiment spec</summary>\n<pre>\(Self.html(data.experiment.spec))</pre>\n</details>\n"
        // the page's width as the browser laid it out, for the browser test (the page works without it)
        html += "<script>document.body.setAttribute('data-scroll-width', String(document.documentElement.scrollWidth));</script>\n"
        html += "</body>\n</html>\n"
        return html
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
        md += "Data: " + dataLinks.map { "[\($0.file)](\($0.file)) (\($0.what))" }.joined(separator: " · ") + ".\n\n"
        let sections = sections(figures)
        md += "Contents: " + (sections.map { "[\(Self.markdown($0.heading))](#\($0.id))" } + ["[Notes](#notes)", "[Spec](#spec)"]).joined(separator: " · ") + "\n\n"
        for section in sections {
            md += "<a id=\"\(section.id)\"></a>\n\n## \(Self.markdown(section.heading))\n\n"
            if !section.intro.isEmpty { md += Self.markdown(section.intro) + "\n\n" }
            for figure in section.figures {
                md += "![\(Self.markdown(figure.caption))](figures/\(figure.file))\n\n*\(Self.markdown(figure.caption))*\n\n"
            }
            for (caption, table) in section.tables {
                if !caption.isEmpty { md += Self.markdown(caption) + "\n\n" }
                md += Self.markdown(table) + "\n"
            }
        }
        md += "<a id=\"notes\"></a>\n\n## Notes\n\n" + notes.map { "- \($0)\n" }.joined() + "\n"
        md += "<a id=\"spec\"></a>\n\n## Spec\n\n````\n\(data.experiment.spec.replacingOccurrences(of: "````", with: "` ` ` `"))\n````\n"
        return md
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
