import Base
import Foundation
import Tokenizer

/// What `alignscope probes audit` prints: per-category token lengths and word overlap, and flags.
public struct AuditReport: Sendable, Equatable {
    public struct CategoryStats: Sendable, Equatable {
        public var category: String
        /// Token counts of the category's responses under the audit's tokenizer.
        public var tokens: LengthStats
        /// Mean Jaccard overlap of lower-cased words with the probe's `chosen` / `rejected` response
        /// (nil when no probe has that response).
        public var overlapWithChosen: Double?
        public var overlapWithRejected: Double?
    }

    public enum FlagKind: String, Sendable, Equatable, CaseIterable {
        /// Nothing but whitespace.
        case empty
        /// The same text in two places (a derived `other_prompt` copy excepted: that is its purpose).
        case duplicate
        /// A `random` response equal to its own probe's chosen response.
        case randomEqualsChosen = "random_equals_chosen"
        /// A paraphrase identical to its source, or with word overlap >= `paraphraseOverlapLimit`.
        case paraphraseCopiesSource = "paraphrase_copies_source"
    }

    public struct Flag: Sendable, Equatable {
        public var kind: FlagKind
        public var probe: Int
        public var category: String
        public var detail: String
    }

    /// Word overlap at or above which a paraphrase is flagged as a copy of its source.
    public static let paraphraseOverlapLimit = 0.6

    public var probeCount: Int
    public var trainCount: Int
    public var categories: [CategoryStats]
    public var flags: [Flag]
    /// How many lines were read as each form (`DataForm`), when the report comes from a file.
    public var forms: [DataForm: Int] = [:]
    /// Per response field of the lines whose prompt is joined to its responses by a separator (explicit-prompt HH:
    /// the one space after "Assistant:"): how many responses the file wrote with it and how many without (those
    /// are scored as written, right after the prompt), when the report comes from a file.
    public var separators: [String: SeparatorCount] = [:]

    /// Responses of one field with and without the leading separator.
    public struct SeparatorCount: Sendable, Equatable {
        public var with = 0
        public var without = 0
    }

