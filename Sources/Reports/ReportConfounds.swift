import Foundation
import RunStore

/// The confound audit: "look for the artifact first", done by the tool for every run, category and split.
///
/// - `length_correlation`: Pearson's r between each response's change (first to last step) and its length in tokens.
///   A change that tracks length is what a per-token effect summed over a response looks like.
/// - With per-token rows (`eval.tokens`): the mean per-response change carried by the first token after the prompt,
///   by the end-of-turn token (templates that end a turn with one) and by the body (every other token), each as a
///   share of the mean total change: first + body + end of turn = 1.
///
/// Flags (thresholds chosen to catch what the README's findings found by hand, stated in the report):
/// `length` when |r| >= 0.5 over at least 8 responses; `end of turn` or `first token` when that token carries at
/// least half of a mean change of at least 0.1 nats in size.
struct ConfoundRow {
    var run: RunRecord
    var key: CategorySplit
    var responses: Int
    var meanTokens: Double
    var change: Double
    var lengthCorrelation: Double?
    var firstShare: Double?
    var bodyShare: Double?
    var endOfTurnShare: Double?

    static let correlationFlag = 0.5
    static let minimumResponses = 8
    static let shareFlag = 0.5
    static let minimumChange = 0.1

    var flags: [String] {
        var out: [String] = []
        if let r = lengthCorrelation, abs(r) >= Self.correlationFlag, responses >= Self.minimumResponses { out.append("length") }
        if abs(change) >= Self.minimumChange {
            if let s = endOfTurnShare, s >= Self.shareFlag { out.append("end of turn") }
            if let s = firstShare, s >= Self.shareFlag { out.append("first token") }
        }
        return out
    }
}

/// Pearson's correlation of two equally long samples; nil for fewer than 3 values or a constant one.
func pearson(_ x: [Double], _ y: [Double]) -> Double? {
    guard x.count == y.count, x.count >= 3 else { return nil }
    let n = Double(x.count)
    let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for (a, b) in zip(x, y) {
        sxy += (a - mx) * (b - my)
        sxx += (a - mx) * (a - mx)
        syy += (b - my) * (b - my)
    }
    guard sxx > 0, syy > 0 else { return nil }
    return sxy / (sxx * syy).squareRoot()
}

extension ReportBuilder {
    /// One row per run, category and split with responses scored at the first and last step.
    func confoundRows() -> [ConfoundRow] {
        var rows: [ConfoundRow] = []
        for run in data.runs {
            guard let c = changes[run.id] else { continue }
            let parts = data.measures.buckets[run.id]?.parts ?? [:]
            for category in data.categories {
                for split in data.splits {
                    let key = CategorySplit(category: category, split: split)
                    let deltas = c.finalDeltas(key)
                    guard !deltas.isEmpty else { continue }
                    let lengths = (c.finalProbes[key] ?? []).map { Double($0.tokens) }
                    let change = deltas.reduce(0, +) / Double(deltas.count)
                    var row = ConfoundRow(run: run, key: key, responses: deltas.count, meanTokens: lengths.reduce(0, +) / Double(max(1, lengths.count)),
                                          change: change, lengthCorrelation: pearson(deltas, lengths))
                    if let p = parts[key], p.responses > 0, p.total != 0 {
                        row.firstShare = p.first / p.total
                        row.bodyShare = p.body / p.total
                        row.endOfTurnShare = data.measures.buckets[run.id]!.endsWithTurnToken ? p.endOfTurn / p.total : nil
                    }
                    rows.append(row)
                }
            }
        }
        return rows
    }

    /// `confounds.csv`: every `ConfoundRow`, its flags joined by ";".
    func confoundsCSV(_ rows: [ConfoundRow]) -> String {
        var csv = CSVWriter(header: ["run_id", "run", "category", "split", "n", "mean_tokens", "change", "length_correlation",
                                    "first_token_share", "body_share", "end_of_turn_share", "flags"])
        for r in rows {
            csv.append([String(r.run.id), r.run.name, r.key.category, r.key.split, String(r.responses), Self.number(r.meanTokens),
                        Self.number(r.change), Self.number(r.lengthCorrelation), Self.number(r.firstShare), Self.number(r.bodyShare),
                        Self.number(r.endOfTurnShare), r.flags.joined(separator: ";")])
        }
        return csv.contents
    }

    /// The flagged rows as the index shows them.
    func confoundsTable(_ rows: [ConfoundRow]) -> Table {
        func f(_ v: Double?) -> String { v.map { NumberFormat.fixed($0, decimals: 2, trim: false) } ?? "" }
        let flagged = rows.filter { !$0.flags.isEmpty }
        return Table(
            header: ["run", "category", "split", "change", "r(change, length)", "first token", "body", "end of turn", "flags"],
            rows: flagged.map { r in
                [r.run.name, data.label(ofCategory: r.key.category), splitTitle(r.key.split), NumberFormat.fixed(r.change, decimals: 3, trim: false),
                 f(r.lengthCorrelation), f(r.firstShare), f(r.bodyShare), f(r.endOfTurnShare), r.flags.joined(separator: ", ")]
            }, numeric: [3, 4, 5, 6, 7])
    }

    var confoundNote: String {
        "Flags: `length` when the correlation r between a response's change and its length in tokens has |r| ≥ \(NumberFormat.general(ConfoundRow.correlationFlag)) over at least \(ConfoundRow.minimumResponses) responses; "
            + "`end of turn` or `first token` when that one token carries at least \(Int(ConfoundRow.shareFlag * 100))% of a mean change of at least \(NumberFormat.general(ConfoundRow.minimumChange)) nats in size "
            + "(shares of the mean per-response change: first token + body + end of turn = 1; per-token rows only, `eval.tokens`). Every row, flagged or not, is in confounds.csv."
    }
}
