import RunStore

/// One figure of a report: its file name under `figures/`, a caption, and the SVG.
struct ReportFigure {
    enum Kind: String {
        case change, logprob, train, probeChanges = "probe-changes", seeds, measure, squeeze, positions, runs, online
    }
    var kind: Kind
    var file: String
    var caption: String
    var svg: String
    /// The run it belongs to; nil for figures across runs.
    var runID: Int64?
}

extension ReportBuilder {
    static let bandNote = "shaded: 95% interval of the mean over probes (±1.96 sem)"
    static let seedBandNote = "shaded: 95% t-interval of the mean over seeds"

    func splitTitle(_ split: String) -> String {
        switch split {
        case "train": return "train probes"
        case "heldout": return "held-out probes"
        default: return split + " probes"
        }
    }

    /// Panels' splits: those of the data, or both standard ones when there is no data yet.
    var panelSplits: [String] { data.splits.isEmpty ? ReportData.splitOrder : data.splits }

    /// A figure's title for a run: its name (which holds its stage and swept values).
    func runTitle(_ run: RunRecord) -> String { run.name }

    /// A run's name without the experiment's ("rlhf/dpo" -> "dpo"), for legends.
    func shortName(_ run: RunRecord) -> String {
        let prefix = data.experiment.name + "/"
        return run.name.hasPrefix(prefix) ? String(run.name.dropFirst(prefix.count)) : run.name
    }

    /// Every figure, in the order the index shows them.
    func figures() -> [ReportFigure] {
        var figures: [ReportFigure] = []
        for run in data.runs where changes[run.id] != nil {
            figures.append(changeFigure(run))
            figures.append(logprobFigure(run))
            figures.append(probeChangesFigure(run))
            if let squeeze = squeezeFigure(run) { figures.append(squeeze) }
            if let positions = positionFigure(run) { figures.append(positions) }
            figures += measureFigures(run)
        }
        for run in data.runs where !(data.trainMetrics[run.id] ?? []).isEmpty {
            figures.append(trainFigure(run))
            if let online = onlineFigure(run) { figures.append(online) }
        }
        figures += seedFigures()
        if let compared = runsFigure() { figures.append(compared) }
        return figures
    }

    /// Every run side by side (experiments of several runs, e.g. one per method): a panel per category with
    /// each run's mean change since its first evaluated step, held-out probes (train when there are none).
    func runsFigure() -> ReportFigure? {
        let runs = data.runs.filter { changes[$0.id] != nil }
        guard runs.count >= 2 else { return nil }
        let split = panelSplits.contains("heldout") ? "heldout" : panelSplits[0]
        let panels = data.categories.map { category in
            LinePanel(
                title: data.label(ofCategory: category), xLabel: "step", yLabel: "change since the run's first step (nats)",
                series: runs.enumerated().compactMap { index, run -> LineSeries? in
                    let c = changes[run.id]!
                    guard let byStep = c.byStep[CategorySplit(category: category, split: split)] else { return nil }
                    return LineSeries(label: shortName(run), x: c.steps.map(Double.init), y: c.steps.map { byStep[$0]?.mean },
                                      style: SeriesStyle.at(index))
                },
                referenceY: 0)
        }
        let figure = LineFigure(title: "All runs: change per category, \(splitTitle(split))", panels: panels, sharedY: true)
        return ReportFigure(
            kind: .runs, file: "runs-change.svg",
            caption: "Every run side by side: the mean change of each category's log-probability since the run's first evaluated step (\(splitTitle(split)); one panel per category, one line per run).",
            svg: figure.svg(), runID: nil)
    }

