/// A category within a split: the unit every curve and table row is about.
struct CategorySplit: Hashable {
    var category: String
    var split: String
}

/// Changes of per-response log-probabilities of one run relative to its first evaluation step.
///
/// A response counts at a step only if it was also scored at the first step (pairs), so a
/// category's change is the mean of its responses' own changes. A response that exists only later
/// (the dynamic `greedy` category, whose text changes at every evaluation) is paired with the
/// response of the same probe and category at the first step when there was exactly one: its change
/// is how much more likely the model's current greedy text is than its first greedy text was.
struct RunChanges {
    var startStep: Int
    var endStep: Int
    /// Steps with at least one score, ascending.
    var steps: [Int]
    /// Per category and split: the summary of per-response changes at each step.
    var byStep: [CategorySplit: [Int: SampleSummary]]
    /// Per category and split, responses scored at both the first and the last step, by response id:
    /// their first and last log-probabilities.
    var final: [CategorySplit: (start: [Double], end: [Double])]
    /// Per category and split, beside `final`: each of those responses' probe (its index in the probe file, which
    /// names the same probe in every run) and its length in tokens at the last step.
    var finalProbes: [CategorySplit: [(probeIdx: Int, tokens: Int)]]

    /// nil when the run has no scores.
    init?(scores: [ReportData.ScoreRow]) {
        guard let first = scores.map(\.step).min(), let last = scores.map(\.step).max() else { return nil }
        startStep = first
        endStep = last
        var start: [Int64: Double] = [:]
        var startOfProbe: [ProbeCategory: Double] = [:]
        var countOfProbe: [ProbeCategory: Int] = [:]
        for row in scores where row.step == first {
            start[row.responseID] = row.logprob
            let key = ProbeCategory(probeID: row.probeID, category: row.category)
            startOfProbe[key] = row.logprob
            countOfProbe[key, default: 0] += 1
        }
        var deltas: [CategorySplit: [Int: [Double]]] = [:]
        var final: [CategorySplit: (start: [Double], end: [Double])] = [:]
        var finalProbes: [CategorySplit: [(probeIdx: Int, tokens: Int)]] = [:]
        var steps = Set<Int>()
        // Rows come ordered by step and response id, so every list below is in a fixed order.
        for row in scores {
            steps.insert(row.step)
            let byProbe = ProbeCategory(probeID: row.probeID, category: row.category)
            guard let s = start[row.responseID] ?? (countOfProbe[byProbe] == 1 ? startOfProbe[byProbe] : nil) else { continue }
            let key = CategorySplit(category: row.category, split: row.split)
            deltas[key, default: [:]][row.step, default: []].append(row.logprob - s)
            if row.step == last {
                final[key, default: ([], [])].start.append(s)
                final[key, default: ([], [])].end.append(row.logprob)
                finalProbes[key, default: []].append((row.probeIdx, row.nTokens))
            }
        }
        self.steps = steps.sorted()
        byStep = deltas.mapValues { $0.compactMapValues { SampleSummary($0) } }
        self.final = final
        self.finalProbes = finalProbes
    }

    private struct ProbeCategory: Hashable {
        var probeID: Int64
        var category: String
    }

    /// Per-response changes from the first to the last step.
    func finalDeltas(_ key: CategorySplit) -> [Double] {
        guard let pair = final[key] else { return [] }
        return zip(pair.start, pair.end).map { $1 - $0 }
    }

    /// Per probe (its index in the probe file), the mean change of its responses in the category (usually one), first
    /// to last step.
    func probeChanges(_ key: CategorySplit) -> [Int: Double] {
        var sums: [Int: (Double, Int)] = [:]
        for (delta, probe) in zip(finalDeltas(key), finalProbes[key] ?? []) {
            sums[probe.probeIdx, default: (0, 0)].0 += delta
            sums[probe.probeIdx, default: (0, 0)].1 += 1
        }
        return sums.mapValues { $0.0 / Double($0.1) }
    }
}
