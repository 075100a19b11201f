import Foundation
import RunStore
import XCTest

/// Every `analysis/*.sql` file runs on the small store (through `RunStore.query`, as one
/// statement) and returns the rows the store's known numbers give.
final class AnalysisSQLTests: XCTestCase {
    var store: RunStore!
    var runIDs: [Int64] = []
    let runs: [(lr: Double, seed: Int64)] = [(1e-5, 1), (1e-5, 2), (3e-5, 1), (3e-5, 2)]

    override func setUpWithError() throws {
        store = try SmallStore.make(at: try temporaryDirectory(self) + "/runs.sqlite")
        runIDs = try SmallStore.runIDs(store)
    }

    /// Rows of an analysis file for every experiment (`:experiment` unset, as in a plain
    /// `sqlite3 runs.sqlite < file`); also checks that naming one experiment keeps exactly its rows.
    func run(_ name: String, line: UInt = #line) throws -> [[String: SQLiteValue]] {
        let sql = try String(contentsOfFile: packageRoot + "/analysis/" + name, encoding: .utf8)
        XCTAssertTrue(sql.hasPrefix("-- What it answers:"), "\(name) starts with a comment saying what it answers", line: line)
        let all = try store.rows(sql, named: ["experiment": .null])
        let exp = try store.rows(sql, named: ["experiment": "exp"])
        XCTAssertEqual(exp, all.filter { $0["experiment"] == "exp" }, "\(name) with :experiment = 'exp'", line: line)
        XCTAssertFalse(exp.isEmpty, line: line)
        XCTAssertEqual(try store.rows(sql, named: ["experiment": "missing"]), [], line: line)
        return all
    }

    func double(_ value: SQLiteValue?, line: UInt = #line) throws -> Double {
        try XCTUnwrap(value?.double, "not a number: \(String(describing: value))", line: line)
    }

    /// Per-response change from step 0 to step 10.
    func change(_ r: (lr: Double, seed: Int64), probe: Int, category: String) -> Double {
        SmallStore.logprob(lr: r.lr, seed: r.seed, probe: probe, category: category, step: 10)
            - SmallStore.logprob(lr: r.lr, seed: r.seed, probe: probe, category: category, step: 0)
    }

    func probes(split: String, category: String) -> [Int] {
        SmallStore.probes.filter { $0.split == split && $0.categories.contains(category) }.map(\.idx)
    }

