import Foundation
import RunStore
import XCTest

@testable import Reports

#if canImport(FoundationXML)
    import FoundationXML
#endif

final class ReportBuilderTests: XCTestCase {
    var directory = ""
    var store: RunStore!
    var runIDs: [Int64] = []

    override func setUpWithError() throws {
        directory = try temporaryDirectory(self)
        store = try SmallStore.make(at: directory + "/runs.sqlite")
        runIDs = try SmallStore.runIDs(store)
    }

    func file(_ files: [ReportFile], _ path: String, line: UInt = #line) throws -> String {
        try XCTUnwrap(files.first { $0.path == path }?.contents, "no \(path) in the report", line: line)
    }

    func number(_ text: String, line: UInt = #line) throws -> Double {
        try XCTUnwrap(Double(text), "not a number: '\(text)'", line: line)
    }

    func testCurvesCSVHasOneRowPerRunStepCategorySplitWithSweptParameters() throws {
        let files = try ReportBuilder(store: store, experiment: "exp").files()
        let rows = parseCSV(try file(files, "curves.csv"))
        XCTAssertEqual(rows.first, ["run_id", "run", "step", "category", "split", "seed", "train.lr", "mean_logprob", "mean_token_logprob", "sem", "n"])
        // 4 runs × 3 steps × 3 categories × 2 splits, plus greedy (train) at step 10 of each run.
        XCTAssertEqual(rows.count - 1, 4 * (3 * 3 * 2 + 1))
        XCTAssertTrue(rows.dropFirst().allSatisfy { $0.count == 11 })
        // Run 1 sorts first; its name has a comma and quotes and reads back intact.
        XCTAssertEqual(Array(rows[1].prefix(7)), [String(runIDs[0]), "lr=1e-05,seed=\"1\"", "0", "chosen", "train", "1", "1e-05"])
        XCTAssertEqual(rows[2][3...4], ["chosen", "heldout"])
        XCTAssertEqual(rows[3][3...4], ["rejected", "train"])

        let run1Step10ChosenTrain = try XCTUnwrap(rows.first { $0[0] == String(runIDs[0]) && $0[2] == "10" && $0[3] == "chosen" && $0[4] == "train" })
        let a = SmallStore.logprob(lr: 1e-5, seed: 1, probe: 0, category: "chosen", step: 10)
        let b = SmallStore.logprob(lr: 1e-5, seed: 1, probe: 1, category: "chosen", step: 10)
        XCTAssertEqual(try number(run1Step10ChosenTrain[7]), (a + b) / 2, accuracy: 1e-9)
        XCTAssertEqual(try number(run1Step10ChosenTrain[8]), (a + b) / 20, accuracy: 1e-9)
        XCTAssertEqual(try number(run1Step10ChosenTrain[9]), abs(a - b) / 2, accuracy: 1e-9)  // sd/√2 for two values
        XCTAssertEqual(run1Step10ChosenTrain[10], "2")
        // One held-out probe: no standard error (empty field), n = 1.
        let single = try XCTUnwrap(rows.first { $0[0] == String(runIDs[0]) && $0[2] == "0" && $0[3] == "chosen" && $0[4] == "heldout" })
        XCTAssertEqual(single[9], "")
        XCTAssertEqual(single[10], "1")
        // The other experiment's run never appears.
        XCTAssertFalse(rows.contains { $0[1] == "solo" })
    }

