import Foundation
import XCTest

@testable import RunStore

/// The queries shipped in analysis/ (and the examples in analysis/README.md) run against a small
/// store and give the values computed here.
final class AnalysisTests: XCTestCase {
    static let analysis = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("analysis").path
    static let categories = ["chosen", "rejected"]

    /// logprob of probe `idx`, category `c` at `step` of run number `r`.
    static func logprob(r: Int, step: Int, idx: Int, c: Int) -> Double {
        -(20 + Double(idx) * 2.5 + Double(c) * 4) + Double(step) * 0.05 * Double(r + 1) * Double(1 + c + idx)
    }

    /// 4 runs: lr in {1e-5, 3e-5} x seed in {1, 2}; evaluations at 0, 10, 20 (run 3 stopped after 10);
    /// 3 probes (idx 2 held out) with chosen and rejected, 4 tokens each (per-token rows recorded).
    private func makeStore() throws -> (RunStore, [Int64]) {
        let store = try temporaryStore(self)
        let experiment = try store.recordExperiment(name: "sft-what", spec: "{}", specSHA256: "s")
        var runs: [Int64] = []
        for (i, (lr, seed)) in [(1e-5, 1), (1e-5, 2), (3e-5, 1), (3e-5, 2)].enumerated() {
            runs.append(try store.recordRun(
                experimentID: experiment, name: "sft-what/lr=\(lr),seed=\(seed)", config: "{}", configSHA256: "c\(i)",
                seed: Int64(seed), params: ["train.lr": .real(lr), "seed": .integer(Int64(seed))]))
        }
        let ids = try seedProbes(store, probes: 3, heldout: 1, categories: Self.categories)
        for (r, run) in runs.enumerated() {
            _ = try store.claim(runID: run)
            for step in r == 3 ? [0, 10] : [0, 10, 20] {
                var rows: [LogprobRow] = []
                for idx in 0..<3 {
                    for (c, category) in Self.categories.enumerated() {
                        let key = ResponseKey(probeIdx: idx, category: category, text: "\(category) \(idx)")
                        let lp = Self.logprob(r: r, step: step, idx: idx, c: c)
                        rows.append(LogprobRow(
                            responseID: ids[key]!, logprob: lp, nTokens: 4,
                            tokens: (0..<4).map { TokenRow(token: Int32($0), logprob: lp / 4, argmax: 0) }))
                    }
                }
                try store.writeEvaluation(runID: run, step: step, rows: rows)
                if step > 0 { try store.writeTrainMetrics(runID: run, step: step, metrics: [("loss", 3 - Double(step) / 10 - Double(r))]) }
            }
            if r != 3 { try store.finish(runID: run) }
        }
        return (store, runs)
    }

    private func run(_ file: String, _ store: RunStore, _ parameters: [String: SQLiteValue]) throws -> [[String: SQLiteValue]] {
        let sql = try String(contentsOfFile: Self.analysis + "/" + file, encoding: .utf8)
        return try store.rows(sql, named: parameters)
    }

