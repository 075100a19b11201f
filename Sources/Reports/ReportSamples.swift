import Foundation
import RunStore

/// What a report shows of online runs (`objective.kind` "ppo"): the reward, KL, end-of-turn rate and length of
/// each step's samples (`run-N-online.svg`), a table of sampled responses at the first and last step, and every
/// sample in `samples.csv` (the `samples` table, schema version 4).
extension ReportBuilder {
    /// The online metrics a run records (`Trainer.ppoStep`), with their panel titles.
    static let onlineMetrics: [(name: String, title: String)] = [
        ("reward", "reward (mean score of the step's samples)"), ("kl", "KL to the reference (summed per sample)"),
        ("completions/eos_rate", "share of samples that ended their turn"), ("completions/mean_length", "mean sample length (tokens)"),
    ]

    /// The reward, KL, end-of-turn rate and mean length of every step's samples; nil for runs without them.
    func onlineFigure(_ run: RunRecord) -> ReportFigure? {
        let metrics = data.trainMetrics[run.id] ?? []
        guard metrics.contains(where: { $0.name == "completions/eos_rate" }) else { return nil }
        let raw = SeriesStyle(color: "#b8b8b8", dash: nil, marker: .circle)
        let panels = Self.onlineMetrics.map { metric in
            let rows = metrics.filter { $0.name == metric.name }
            let x = rows.map { Double($0.step) }
            return LinePanel(title: metric.title, xLabel: "step", yLabel: metric.name,
                             series: [LineSeries(label: "per step", x: x, y: rows.map(\.value), style: raw),
                                      LineSeries(label: "smoothed (EMA, weight \(NumberFormat.general(Self.smoothing)))", x: x,
                                                 y: Self.smoothed(rows.map(\.value)), style: .at(0))])
        }
        let figure = LineFigure(title: "\(runTitle(run)): online training", panels: panels)
        return ReportFigure(
            kind: .online, file: "run-\(run.id)-online.svg",
            caption: "Run \(run.name): per step, the mean reward of the sampled responses (before the KL penalty), their summed KL estimate to the reference, the share that ended with the end-of-turn token (the rest were cut at max_tokens), and their mean length in tokens. Grey: each step's value; line: smoothed with a debiased exponential moving average (weight \(NumberFormat.general(Self.smoothing)), as TensorBoard smooths).",
            svg: figure.svg(), runID: run.id)
    }

    /// The weight of the online metrics' moving average.
    static let smoothing = 0.8

    /// A debiased exponential moving average: s_t = w s_{t-1} + (1 − w) v_t from s_0 = 0, divided by 1 − w^t (the
    /// number of values seen so far), so the first points are not pulled toward 0. Missing values are skipped.
    static func smoothed(_ values: [Double?]) -> [Double?] {
        var s = 0.0, seen = 0
        return values.map { v in
            guard let v, v.isFinite else { return nil }
            seen += 1
            s = smoothing * s + (1 - smoothing) * v
            return s / (1 - pow(smoothing, Double(seen)))
        }
    }

    /// Sampled responses of the first three prompts of the first and last step: each prompt's best- and worst-scored sample.
    func samplesTable(_ run: RunRecord) -> Table? {
        guard let rows = data.samples[run.id], let first = rows.map(\.step).min(), let last = rows.map(\.step).max() else { return nil }
        var out: [[String]] = []
        for step in Array(Set([first, last])).sorted() {
            let atStep = rows.filter { $0.step == step }
            for line in Array(Set(atStep.map(\.record.dataLine))).sorted().prefix(3) {
                let group = atStep.filter { $0.record.dataLine == line }.map(\.record)
                guard let best = group.max(by: { ($0.reward, -$0.sample) < ($1.reward, -$1.sample) }),
                      let worst = group.min(by: { ($0.reward, $0.sample) < ($1.reward, $1.sample) }) else { continue }
                for (which, s) in [("best", best), ("worst", worst)] {
                    out.append([String(step), String(line), which, NumberFormat.fixed(s.reward, decimals: 3, trim: false), String(s.tokens),
                                Self.shortened(s.text, 160) + (s.eos ? " ⏎" : "")])
                }
            }
        }
        return Table(header: ["step", "line", "sample", "reward", "tokens", "text"], rows: out, numeric: [0, 1, 3, 4])
    }

    /// `samples.csv`: every sampled response of every online run (its prompt is line `data_line` of the training file).
    func samplesCSV() -> String {
        var csv = CSVWriter(header: ["run_id", "run", "step", "data_line", "sample", "reward", "kl", "advantage", "n_tokens", "eos", "text"])
        for run in data.runs {
            for (step, s) in data.samples[run.id] ?? [] {
                csv.append([String(run.id), run.name, String(step), String(s.dataLine), String(s.sample), Self.number(s.reward),
                            Self.number(s.kl), Self.number(s.advantage), String(s.tokens), s.eos ? "1" : "0", s.text])
            }
        }
        return csv.contents
    }
}