    func testDeltasCSVHasStartEndChangeAndShareThatRose() throws {
        let files = try ReportBuilder(store: store, experiment: "exp").files()
        let rows = parseCSV(try file(files, "deltas.csv"))
        XCTAssertEqual(rows.first, ["run_id", "run", "stage", "category", "split", "seed", "train.lr", "start_step", "end_step", "start", "end", "change",
                                    "ci_low", "ci_high", "frac_rose", "sign_agreement", "n", "n_seeds"])
        XCTAssertEqual(rows.count - 1, 4 * 6 + 2 * 6, "greedy has no response scored at both steps, so no row; then 2 settings over 2 seeds")
        XCTAssertFalse(rows.contains { $0[3] == "greedy" })
        var perRun: [String: [String: Double]] = [:]  // "lr|category|split" -> seed -> change
        for (index, (lr, seed)) in [(1e-5, Int64(1)), (1e-5, 2), (3e-5, 1), (3e-5, 2)].enumerated() {
            let runRows = rows.filter { $0[0] == String(runIDs[index]) }
            XCTAssertEqual(runRows.map { "\($0[3])/\($0[4])" },
                           ["chosen/train", "chosen/heldout", "rejected/train", "rejected/heldout", "non_response/train", "non_response/heldout"])
            for row in runRows {
                let probes = SmallStore.probes.filter { $0.split == row[4] && $0.categories.contains(row[3]) }.map(\.idx)
                let starts = probes.map { SmallStore.logprob(lr: lr, seed: seed, probe: $0, category: row[3], step: 0) }
                let ends = probes.map { SmallStore.logprob(lr: lr, seed: seed, probe: $0, category: row[3], step: 10) }
                let n = Double(probes.count)
                XCTAssertEqual(row[7...8], ["0", "10"])
                XCTAssertEqual(try number(row[9]), starts.reduce(0, +) / n, accuracy: 1e-9, "\(row)")
                XCTAssertEqual(try number(row[10]), ends.reduce(0, +) / n, accuracy: 1e-9, "\(row)")
                let change = (ends.reduce(0, +) - starts.reduce(0, +)) / n
                XCTAssertEqual(try number(row[11]), change, accuracy: 1e-9, "\(row)")
                XCTAssertEqual(try number(row[14]), Double(zip(starts, ends).filter { $1 > $0 }.count) / n, accuracy: 1e-12, "\(row)")
                XCTAssertEqual(row[15], "", "no sign agreement for one run")
                XCTAssertEqual(row[16], String(probes.count))
                XCTAssertEqual(row[17], "1")
                perRun["\(lr)|\(row[3])|\(row[4])", default: [:]][String(seed)] = change
                // a run's interval: ±1.96 standard errors over its responses (none for one response)
                let deltas = zip(starts, ends).map { $1 - $0 }
                if deltas.count >= 2 {
                    let sd = (deltas.map { ($0 - change) * ($0 - change) }.reduce(0, +) / (n - 1)).squareRoot()
                    XCTAssertEqual(try number(row[12]), change - 1.96 * sd / n.squareRoot(), accuracy: 1e-9, "\(row)")
                    XCTAssertEqual(try number(row[13]), change + 1.96 * sd / n.squareRoot(), accuracy: 1e-9, "\(row)")
                } else {
                    XCTAssertEqual(row[12...13], ["", ""])
                }
            }
        }
        // Probe 1's rejected response falls while probe 0's rises: half rose.
        let rejectedTrain = try XCTUnwrap(rows.first { $0[0] == String(runIDs[0]) && $0[3] == "rejected" && $0[4] == "train" })
        XCTAssertEqual(rejectedTrain[14], "0.5")
        // A setting's rows: the mean over its two seeds and the t-interval (t(0.975, 1) = 12.706), computed here in Double
        let settingRows = rows.filter { $0[0] == "" && $0.count > 1 }
        XCTAssertEqual(settingRows.count, 12)
        for row in settingRows {
            XCTAssertEqual(row[17], "2")
            XCTAssertEqual(row[5], "", "a setting has no single seed")
            let lr = try number(row[6])
            let seeds = try XCTUnwrap(perRun["\(lr)|\(row[3])|\(row[4])"])
            let (c1, c2) = (try XCTUnwrap(seeds["1"]), try XCTUnwrap(seeds["2"]))
            let mean = (c1 + c2) / 2, sd = abs(c1 - c2) / 2.0.squareRoot()
            XCTAssertEqual(try number(row[11]), mean, accuracy: 1e-9, "\(row)")
            if sd > 0 {
                XCTAssertEqual(try number(row[12]), mean - 12.706 * sd / 2.0.squareRoot(), accuracy: 1e-9, "\(row)")
                XCTAssertEqual(try number(row[13]), mean + 12.706 * sd / 2.0.squareRoot(), accuracy: 1e-9, "\(row)")
            }
            // sign agreement: per probe, r = share of seeds in which it rose; the mean over probes of max(r, 1 - r)
            let probes = SmallStore.probes.filter { $0.split == row[4] && $0.categories.contains(row[3]) }.map(\.idx)
            let agreement = probes.map { probe -> Double in
                let r = Double([Int64(1), 2].filter { SmallStore.logprob(lr: lr, seed: $0, probe: probe, category: row[3], step: 10)
                    > SmallStore.logprob(lr: lr, seed: $0, probe: probe, category: row[3], step: 0) }.count) / 2
                return max(r, 1 - r)
            }.reduce(0, +) / Double(probes.count)
            XCTAssertEqual(try number(row[15]), agreement, accuracy: 1e-12, "\(row)")
        }
    }