    /// Mean change of each category's log-probability from the first step, train and held-out.
    func changeFigure(_ run: RunRecord) -> ReportFigure {
        let changes = self.changes[run.id]!
        let panels = panelSplits.map { split in
            LinePanel(
                title: splitTitle(split), xLabel: "step",
                yLabel: "change in log-probability since step \(changes.startStep) (nats)",
                series: data.categories.compactMap { category -> LineSeries? in
                    guard let byStep = changes.byStep[CategorySplit(category: category, split: split)] else { return nil }
                    let steps = changes.steps
                    let summaries = steps.map { byStep[$0] }
                    return LineSeries(
                        label: data.label(ofCategory: category), x: steps.map(Double.init), y: summaries.map { $0?.mean },
                        band: (summaries.map { s in s.flatMap { s in s.normalHalfWidth.map { s.mean - $0 } } },
                               summaries.map { s in s.flatMap { s in s.normalHalfWidth.map { s.mean + $0 } } }),
                        style: data.style(ofCategory: category))
                },
                referenceY: 0)
        }
        let figure = LineFigure(title: "\(runTitle(run)): change in log-probability", panels: panels, sharedY: true, legendNote: Self.bandNote)
        return ReportFigure(
            kind: .change, file: "run-\(run.id)-change.svg",
            caption: "Run \(run.name): mean change of each category's log-probability since step \(changes.startStep), per response, averaged over probes.",
            svg: figure.svg(), runID: run.id)
    }

    /// One point of a per-category curve: the mean over probes at a step, with its standard error.
    struct CurvePoint {
        var step: Int
        var category: String
        var split: String
        var mean: Double?
        var sem: Double?
    }

    /// Train and held-out panels of per-category mean curves with ±1.96 sem bands.
    func curvePanels(_ rows: [CurvePoint], yLabel: String) -> [LinePanel] {
        let steps = Array(Set(rows.map(\.step))).sorted()
        return panelSplits.map { split in
            LinePanel(
                title: splitTitle(split), xLabel: "step", yLabel: yLabel,
                series: data.categories.compactMap { category -> LineSeries? in
                    var byStep: [Int: CurvePoint] = [:]
                    for row in rows where row.category == category && row.split == split { byStep[row.step] = row }
                    guard !byStep.isEmpty else { return nil }
                    let points = steps.map { byStep[$0] }
                    func bound(_ sign: Double) -> [Double?] {
                        points.map { p in p.flatMap { p in p.mean.flatMap { m in p.sem.map { m + sign * 1.96 * $0 } } } }
                    }
                    return LineSeries(
                        label: data.label(ofCategory: category), x: steps.map(Double.init), y: points.map { $0?.mean },
                        band: (bound(-1), bound(1)), style: data.style(ofCategory: category))
                })
        }
    }

    /// Mean log-probability of each category against step (the `category_curves` view).
    func logprobFigure(_ run: RunRecord) -> ReportFigure {
        let rows = (data.curves[run.id] ?? []).map {
            CurvePoint(step: $0.step, category: $0.category, split: $0.split, mean: $0.meanLogprob, sem: $0.sem)
        }
        let panels = curvePanels(rows, yLabel: "mean log-probability (nats)")
        let figure = LineFigure(title: "\(runTitle(run)): mean log-probability", panels: panels, sharedY: true, legendNote: Self.bandNote)
        return ReportFigure(
            kind: .logprob, file: "run-\(run.id)-logprob.svg",
            caption: "Run \(run.name): mean log-probability (sum over response tokens) of each category at each evaluation step.",
            svg: figure.svg(), runID: run.id)
    }

    /// Distribution over responses of the change from the first to the last step, per category.
    func probeChangesFigure(_ run: RunRecord) -> ReportFigure {
        let changes = self.changes[run.id]!
        let panels = panelSplits.map { split in
            DistributionPanel(
                title: splitTitle(split),
                valueLabel: "change in log-probability, step \(changes.startStep) to \(changes.endStep) (nats)",
                groups: data.categories.compactMap { category in
                    let key = CategorySplit(category: category, split: split)
                    guard changes.final[key] != nil else { return nil }
                    return Distribution(label: data.label(ofCategory: category), values: changes.finalDeltas(key), style: data.style(ofCategory: category))
                },
                referenceValue: 0)
        }
        let figure = DistributionFigure(title: "\(runTitle(run)): per-response change, step \(changes.startStep) to \(changes.endStep)", panels: panels)
        return ReportFigure(
            kind: .probeChanges, file: "run-\(run.id)-probe-changes.svg",
            caption: "Run \(run.name): change of each response's log-probability from step \(changes.startStep) to step \(changes.endStep); box = quartiles, thick line = median, marker = mean, dots = responses.",
            svg: figure.svg(), runID: run.id)
    }