    /// The report as text: a summary line, the forms read, one row per category, then the flags (or "flags: none").
    public var rendered: String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.2f", $0) } ?? "-" }
        let width = max(8, categories.map(\.category.count).max() ?? 0)
        func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return left ? s + fill : fill + s
        }
        var lines = ["probes: \(probeCount) (\(trainCount) train, \(probeCount - trainCount) heldout)"]
        if !forms.isEmpty {
            lines.append("read as: " + DataForm.allCases.compactMap { f in forms[f].map { "\(f.rawValue) \($0)" } }.joined(separator: ", "))
        }
        if !separators.isEmpty {
            lines.append("leading space (explicit-prompt HH responses with it / without it, scored as written):")
            for field in separators.keys.sorted() {
                let s = separators[field]!
                lines.append("  " + pad(field, width, left: true) + "  \(s.with) with, \(s.without) without")
            }
        }
        lines.append(pad("category", width, left: true) + "  " + ["min", "median", "mean", "max"].map { pad($0, 7) }.joined()
                     + pad("jaccard chosen", 16) + pad("jaccard rejected", 18))
        for c in categories {
            let t = c.tokens
            lines.append(pad(c.category, width, left: true) + "  "
                         + [String(t.min), String(format: "%.1f", t.median), String(format: "%.1f", t.mean), String(t.max)]
                             .map { pad($0, 7) }.joined()
                         + pad(f(c.overlapWithChosen), 16) + pad(f(c.overlapWithRejected), 18))
        }
        if flags.isEmpty {
            lines.append("flags: none")
        } else {
            lines.append("flags: \(flags.count)")
            for flag in flags {
                lines.append("  probe \(flag.probe) \(flag.category): \(flag.kind.rawValue): \(flag.detail)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Audits a probe set (its static categories; dynamic ones have no text yet).
public func audit(_ probeSet: ProbeSet, tokenizer: any TextTokenizer) -> AuditReport {
    var stats: [AuditReport.CategoryStats] = []
    for category in probeSet.categories {
        var lengths: [Int] = [], withChosen: [Double] = [], withRejected: [Double] = []
        for probe in probeSet.probes {
            guard let r = probe.response(category) else { continue }
            lengths.append(tokenizer.encode(r.text).count)
            if let chosen = probe.response("chosen") { withChosen.append(jaccard(r.text, chosen.text)) }
            if let rejected = probe.response("rejected") { withRejected.append(jaccard(r.text, rejected.text)) }
        }
        func mean(_ xs: [Double]) -> Double? { xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count) }
        stats.append(.init(category: category, tokens: LengthStats(lengths),
                           overlapWithChosen: mean(withChosen), overlapWithRejected: mean(withRejected)))
    }
    return AuditReport(probeCount: probeSet.probes.count, trainCount: probeSet.probes.filter { $0.split == .train }.count,
                       categories: stats, flags: auditFlags(probeSet))
}

/// Loads a probe file (`ProbeSet.load`) and audits it.
public func audit(path: String, tokenizer: any TextTokenizer) throws(ProbesError) -> AuditReport {
    var report = audit(try ProbeSet.load(path: path), tokenizer: tokenizer)
    for ex in try loadExamples(path: path) {
        report.forms[ex.form, default: 0] += 1
        guard ex.form == .explicitHH else { continue }
        for field in ex.fields.keys {
            if ex.isSeparated(field) { report.separators[field, default: .init()].with += 1 } else { report.separators[field, default: .init()].without += 1 }
        }
    }
    return report
}

/// A copy of another probe's response made on purpose: `random` categories and `other_prompt` derivations.
private func isOtherPromptCopy(_ r: ProbeResponse) -> Bool {
    r.category == "random" || r.origin.hasPrefix("derived:other_prompt")
}

/// The category a paraphrase category paraphrases: `paraphrased_rejected` -> `rejected`,
/// `paraphrased_chosen` -> `chosen`; nil for other names.
func paraphraseSource(_ category: String) -> String? {
    guard category.contains("paraphrase") else { return nil }
    if category.contains("rejected") { return "rejected" }
    if category.contains("chosen") { return "chosen" }
    return nil
}

func auditFlags(_ probeSet: ProbeSet) -> [AuditReport.Flag] {
    var flags: [AuditReport.Flag] = []
    var firstPlace: [String: (probe: Int, category: String)] = [:]
    for probe in probeSet.probes {
        for r in probe.responses {
            let trimmed = r.text.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty {
                flags.append(.init(kind: .empty, probe: probe.idx, category: r.category, detail: "empty response"))
                continue
            }
            if isOtherPromptCopy(r) {
                if let chosen = probe.response("chosen"), chosen.text.trimmingCharacters(in: .whitespacesAndNewlines) == trimmed {
                    flags.append(.init(kind: .randomEqualsChosen, probe: probe.idx, category: r.category,
                                       detail: "equal to its own chosen response"))
                }
            } else if let first = firstPlace[trimmed] {
                flags.append(.init(kind: .duplicate, probe: probe.idx, category: r.category,
                                   detail: "same text as probe \(first.probe) \(first.category)"))
            } else {
                firstPlace[trimmed] = (probe.idx, r.category)
            }
            if let sourceName = paraphraseSource(r.category), let source = probe.response(sourceName) {
                let overlap = jaccard(r.text, source.text)
                if source.text.trimmingCharacters(in: .whitespacesAndNewlines) == trimmed {
                    flags.append(.init(kind: .paraphraseCopiesSource, probe: probe.idx, category: r.category,
                                       detail: "identical to \(sourceName)"))
                } else if overlap >= AuditReport.paraphraseOverlapLimit {
                    flags.append(.init(kind: .paraphraseCopiesSource, probe: probe.idx, category: r.category,
                                       detail: String(format: "word overlap %.2f with \(sourceName) (limit %.2f)",
                                                      overlap, AuditReport.paraphraseOverlapLimit)))
                }
            }
        }
    }
    return flags
}