    func testTrainCSVIsLongFormat() throws {
        let files = try ReportBuilder(store: store, experiment: "exp").files()
        let rows = parseCSV(try file(files, "train.csv"))
        XCTAssertEqual(rows.first, ["run_id", "run", "step", "name", "seed", "train.lr", "value"])
        XCTAssertEqual(rows.count - 1, 4 * 10 * 2)
        XCTAssertEqual(Array(rows[1].prefix(4)), [String(runIDs[0]), "lr=1e-05,seed=\"1\"", "1", "loss"])
        XCTAssertEqual(try number(rows[1][6]), 3.0 - 1e-5 * 1e4 / 10, accuracy: 1e-12)
        XCTAssertEqual(rows[2][3], "lr")
        XCTAssertEqual(try number(rows[2][6]), 1e-6, accuracy: 1e-18)
    }

    func testFiguresParseAndShowEveryCategory() throws {
        let files = try ReportBuilder(store: store, experiment: "exp").files()
        var expected = ["comparisons.csv", "confounds.csv", "curves.csv", "deltas.csv", "explore.html", "index.html", "index.md", "responses.csv", "train.csv",
                        "figures/setting-1-change.svg", "figures/setting-2-change.svg", "figures/runs-change.svg"]
        for id in runIDs {
            expected += ["change", "logprob", "probe-changes", "train"].map { "figures/run-\(id)-\($0).svg" }
        }
        XCTAssertEqual(files.map(\.path), expected.sorted())

        for svgFile in files where svgFile.path.hasSuffix(".svg") {
            let root = try XCTUnwrap(parseXML(svgFile.contents, svgFile.path)?.rootElement(), svgFile.path)
            XCTAssertEqual(root.name, "svg")
            XCTAssertNotNil(root.value(of: "viewBox"), svgFile.path)
            XCTAssertFalse(elements(root, "text", where: "class", is: "axis-label").isEmpty, svgFile.path)
        }

        let change = try XCTUnwrap(parseXML(try file(files, "figures/run-\(runIDs[0])-change.svg"), "change")?.rootElement())
        let panels = elements(change, "g", where: "class", is: "panel")
        XCTAssertEqual(panels.compactMap { $0.value(of: "data-panel") }, ["train probes", "held-out probes"])
        for panel in panels {
            let series = elements(panel, "g", where: "class", is: "series").compactMap { $0.value(of: "data-series") }
            XCTAssertEqual(series, ["chosen", "rejected", "non response"], "categories as readers see them")
            XCTAssertEqual(elements(panel, "path", where: "class", is: "line").count, 3)
            XCTAssertEqual(elements(panel, "line", where: "class", is: "reference").count, 1)
        }
        XCTAssertEqual(elements(change, "g", where: "class", is: "legend-entry").compactMap { $0.value(of: "data-series") },
                       ["chosen", "rejected", "non response"])
        XCTAssertTrue(texts(change).contains("change in log-probability since step 0 (nats)"))

        // The log-probability figure also shows greedy (one point, at step 10).
        let logprob = try XCTUnwrap(parseXML(try file(files, "figures/run-\(runIDs[0])-logprob.svg"), "logprob")?.rootElement())
        XCTAssertEqual(elements(logprob, "g", where: "class", is: "legend-entry").count, 4)

        // Across seeds: lr 1e-5 (runs 1, 2) and lr 3e-5 (runs 3, 4).
        let seeds = try file(files, "figures/setting-1-change.svg")
        XCTAssertTrue(seeds.contains("train.lr=1e-05: mean over 2 seeds"), seeds)
        XCTAssertTrue(try file(files, "figures/setting-2-change.svg").contains("train.lr=3e-05"))

        let train = try XCTUnwrap(parseXML(try file(files, "figures/run-\(runIDs[0])-train.svg"), "train")?.rootElement())
        XCTAssertEqual(elements(train, "g", where: "class", is: "panel").compactMap { $0.value(of: "data-panel") },
                       ["training loss", "learning rate"])
    }