    /// Training loss and learning rate (and gradient norm when recorded) against step.
    func trainFigure(_ run: RunRecord) -> ReportFigure {
        let metrics = data.trainMetrics[run.id] ?? []
        let wanted: [(name: String, title: String, label: String)] = [
            ("loss", "training loss", "loss"), ("lr", "learning rate", "learning rate"), ("grad_norm", "gradient norm (before clipping)", "gradient norm"),
        ]
        let present = Set(metrics.map(\.name))
        let shown = wanted.filter { $0.name != "grad_norm" || present.contains($0.name) }
        let panels = shown.enumerated().map { index, metric in
            let rows = metrics.filter { $0.name == metric.name }
            return LinePanel(
                title: metric.title, xLabel: "step", yLabel: metric.label,
                series: [LineSeries(label: metric.name, x: rows.map { Double($0.step) }, y: rows.map(\.value), style: .at(index))])
        }
        let figure = LineFigure(title: "\(runTitle(run)): training", panels: panels, showsLegend: false)
        return ReportFigure(
            kind: .train, file: "run-\(run.id)-train.svg",
            caption: "Run \(run.name): training " + shown.map(\.label).joined(separator: ", ") + " against step.",
            svg: figure.svg(), runID: run.id)
    }

    /// For each setting of the non-seed parameters with two or more runs: the mean over its runs of
    /// each category's mean change, with a 95% t-interval over runs.
    func seedFigures() -> [ReportFigure] {
        var figures: [ReportFigure] = []
        for (index, runs) in data.settings.enumerated() {
            let measured = runs.filter { changes[$0.id] != nil }
            guard measured.count >= 2 else { continue }
            let steps = Array(Set(measured.flatMap { changes[$0.id]!.steps })).sorted()
            let panels = panelSplits.map { split in
                LinePanel(
                    title: splitTitle(split), xLabel: "step", yLabel: "change in log-probability since first step (nats)",
                    series: data.categories.compactMap { category -> LineSeries? in
                        let key = CategorySplit(category: category, split: split)
                        let summaries = steps.map { step in
                            SampleSummary(measured.compactMap { changes[$0.id]!.byStep[key]?[step]?.mean })
                        }
                        guard summaries.contains(where: { $0 != nil }) else { return nil }
                        return LineSeries(
                            label: data.label(ofCategory: category), x: steps.map(Double.init), y: summaries.map { $0?.mean },
                            band: (summaries.map { s in s.flatMap { s in s.tHalfWidth.map { s.mean - $0 } } },
                                   summaries.map { s in s.flatMap { s in s.tHalfWidth.map { s.mean + $0 } } }),
                            style: data.style(ofCategory: category))
                    },
                    referenceY: 0)
            }
            let name = settingName(measured)
            let figure = LineFigure(
                title: "\(name): mean over \(measured.count) seeds", panels: panels, sharedY: true,
                legendNote: Self.seedBandNote)
            figures.append(ReportFigure(
                kind: .seeds, file: "setting-\(index + 1)-change.svg",
                caption: "\(name): mean over runs \(measured.map { String($0.id) }.joined(separator: ", ")) (seeds "
                    + measured.map { String($0.seed) }.joined(separator: ", ")
                    + ") of each run's mean change; band: mean ± t(0.975, n−1) × sd/√n over runs.",
                svg: figure.svg(), runID: nil))
        }
        return figures
    }
}
