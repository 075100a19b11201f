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
        XCTAssertEqual(rows.first, ["run_id", "run", "category", "split", "seed", "train.lr", "start_step", "end_step", "start", "end", "change", "frac_rose", "n"])
        XCTAssertEqual(rows.count - 1, 4 * 6, "greedy has no response scored at both steps, so no row")
        XCTAssertFalse(rows.contains { $0[2] == "greedy" })
        for (index, (lr, seed)) in [(1e-5, Int64(1)), (1e-5, 2), (3e-5, 1), (3e-5, 2)].enumerated() {
            let runRows = rows.filter { $0[0] == String(runIDs[index]) }
            XCTAssertEqual(runRows.map { "\($0[2])/\($0[3])" },
                           ["chosen/train", "chosen/heldout", "rejected/train", "rejected/heldout", "non_response/train", "non_response/heldout"])
            for row in runRows {
                let probes = SmallStore.probes.filter { $0.split == row[3] && $0.categories.contains(row[2]) }.map(\.idx)
                let starts = probes.map { SmallStore.logprob(lr: lr, seed: seed, probe: $0, category: row[2], step: 0) }
                let ends = probes.map { SmallStore.logprob(lr: lr, seed: seed, probe: $0, category: row[2], step: 10) }
                let n = Double(probes.count)
                XCTAssertEqual(row[6...7], ["0", "10"])
                XCTAssertEqual(try number(row[8]), starts.reduce(0, +) / n, accuracy: 1e-9, "\(row)")
                XCTAssertEqual(try number(row[9]), ends.reduce(0, +) / n, accuracy: 1e-9, "\(row)")
                XCTAssertEqual(try number(row[10]), (ends.reduce(0, +) - starts.reduce(0, +)) / n, accuracy: 1e-9, "\(row)")
                XCTAssertEqual(try number(row[11]), Double(zip(starts, ends).filter { $1 > $0 }.count) / n, accuracy: 1e-12, "\(row)")
                XCTAssertEqual(row[12], String(probes.count))
            }
        }
        // Probe 1's rejected response falls while probe 0's rises: half rose.
        let rejectedTrain = try XCTUnwrap(rows.first { $0[0] == String(runIDs[0]) && $0[2] == "rejected" && $0[3] == "train" })
        XCTAssertEqual(rejectedTrain[11], "0.5")
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
        var expected = ["curves.csv", "deltas.csv", "index.html", "index.md", "train.csv",
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
            XCTAssertEqual(series, ["chosen", "rejected", "non_response"])
            XCTAssertEqual(elements(panel, "path", where: "class", is: "line").count, 3)
            XCTAssertEqual(elements(panel, "line", where: "class", is: "reference").count, 1)
        }
        XCTAssertEqual(elements(change, "g", where: "class", is: "legend-entry").compactMap { $0.value(of: "data-series") },
                       ["chosen", "rejected", "non_response"])
        XCTAssertTrue(texts(change).contains("change in log-probability since step 0 (nats)"))

        // The log-probability figure also shows greedy (one point, at step 10).
        let logprob = try XCTUnwrap(parseXML(try file(files, "figures/run-\(runIDs[0])-logprob.svg"), "logprob")?.rootElement())
        XCTAssertEqual(elements(logprob, "g", where: "class", is: "legend-entry").count, 4)

        // Across seeds: lr 1e-5 (runs 1, 2) and lr 3e-5 (runs 3, 4).
        let seeds = try file(files, "figures/setting-1-change.svg")
        XCTAssertTrue(seeds.contains("train.lr=1e-05: change in log-probability, mean over 2 runs"), seeds)
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
        // The change figures come first: every run side by side, across seeds, then per run.
        XCTAssertEqual(Array(images.prefix(7)), ["figures/runs-change.svg", "figures/setting-1-change.svg", "figures/setting-2-change.svg"]
                       + runIDs.map { "figures/run-\($0)-change.svg" })
        let tables = elements(root, "table")
        let runsTable = try XCTUnwrap(tables.first)
        XCTAssertEqual(elements(runsTable, "tr").count, 1 + 4)
        XCTAssertTrue(elements(runsTable, "th").compactMap(\.stringValue).contains("train.lr"))
        let deltas = try XCTUnwrap(tables.first { table in elements(table, "th").contains { $0.stringValue == "frac_rose" } })
        XCTAssertEqual(elements(deltas, "tr").count, 1 + 24)
        let links = elements(root, "a").compactMap { $0.value(of: "href") }
        XCTAssertTrue(Set(["curves.csv", "deltas.csv", "train.csv"]).isSubset(of: Set(links)))
        XCTAssertTrue(html.contains("objective.kind"), "shared parameters are listed")

        let markdown = try String(contentsOfFile: directory + "/out/index.md", encoding: .utf8)
        for figure in figures { XCTAssertTrue(markdown.contains("](\(figure))"), figure) }
        XCTAssertTrue(markdown.contains("| run_id | run | category | split | seed | train.lr |"), markdown)
        XCTAssertTrue(markdown.contains("lr=1e-05,seed=\"1\""))
        XCTAssertEqual(markdown.components(separatedBy: "\n").filter { $0.hasPrefix("| ") && $0.contains("| non_response |") }.count, 8)
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
        XCTAssertEqual(files.map(\.path), ["curves.csv", "deltas.csv", "index.html", "index.md", "train.csv"])
        XCTAssertEqual(try file(files, "curves.csv"), "run_id,run,step,category,split,mean_logprob,mean_token_logprob,sem,n\n")
        let html = try file(files, "index.html")
        XCTAssertNotNil(parseXML(html, "index.html of an empty experiment"))
        XCTAssertTrue(html.contains("No evaluations recorded yet"))
    }
}