    func testSameStoreGivesByteIdenticalFiles() throws {
        let first = try renderReport(store: store, experiment: "exp", outDir: directory + "/a")
        let reopened = try RunStore(path: directory + "/runs.sqlite", readOnly: true)
        let second = try renderReport(store: reopened, experiment: "exp", outDir: directory + "/b/nested")
        XCTAssertEqual(first.files, second.files)
        XCTAssertEqual(first.experiment, "exp")
        XCTAssertEqual(first.indexPath, directory + "/a/index.html")
        XCTAssertGreaterThan(first.files.count, 10)
        for path in first.files {
            let a = try Data(contentsOf: URL(fileURLWithPath: directory + "/a/" + path))
            let b = try Data(contentsOf: URL(fileURLWithPath: directory + "/b/nested/" + path))
            XCTAssertEqual(a, b, "\(path) differs between two renders of the same store")
            XCTAssertFalse(a.isEmpty, path)
        }
    }

    func testIndexShowsRunsFiguresAndDeltas() throws {
        let summary = try renderReport(store: store, experiment: "exp", outDir: directory + "/out")
        let html = try String(contentsOfFile: summary.indexPath, encoding: .utf8)
        let root = try XCTUnwrap(parseXML(html, "index.html")?.rootElement())
        let images = elements(root, "img").compactMap { $0.value(of: "src") }
        let figures = summary.files.filter { $0.hasPrefix("figures/") }
        XCTAssertEqual(images.sorted(), figures.sorted(), "every figure is shown once")
        for image in images {
            XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/out/" + image), image)
        }
        // The change figures come first: across seeds, every run side by side, then per run.
        XCTAssertEqual(Array(images.prefix(7)), ["figures/setting-1-change.svg", "figures/setting-2-change.svg", "figures/runs-change.svg"]
                       + runIDs.map { "figures/run-\($0)-change.svg" })
        let tables = elements(root, "table")
        let runsTable = try XCTUnwrap(tables.first)
        XCTAssertEqual(elements(runsTable, "tr").count, 1 + 4)
        XCTAssertTrue(elements(runsTable, "th").compactMap(\.stringValue).contains("train.lr"))
        // the final change: measures first, categories as columns; per split the means over seeds, then each run
        func header(_ table: XMLElement) -> [String] { elements(table, "th").compactMap(\.stringValue) }
        let changeTables = tables.filter { ["setting", "run"].contains(header($0).first ?? "") && header($0).contains("non response") }
        XCTAssertEqual(changeTables.map { header($0)[0] }, ["setting", "run", "setting", "run"], "train and held-out")
        XCTAssertEqual(changeTables.map { elements($0, "tr").count }, [1 + 2, 1 + 4, 1 + 2, 1 + 4])
        XCTAssertEqual(header(changeTables[0]), ["setting", "chosen", "rejected", "non response"])
        // a table of contents linking to every section
        let links = elements(root, "a").compactMap { $0.value(of: "href") }
        for anchor in ["#runs", "#change", "#comparisons", "#confounds", "#seeds", "#all-runs", "#per-run", "#notes", "#spec"] {
            XCTAssertTrue(links.contains(anchor), anchor)
        }
        XCTAssertTrue(Set(["curves.csv", "deltas.csv", "train.csv", "explore.html", "responses.csv", "comparisons.csv"]).isSubset(of: Set(links)))
        XCTAssertTrue(html.contains("objective.kind"), "shared parameters are listed")

        let markdown = try String(contentsOfFile: directory + "/out/index.md", encoding: .utf8)
        for figure in figures { XCTAssertTrue(markdown.contains("](\(figure))"), figure) }
        XCTAssertTrue(markdown.contains("| id | run | stage | status | seed |"), markdown)
        XCTAssertTrue(markdown.contains("lr=1e-05,seed=\"1\""))
    }

