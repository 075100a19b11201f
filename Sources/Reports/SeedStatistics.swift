import RunStore

/// Statistics across seeds and between settings. A *setting* is a group of runs that differ only by seed
/// (`ReportData.settings`: same stage, same non-seed swept values).
///
/// Definitions (each run contributes its own mean change over a category's responses, first to last step):
/// - mean over seeds m = (1/n) Σ_k c_k, with the 95% interval m ± t(0.975, n − 1) · s / √n (Student's t, s the
///   sample standard deviation over the n seeds; none for n = 1);
/// - per probe p, r_p = share of seeds in which the probe's change rose (> 0); `sign_agreement` = mean over probes
///   of max(r_p, 1 − r_p): 1 when every probe moved the same way in every seed, 0.5 when seeds split evenly;
/// - a comparison of settings A and B over the seeds both ran (paired by seed): d_k = c_A,k − c_B,k, its mean with
///   the same t-interval; `frac_a_higher` = share of the probes both scored whose change, averaged over seeds, is
///   larger under A than under B.
struct SeedSummary {
    var runs: [RunRecord]
    var key: CategorySplit
    /// Over seeds: each run's mean change.
    var change: SampleSummary
    /// Each run's share of responses that rose, averaged over seeds.
    var fracRose: Double
    var signAgreement: Double?
    /// Per probe (its index in the probe file): the share of seeds in which it rose.
    var probeRose: [Int: Double]
    var startMean: Double
    var endMean: Double
    var responses: Int
}

struct SettingComparison {
    var a: [RunRecord]
    var b: [RunRecord]
    var key: CategorySplit
    /// Over the seeds both ran: A's change minus B's.
    var difference: SampleSummary
    var fracAHigher: Double?
    var probes: Int
}

extension ReportBuilder {
    /// A setting's name: its stage and non-seed swept values ("dpo objective.beta=0.1"), or "all runs".
    func settingName(_ runs: [RunRecord]) -> String {
        guard let run = runs.first else { return "" }
        // only keys this stage's runs differ by (a key swept in another stage, or one the run does not have, says nothing)
        let peers = data.runs.filter { ReportData.stage(of: $0) == ReportData.stage(of: run) }
        let values = data.sweptKeys.filter { !ReportData.isSeedKey($0) }.compactMap { key -> String? in
            let value = ReportData.text(ReportData.unseeded(data.params[run.id]?[key]))
            guard !value.isEmpty, Set(peers.map { ReportData.unseeded(data.params[$0.id]?[key]) }).count > 1 else { return nil }
            return "\(key)=\(value)"
        }
        let name = ([ReportData.stage(of: run)].compactMap { $0 } + values).joined(separator: " ")
        return name.isEmpty ? "all runs" : name
    }

    /// Settings of two or more evaluated runs, with their evaluated runs.
    var seededSettings: [[RunRecord]] {
        data.settings.map { $0.filter { changes[$0.id] != nil } }.filter { $0.count >= 2 }
    }

    /// Every category and split of a setting: statistics over its seeds (nil when fewer than two runs scored it).
    func seedSummary(_ runs: [RunRecord], _ key: CategorySplit) -> SeedSummary? {
        let scored = runs.filter { changes[$0.id]?.final[key].map { !$0.start.isEmpty } ?? false }
        guard scored.count >= 2 else { return nil }
        var means: [Double] = [], rose: [Double] = [], starts: [Double] = [], ends: [Double] = []
        var roseCount: [Int: (Int, Int)] = [:]
        for run in scored {
            let c = changes[run.id]!
            let deltas = c.finalDeltas(key)
            let pair = c.final[key]!
            let n = Double(deltas.count)
            means.append(deltas.reduce(0, +) / n)
            rose.append(Double(deltas.filter { $0 > 0 }.count) / n)
            starts.append(pair.start.reduce(0, +) / n)
            ends.append(pair.end.reduce(0, +) / n)
            for (probe, change) in c.probeChanges(key) {
                roseCount[probe, default: (0, 0)].0 += change > 0 ? 1 : 0
                roseCount[probe, default: (0, 0)].1 += 1
            }
        }
        let probeRose = roseCount.mapValues { Double($0.0) / Double($0.1) }
        // probes in the order of their ids: the sum is deterministic
        let agreement = probeRose.keys.sorted().map { max(probeRose[$0]!, 1 - probeRose[$0]!) }
        return SeedSummary(
            runs: scored, key: key, change: SampleSummary(means)!, fracRose: rose.reduce(0, +) / Double(rose.count),
            signAgreement: agreement.isEmpty ? nil : agreement.reduce(0, +) / Double(agreement.count), probeRose: probeRose,
            startMean: starts.reduce(0, +) / Double(starts.count), endMean: ends.reduce(0, +) / Double(ends.count),
            responses: changes[scored[0].id]!.finalDeltas(key).count)
    }

    /// Every pair of settings (each with at least one evaluated run), per category and split both scored; paired by seed
    /// when they share seeds, else over every run of each (the difference of the means, no interval).
    func comparisons() -> [SettingComparison] {
        let settings = data.settings.map { $0.filter { changes[$0.id] != nil } }.filter { !$0.isEmpty }
        guard settings.count >= 2 else { return [] }
        var out: [SettingComparison] = []
        func meanChange(_ run: RunRecord, _ key: CategorySplit) -> Double? {
            let d = changes[run.id]?.finalDeltas(key) ?? []
            return d.isEmpty ? nil : d.reduce(0, +) / Double(d.count)
        }
        func probeMeans(_ runs: [RunRecord], _ key: CategorySplit) -> [Int: Double] {
            var sums: [Int: (Double, Int)] = [:]
            for run in runs {
                for (p, c) in changes[run.id]?.probeChanges(key) ?? [:] {
                    sums[p, default: (0, 0)].0 += c
                    sums[p, default: (0, 0)].1 += 1
                }
            }
            return sums.mapValues { $0.0 / Double($0.1) }
        }
        for i in settings.indices {
            for j in settings.indices where j > i {
                let (a, b) = (settings[i], settings[j])
                let seedsB = Dictionary(b.map { ($0.seed, $0) }, uniquingKeysWith: { x, _ in x })
                let pairs = a.compactMap { run in seedsB[run.seed].map { (run, $0) } }
                for category in data.categories {
                    for split in data.splits {
                        let key = CategorySplit(category: category, split: split)
                        var diffs: [Double] = []
                        if pairs.isEmpty {
                            let ma = a.compactMap { meanChange($0, key) }, mb = b.compactMap { meanChange($0, key) }
                            if !ma.isEmpty && !mb.isEmpty { diffs = [ma.reduce(0, +) / Double(ma.count) - mb.reduce(0, +) / Double(mb.count)] }
                        } else {
                            diffs = pairs.compactMap { x, y in meanChange(x, key).flatMap { ca in meanChange(y, key).map { ca - $0 } } }
                        }
                        guard let difference = SampleSummary(diffs) else { continue }
                        let pa = probeMeans(a, key), pb = probeMeans(b, key)
                        let both = pa.keys.filter { pb[$0] != nil }
                        let higher = both.filter { pa[$0]! > pb[$0]! }.count
                        out.append(SettingComparison(a: a, b: b, key: key, difference: difference,
                                                     fracAHigher: both.isEmpty ? nil : Double(higher) / Double(both.count), probes: both.count))
                    }
                }
            }
        }
        return out
    }
}
