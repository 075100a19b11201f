import Base
import Foundation
import RunStore
import XCTest

@testable import Reports

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A staged experiment (SFT, then DPO with a beta sweep) whose probes have a `greedy` response that is
/// a new text at every evaluation.
final class StagedReportTests: XCTestCase {
    var store: RunStore!
    var runs: [String: Int64] = [:]

    override func setUpWithError() throws {
        let directory = try temporaryDirectory(self)
        store = try RunStore(path: directory + "/runs.sqlite")
        let experiment = try store.recordExperiment(name: "st", spec: "{}", specSHA256: "st")
        let entries = (0..<2).map { p in
            ProbeEntry(idx: p, prompt: "prompt \(p)", split: "train",
                       responses: [ProbeResponse(category: "chosen", text: "chosen \(p)", origin: "data")])
        }
        let ids = try store.recordProbeSet(name: "probes", probes: entries)
        let probeIDs = try store.probeIDs(probeSet: "probes")
        let settings: [(String, [String: SQLiteValue])] = [
            ("st/sft", ["objective.kind": "sft", "train.lr": .real(5e-5), "train.schedule": "cosine"]),
            ("st/dpo/beta=0.1", ["objective.kind": "dpo", "objective.beta": .real(0.1), "train.lr": .real(1e-5),
                                 "train.schedule": "constant", "init_from.run": "st/sft", "init_from.step": "final"]),
            ("st/dpo/beta=0.5", ["objective.kind": "dpo", "objective.beta": .real(0.5), "train.lr": .real(1e-5),
                                 "train.schedule": "constant", "init_from.run": "st/sft", "init_from.step": "final"]),
        ]
        for (r, (name, params)) in settings.enumerated() {
            let run = try store.recordRun(experimentID: experiment, name: name, config: "{}", configSHA256: name, seed: 1, params: params)
            runs[name] = run
            for step in [0, 10] {
                var rows: [LogprobRow] = []
                for p in 0..<2 {
                    let chosen = ids[ResponseKey(probeIdx: p, category: "chosen", text: "chosen \(p)")]!
                    rows.append(LogprobRow(responseID: chosen, logprob: -20 - Double(step) * Double(r + 1), nTokens: 4))
                    // A new greedy text per run, step and probe: 3 nats more likely at step 10 on probe 0, 5 on probe 1.
                    let greedy = try store.addResponse(probeID: probeIDs[p]!, category: "greedy", text: "greedy \(name) \(step) \(p)",
                                                       origin: "greedy:max_tokens=8:step=\(step)")
                    rows.append(LogprobRow(responseID: greedy, logprob: -30 + (step == 10 ? Double(3 + 2 * p) : 0), nTokens: 8))
                }
                try store.writeEvaluation(runID: run, step: step, rows: rows)
            }
        }
    }

    func testGreedyChangeIsPairedByProbeAndTitlesNameOnlyWhatTheNameDoesNot() throws {
        let files = try ReportBuilder(store: store, experiment: "st").files()
        for (name, id) in runs {
            let svg = try XCTUnwrap(files.first { $0.path == "figures/run-\(id)-change.svg" }?.contents)
            let root = try XCTUnwrap(parseXML(svg, name)?.rootElement())
            // The stage and the sweep value are in the name: nothing else in the title.
            let title = try XCTUnwrap(elements(root, "text", where: "class", is: "figure-title").first?.stringValue)
            XCTAssertEqual(title, "\(name): change in log-probability")
            // greedy has a line: the mean over probes of (greedy now - greedy at step 0) = (3 + 5) / 2.
            let series = elements(root, "g", where: "class", is: "series").compactMap { $0.value(of: "data-series") }
            XCTAssertEqual(series, ["chosen", "greedy"], name)
        }
        let deltas = try XCTUnwrap(files.first { $0.path == "deltas.csv" }?.contents)
        let greedyRows = parseCSV(deltas).filter { $0.contains("greedy") }
        XCTAssertEqual(greedyRows.count, 3, deltas)
        // the stage column, and only what varies within a stage as a parameter column (beta within dpo)
        let header = try XCTUnwrap(parseCSV(deltas).first)
        XCTAssertEqual(Array(header.prefix(6)), ["run_id", "run", "stage", "category", "split", "objective.beta"], "\(header)")
        XCTAssertEqual(Set(greedyRows.map { $0[2] }), ["sft", "dpo"])
        for row in greedyRows { XCTAssertTrue(row.contains("4"), "mean greedy change 4 nats: \(row)") }
    }

    /// Several runs: one figure with all of them, a panel per category and a line per run.
    func testAllRunsAppearSideBySideInOneFigure() throws {
        let files = try ReportBuilder(store: store, experiment: "st").files()
        let svg = try XCTUnwrap(files.first { $0.path == "figures/runs-change.svg" }?.contents)
        let root = try XCTUnwrap(parseXML(svg, "runs")?.rootElement())
        let series = elements(root, "g", where: "class", is: "series").compactMap { $0.value(of: "data-series") }
        // panels chosen and greedy, each with the three runs in the store's order
        // legends hold the names without the experiment's
        XCTAssertEqual(series, ["sft", "dpo/beta=0.1", "dpo/beta=0.5", "sft", "dpo/beta=0.1", "dpo/beta=0.5"])
        let index = try XCTUnwrap(files.first { $0.path == "index.md" }?.contents)
        XCTAssertTrue(index.contains("## All runs side by side") && index.contains("figures/runs-change.svg"), index)
    }

    func testRunChangesPairsANewResponseWithItsProbesFirstResponseOnlyWhenUnambiguous() {
        typealias Row = ReportData.ScoreRow
        let rows = [
            Row(step: 0, category: "greedy", split: "train", responseID: 1, logprob: -10, probeID: 7),
            Row(step: 0, category: "variant", split: "train", responseID: 2, logprob: -10, probeID: 7),
            Row(step: 0, category: "variant", split: "train", responseID: 3, logprob: -12, probeID: 7),
            Row(step: 5, category: "greedy", split: "train", responseID: 4, logprob: -6, probeID: 7),
            Row(step: 5, category: "variant", split: "train", responseID: 5, logprob: -1, probeID: 7),
            Row(step: 5, category: "variant", split: "train", responseID: 2, logprob: -9, probeID: 7),
        ]
        let changes = RunChanges(scores: rows)!
        XCTAssertEqual(changes.byStep[CategorySplit(category: "greedy", split: "train")]?[5]?.mean, 4)
        // Two variants at the first step: the new one (id 5) has no partner; id 2 changed by +1.
        XCTAssertEqual(changes.byStep[CategorySplit(category: "variant", split: "train")]?[5]?.mean, 1)
        XCTAssertEqual(changes.byStep[CategorySplit(category: "variant", split: "train")]?[5]?.n, 1)
    }
}