    func testEveryQueryFileIsCovered() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.analysis).filter { $0.hasSuffix(".sql") }.sorted()
        // by_learning_rate, final_change, rejected_above_chosen, train_vs_heldout: tested in ReportsTests/AnalysisSQLTests.swift;
        // samples.sql in ExperimentsTests/PPORunTests.swift
        XCTAssertEqual(files, ["argmax_vs_rest.sql", "attribution_fit.sql", "attribution_sources.sql", "by_learning_rate.sql", "chosen_minus_rejected.sql", "curves.sql", "final_change.sql", "final_deltas.sql",
                               "rejected_above_chosen.sql", "samples.sql", "status.sql", "sweep.sql", "train_vs_heldout.sql"])
    }

    func testStatus() throws {
        let (store, runs) = try makeStore()
        let rows = try run("status.sql", store, ["experiment": "sft-what"])
        XCTAssertEqual(rows.map { $0["run_id"] }, runs.map { .integer($0) })
        XCTAssertEqual(rows.map { $0["status"] }, ["finished", "finished", "finished", "running"])
        XCTAssertEqual(rows.map { $0["last_loss"]!.double! }, [1, 0, -1, -1])
        XCTAssertEqual(try run("status.sql", store, ["experiment": "other"]).count, 0)
    }

    func testCurvesAndChosenMinusRejected() throws {
        let (store, _) = try makeStore()
        let curves = try run("curves.sql", store, ["experiment": "sft-what"])
        XCTAssertEqual(curves.count, (3 * 3 + 2) * 2 * 2)
        let gaps = try run("chosen_minus_rejected.sql", store, ["experiment": "sft-what"])
        XCTAssertEqual(gaps.count, (3 * 3 + 2) * 2)
        for row in gaps {
            let name = row["run"]!.string!
            let r = (name.contains("3e-05") ? 2 : 0) + (name.hasSuffix("seed=2") ? 1 : 0)
            let step = row["step"]!.int!
            let idxs = row["split"] == "heldout" ? [2] : [0, 1]
            func mean(_ c: Int) -> Double { idxs.map { Self.logprob(r: r, step: step, idx: $0, c: c) }.reduce(0, +) / Double(idxs.count) }
            XCTAssertEqual(row["chosen"]!.double!, mean(0), accuracy: 1e-12)
            XCTAssertEqual(row["rejected"]!.double!, mean(1), accuracy: 1e-12)
            XCTAssertEqual(row["chosen_minus_rejected"]!.double!, mean(0) - mean(1), accuracy: 1e-12)
        }
    }

    func testFinalDeltasUseEachRunsLastStep() throws {
        let (store, _) = try makeStore()
        let rows = try run("final_deltas.sql", store, ["experiment": "sft-what"])
        XCTAssertEqual(rows.count, 4 * 2 * 2)
        for row in rows {
            let name = row["run"]!.string!
            let r = (name.contains("3e-05") ? 2 : 0) + (name.hasSuffix("seed=2") ? 1 : 0)
            let step = r == 3 ? 10 : 20
            XCTAssertEqual(row["step"], .integer(Int64(step)))
            let c = Self.categories.firstIndex(of: row["category"]!.string!)!
            let idxs = row["split"] == "heldout" ? [2] : [0, 1]
            let deltas = idxs.map { Self.logprob(r: r, step: step, idx: $0, c: c) - Self.logprob(r: r, step: 0, idx: $0, c: c) }
            XCTAssertEqual(row["mean_delta"]!.double!, deltas.reduce(0, +) / Double(deltas.count), accuracy: 1e-12)
            XCTAssertEqual(row["n_up"], .integer(Int64(deltas.filter { $0 > 0 }.count)))
            XCTAssertEqual(row["n"], .integer(Int64(idxs.count)))
        }
    }

    func testSweepGroupsRunsByParameterValue() throws {
        let (store, _) = try makeStore()
        let rows = try run("sweep.sql", store, ["experiment": "sft-what", ":param": "train.lr"])
        XCTAssertEqual(rows.count, 2 * 2 * 2)
        // without :param, every parameter whose value differs between the runs; without :experiment, every experiment
        let every = try run("sweep.sql", store, ["experiment": .null, "param": .null])
        XCTAssertEqual(Set(every.map { $0["param"]!.string! }), ["train.lr", "seed"])
        XCTAssertEqual(every.filter { $0["param"] == "train.lr" }.map { $0["mean_logprob"] }, rows.map { $0["mean_logprob"] })
        XCTAssertEqual(try run("status.sql", store, ["experiment": .null]).count, 4)
        let chosenTrain = rows.filter { $0["category"] == "chosen" && $0["split"] == "train" }
        XCTAssertEqual(chosenTrain.map { $0["value"] }, [.real(1e-5), .real(3e-5)])
        XCTAssertEqual(chosenTrain.map { $0["runs"] }, [2, 2])
        // lr=3e-5: run 2 at step 20 and run 3 at its last step, 10.
        func trainChosenMean(r: Int, step: Int) -> Double {
            (Self.logprob(r: r, step: step, idx: 0, c: 0) + Self.logprob(r: r, step: step, idx: 1, c: 0)) / 2
        }
        let expected = (trainChosenMean(r: 2, step: 20) + trainChosenMean(r: 3, step: 10)) / 2
        XCTAssertEqual(chosenTrain[1]["mean_logprob"]!.double!, expected, accuracy: 1e-12)
    }

    /// The views for `sqlite3` without joins (issue 41): `run_overview` names each run's experiment, stage and the
    /// settings that vary (train.lr and seed here); `response_scores` one row per log-probability with its texts.
    func testRunOverviewAndResponseScoresCarryNames() throws {
        let (store, runs) = try makeStore()
        let overview = try store.rows("SELECT * FROM run_overview ORDER BY run_id", named: [:])
        XCTAssertEqual(overview.map { $0["run_id"] }, runs.map { .integer($0) })
        XCTAssertEqual(Set(overview.map { $0["experiment"] }), ["sft-what"])
        XCTAssertEqual(overview.map { $0["stage"] }, Array(repeating: .null, count: 4), "sweep values are not a stage")
        XCTAssertEqual(overview.map { $0["varying"] }, ["seed=1, train.lr=1.0e-05", "seed=2, train.lr=1.0e-05",
                                                        "seed=1, train.lr=3.0e-05", "seed=2, train.lr=3.0e-05"])
        XCTAssertEqual(overview.map { $0["status"] }, ["finished", "finished", "finished", "running"])
        XCTAssertEqual(overview.map { $0["last_loss"]!.double! }, [1, 0, -1, -1])
        // a staged experiment's runs: the stage is the name's component after the experiment's
        let staged = try store.recordExperiment(name: "st", spec: "{}", specSHA256: "t")
        for (i, name) in ["st/sft", "st/dpo/beta=0.1", "st/dpo/beta=0.5", "st"].enumerated() {
            _ = try store.recordRun(experimentID: staged, name: name, config: "{}", configSHA256: "st\(i)", seed: 1,
                                    params: ["objective.kind": .text(name.contains("dpo") ? "dpo" : "sft")])
        }
        let stages = try store.rows("SELECT run, stage, varying FROM run_overview WHERE experiment = 'st' ORDER BY run_id", named: [:])
        XCTAssertEqual(stages.map { $0["stage"] }, ["sft", "dpo", "dpo", .null])
        XCTAssertEqual(stages.map { $0["varying"] }, ["objective.kind=sft", "objective.kind=dpo", "objective.kind=dpo", "objective.kind=sft"])

        let scores = try store.rows("SELECT * FROM response_scores WHERE run = 'sft-what/lr=1e-05,seed=1' AND step = 10 ORDER BY probe, category", named: [:])
        XCTAssertEqual(scores.count, 3 * 2)
        for row in scores {
            let idx = Int(row["probe"]!.int!), c = Self.categories.firstIndex(of: row["category"]!.string!)!
            XCTAssertEqual(row["logprob"]!.double!, Self.logprob(r: 0, step: 10, idx: idx, c: c), accuracy: 1e-12)
            XCTAssertEqual(row["token_logprob"]!.double!, Self.logprob(r: 0, step: 10, idx: idx, c: c) / 4, accuracy: 1e-12)
            XCTAssertEqual(row["text"]!.string!, "\(row["category"]!.string!) \(idx)")
            XCTAssertEqual(row["tokens"], 4)
            XCTAssertEqual(row["experiment"], "sft-what")
            XCTAssertEqual(row["split"], idx == 2 ? "heldout" : "train")
            XCTAssertNotNil(row["prompt"]?.string)
        }
    }

    /// The example statements of analysis/README.md run and return rows.
    func testReadmeExamplesRun() throws {
        let (store, _) = try makeStore()
        let readme = try String(contentsOfFile: Self.analysis + "/README.md", encoding: .utf8)
        let blocks = readme.components(separatedBy: "```sql\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        let statements = blocks.flatMap { $0.components(separatedBy: ";\n") }
            .map { $0.split(separator: "\n").filter { !$0.hasPrefix("--") }.joined(separator: "\n") }
            .filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
            // the attribution and gain examples need a trained run's rows: ExperimentsTests/DisplacementMeasuresTests
            .filter { !$0.contains("influences") && !$0.contains("gain_token") }
        XCTAssertEqual(statements.count, 7)
        for statement in statements {
            XCTAssertFalse(try store.query(statement).isEmpty, statement)
        }
    }

    /// The same files through the sqlite3 shell, as the README shows.
    func testFilesRunInTheSqlite3Shell() throws {
        guard FileManager.default.isExecutableFile(atPath: ConcurrencyTests.sqlite3) else {
            throw XCTSkip("\(ConcurrencyTests.sqlite3) not installed")
        }
        let (store, _) = try makeStore()
        // with the parameters set, then with none (issue 41: every file runs as `sqlite3 runs.sqlite < file`; without
        // :param, sweep.sql lists every parameter that varies: train.lr and seed, 2 values each)
        let named = ["-cmd", ".param set :experiment sft-what", "-cmd", ".param set :param train.lr"]
        for (file, count, parameters) in [("status.sql", 4, named), ("curves.sql", 44, named), ("chosen_minus_rejected.sql", 22, named),
                                          ("final_deltas.sql", 16, named), ("sweep.sql", 8, named),
                                          ("status.sql", 4, []), ("curves.sql", 44, []), ("chosen_minus_rejected.sql", 22, []),
                                          ("final_deltas.sql", 16, []), ("sweep.sql", 16, [])] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ConcurrencyTests.sqlite3)
            process.arguments = ["-bail", "-readonly", "-cmd", ".timeout 10000"] + parameters + [store.path]
            process.standardInput = FileHandle(forReadingAtPath: Self.analysis + "/" + file)
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "\(file): \(text)")
            XCTAssertEqual(text.split(separator: "\n").count, count, "\(file): \(text)")
        }
    }
}