    /// `--out` holds this report only: a file of an earlier report that this one does not write is gone, and a
    /// folder that holds something else than a report is refused with nothing written.
    func testTheOutputFolderHoldsOnlyThisReport() throws {
        let out = directory + "/swap"
        try renderReport(store: store, experiment: "exp", outDir: out)
        try Data("old".utf8).write(to: URL(fileURLWithPath: out + "/figures/run-99-change.svg"))
        let summary = try renderReport(store: store, experiment: "exp", outDir: out)
        let present = try FileManager.default.subpathsOfDirectory(atPath: out).filter { !$0.hasSuffix("figures") }.sorted()
        XCTAssertEqual(present, summary.files.sorted())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix(".swap") }, [], "no staging folder left")
        let other = directory + "/notes"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: other + "/todo.txt"))
        XCTAssertThrowsError(try renderReport(store: store, experiment: "exp", outDir: other)) { error in
            XCTAssertTrue("\(error)".contains("no index.html"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: other), ["todo.txt"])
    }

    func testExperimentMustExistOrBeUnambiguous() throws {
        XCTAssertThrowsError(try ReportBuilder(store: store, experiment: "nope")) { error in
            XCTAssertEqual(error as? ReportError, .experimentNotFound(path: store.path, name: "nope", available: ["exp", "other"]))
            XCTAssertFalse("\(error)".contains("\n"))
            XCTAssertTrue("\(error)".contains("exp, other"), "\(error)")
        }
        XCTAssertThrowsError(try ReportBuilder(store: store, experiment: nil)) { error in
            XCTAssertEqual(error as? ReportError, .experimentNotChosen(path: store.path, available: ["exp", "other"]))
            XCTAssertTrue("\(error)".contains("--experiment"), "\(error)")
        }
        let empty = try RunStore(path: directory + "/empty.sqlite")
        XCTAssertThrowsError(try ReportBuilder(store: empty, experiment: nil)) { error in
            XCTAssertEqual(error as? ReportError, .experimentNotChosen(path: empty.path, available: []))
        }
        // The other experiment alone: only its run.
        let other = try ReportBuilder(store: store, experiment: "other").files()
        let curves = parseCSV(try file(other, "curves.csv"))
        XCTAssertEqual(curves.first, ["run_id", "run", "step", "category", "split", "mean_logprob", "mean_token_logprob", "sem", "n"])
        XCTAssertEqual(curves.dropFirst().map { $0[1] }, ["solo", "solo"])
    }

    func testUnwritableOutputIsAReportError() throws {
        let blocker = directory + "/file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        XCTAssertThrowsError(try renderReport(store: store, experiment: "exp", outDir: blocker + "/out")) { error in
            guard case .cannotWrite(let path, _)? = error as? ReportError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, blocker + "/out")
            XCTAssertFalse("\(error)".contains("\n"))
        }
    }

    func testExperimentWithoutEvaluationsStillRenders() throws {
        let bare = try RunStore(path: directory + "/bare.sqlite")
        let experiment = try bare.recordExperiment(name: "fresh", spec: "{ name: \"fresh\" }", specSHA256: "x")
        try bare.recordRun(experimentID: experiment, name: "only", config: "{}", configSHA256: "only", seed: 1, params: ["train.lr": .real(1e-5)])
        let files = try ReportBuilder(store: bare, experiment: nil).files()
        XCTAssertEqual(files.map(\.path), ["curves.csv", "deltas.csv", "explore.html", "index.html", "index.md", "responses.csv", "train.csv"])
        XCTAssertEqual(try file(files, "curves.csv"), "run_id,run,step,category,split,mean_logprob,mean_token_logprob,sem,n\n")
        let html = try file(files, "index.html")
        XCTAssertNotNil(parseXML(html, "index.html of an empty experiment"))
        XCTAssertTrue(html.contains("No evaluations recorded yet"))
    }
}