    /// The report's four questions are tested here; the other files in analysis/ belong to the
    /// run store's documentation and are tested in Tests/RunStoreTests/AnalysisTests.swift (samples.sql in
    /// Tests/ExperimentsTests/PPORunTests.swift). A new file must be added to one of them.
    func testEveryAnalysisFileIsTested() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: packageRoot + "/analysis").filter { $0.hasSuffix(".sql") }
        // argmax_vs_rest.sql needs measures: tested in ReportMeasuresTests.
        let here = ["argmax_vs_rest.sql", "by_learning_rate.sql", "final_change.sql", "rejected_above_chosen.sql", "train_vs_heldout.sql"]
        let runStoreTests = ["chosen_minus_rejected.sql", "curves.sql", "final_deltas.sql", "status.sql", "sweep.sql"]
        // samples.sql needs an online run's samples: tested in PPORunTests; the attribution files a run with
        // eval.attribution: AttributionRunTests.
        let experimentsTests = ["samples.sql", "attribution_fit.sql", "attribution_sources.sql"]
        XCTAssertEqual(files.sorted(), (here + runStoreTests + experimentsTests).sorted())
        let readme = try String(contentsOfFile: packageRoot + "/analysis/README.md", encoding: .utf8)
        for file in files { XCTAssertTrue(readme.contains("`\(file)`"), "README lists \(file)") }
    }

    func testFinalChange() throws {
        let rows = try run("final_change.sql")
        XCTAssertEqual(rows.count, 4 * 6 + 1, "6 category/split rows per run of exp, 1 for the other experiment")
        XCTAssertEqual(rows.last?["experiment"], "other")
        XCTAssertEqual(try double(rows.last?["change"]), 499, accuracy: 1e-9)
        for (index, r) in runs.enumerated() {
            let own = rows.filter { $0["run_id"] == .integer(runIDs[index]) }
            XCTAssertEqual(own.map { "\($0["category"]!)/\($0["split"]!)" },
                           ["chosen/heldout", "chosen/train", "non_response/heldout", "non_response/train", "rejected/heldout", "rejected/train"])
            for row in own {
                let category = row["category"]!.string!
                let ps = probes(split: row["split"]!.string!, category: category)
                let changes = ps.map { change(r, probe: $0, category: category) }
                let starts = ps.map { SmallStore.logprob(lr: r.lr, seed: r.seed, probe: $0, category: category, step: 0) }
                XCTAssertEqual(row["n"], .integer(Int64(ps.count)))
                XCTAssertEqual(row["first_step"], 0)
                XCTAssertEqual(row["last_step"], 10)
                XCTAssertEqual(try double(row["start_mean"]), starts.reduce(0, +) / Double(ps.count), accuracy: 1e-4)
                XCTAssertEqual(try double(row["change"]), changes.reduce(0, +) / Double(ps.count), accuracy: 1e-4)
                XCTAssertEqual(try double(row["frac_rose"]), Double(changes.filter { $0 > 0 }.count) / Double(ps.count), accuracy: 1e-4)
            }
        }
    }

    func testRejectedAboveChosen() throws {
        let rows = try run("rejected_above_chosen.sql")
        XCTAssertEqual(rows.count, 4 * 3 * 2, "per run of exp, step and split (the other experiment has no rejected)")
        for (index, r) in runs.enumerated() {
            let own = rows.filter { $0["run_id"] == .integer(runIDs[index]) }
            XCTAssertEqual(own.map { "\($0["step"]!)/\($0["split"]!)" }, ["0/heldout", "0/train", "5/heldout", "5/train", "10/heldout", "10/train"])
            for row in own {
                let step = row["step"]!.int!
                let ps = probes(split: row["split"]!.string!, category: "rejected")
                func lp(_ p: Int, _ c: String) -> Double { SmallStore.logprob(lr: r.lr, seed: r.seed, probe: p, category: c, step: step) }
                let above = ps.filter { lp($0, "rejected") > lp($0, "chosen") }.count
                let abovePerToken = ps.filter { lp($0, "rejected") / Double(SmallStore.tokens("rejected")) > lp($0, "chosen") / Double(SmallStore.tokens("chosen")) }.count
                let margin = ps.map { lp($0, "rejected") - lp($0, "chosen") }.reduce(0, +) / Double(ps.count)
                XCTAssertEqual(row["probes"], .integer(Int64(ps.count)))
                XCTAssertEqual(try double(row["frac_rejected_above"]), Double(above) / Double(ps.count), accuracy: 1e-4)
                XCTAssertEqual(try double(row["frac_rejected_above_per_token"]), Double(abovePerToken) / Double(ps.count), accuracy: 1e-4, "\(row)")
                XCTAssertEqual(try double(row["mean_margin"]), margin, accuracy: 1e-4)
            }
        }
        // The numbers are not all alike: per token, chosen overtakes rejected as training goes on.
        XCTAssertNotEqual(Set(rows.compactMap { $0["frac_rejected_above_per_token"]?.double }).count, 1)
    }

    func testTrainVersusHeldout() throws {
        let rows = try run("train_vs_heldout.sql")
        XCTAssertEqual(rows.count, 4 * 3 + 1)
        for (index, r) in runs.enumerated() {
            let own = rows.filter { $0["run_id"] == .integer(runIDs[index]) }
            XCTAssertEqual(own.compactMap { $0["category"]?.string }, ["chosen", "non_response", "rejected"])
            for row in own {
                let category = row["category"]!.string!
                func mean(_ split: String) -> Double {
                    let ps = probes(split: split, category: category)
                    return ps.map { change(r, probe: $0, category: category) }.reduce(0, +) / Double(ps.count)
                }
                XCTAssertEqual(row["n_train"], .integer(Int64(probes(split: "train", category: category).count)))
                XCTAssertEqual(row["n_heldout"], .integer(Int64(probes(split: "heldout", category: category).count)))
                XCTAssertEqual(try double(row["train_change"]), mean("train"), accuracy: 1e-4)
                XCTAssertEqual(try double(row["heldout_change"]), mean("heldout"), accuracy: 1e-4)
                XCTAssertEqual(try double(row["gap"]), mean("train") - mean("heldout"), accuracy: 1e-4)
            }
        }
        let other = try XCTUnwrap(rows.last)
        XCTAssertEqual(other["experiment"], "other")
        XCTAssertEqual(other["heldout_change"], .null)
    }

    func testByLearningRate() throws {
        let rows = try run("by_learning_rate.sql")
        XCTAssertEqual(rows.count, 2 * 6 + 1)
        XCTAssertEqual(rows.compactMap { $0["lr"]?.double }, Array(repeating: 1e-5, count: 6) + Array(repeating: 3e-5, count: 6) + [1e-3])
        for lr in [1e-5, 3e-5] {
            let group = runs.filter { $0.lr == lr }
            for row in rows where row["lr"]?.double == lr {
                let category = row["category"]!.string!
                let ps = probes(split: row["split"]!.string!, category: category)
                let perRun = group.map { r in ps.map { change(r, probe: $0, category: category) }.reduce(0, +) / Double(ps.count) }
                XCTAssertEqual(row["runs"], 2)
                XCTAssertEqual(try double(row["mean_change"]), perRun.reduce(0, +) / 2, accuracy: 1e-4)
                XCTAssertEqual(try double(row["min_change"]), perRun.min()!, accuracy: 1e-4)
                XCTAssertEqual(try double(row["max_change"]), perRun.max()!, accuracy: 1e-4)
                XCTAssertEqual(try double(row["mean_final_loss"]), 3.0 - lr * 1e4, accuracy: 1e-4)
            }
        }
        XCTAssertEqual(rows.last?["mean_final_loss"], .null, "the other run has no training metrics")
    }
}
