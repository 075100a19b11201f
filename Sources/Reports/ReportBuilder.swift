import Base
import Foundation
import RunStore

/// One file of a report: its path relative to the output folder and its text (UTF-8).
public struct ReportFile: Sendable, Equatable {
    public var path: String
    public var contents: String
}

/// What `renderReport` wrote.
public struct ReportSummary: Sendable, Equatable {
    public var experiment: String
    /// The output folder as given.
    public var outDir: String
    /// Paths of the written files relative to `outDir`, sorted.
    public var files: [String]
    /// `outDir/index.html`.
    public var indexPath: String
}

/// Builds the report of one experiment from a run store: `curves.csv`, `deltas.csv`, `train.csv`,
/// SVG figures under `figures/`, `index.html` and `index.md`.
///
/// The store is read once, in `init`; `files()` is then a pure function of what was read, and the
/// same store gives byte-identical files (everything is sorted, every number formatted by fixed
/// rules, nothing depends on the clock, the locale or hashing order).
public struct ReportBuilder {
    let data: ReportData
    /// Per-response changes of each run with at least one evaluation.
    let changes: [Int64: RunChanges]
    /// Every pair of settings compared (`comparisons()`), and the confound audit's rows (`confoundRows()`): computed once,
    /// read by the CSV files, both index files and their data links.
    private(set) var settingComparisons: [SettingComparison] = []
    private(set) var confounds: [ConfoundRow] = []

    /// Reads the experiment `experiment` from `store`; when nil, the store must hold exactly one experiment.
    /// - Throws: `ReportError.experimentNotFound` / `.experimentNotChosen`, or the store's error.
    public init(store: RunStore, experiment: String?) throws {
        self.init(data: try ReportData.load(store: store, experiment: experiment))
    }

    init(data: ReportData) {
        self.data = data
        changes = data.changes
        settingComparisons = comparisons()
        confounds = confoundRows()
    }

    /// The name of the experiment being reported.
    public var experimentName: String { data.experiment.name }

    /// Every file of the report, sorted by path.
    public func files() -> [ReportFile] {
        let figures = figures()
        var files = [
            ReportFile(path: "curves.csv", contents: curvesCSV()),
            ReportFile(path: "deltas.csv", contents: deltasCSV()),
            ReportFile(path: "responses.csv", contents: responsesCSV()),
            ReportFile(path: "train.csv", contents: trainCSV()),
            ReportFile(path: "index.html", contents: indexHTML(figures: figures)),
            ReportFile(path: "index.md", contents: indexMarkdown(figures: figures)),
            ReportFile(path: "explore.html", contents: exploreHTML()),
        ]
        if !settingComparisons.isEmpty { files.append(ReportFile(path: "comparisons.csv", contents: comparisonsCSV(settingComparisons))) }
        if !confounds.isEmpty { files.append(ReportFile(path: "confounds.csv", contents: confoundsCSV(confounds))) }
        if data.measures.hasCurves {
            files.append(ReportFile(path: "measures.csv", contents: measuresCSV()))
        }
        if !data.samples.isEmpty {
            files.append(ReportFile(path: "samples.csv", contents: samplesCSV()))
        }
        files += figures.map { ReportFile(path: "figures/" + $0.file, contents: $0.svg) }
        return files.sorted { $0.path < $1.path }
    }

    /// Writes the report into `outDir`, which then holds this report only: every file is written into a new folder
    /// beside it (`.NAME.new-PID`), which then takes `outDir`'s place (the old folder is renamed aside and removed),
    /// so a reader sees the old report or the new one, never a mix, and no file of an earlier report stays behind.
    /// A folder AlignScope did not write (no `index.html`, not empty) is refused, nothing written.
    /// - Returns: the relative paths written, sorted.
    @discardableResult
    public func write(to outDir: String) throws -> [String] {
        let files = files()
        let manager = FileManager.default
        let out = URL(fileURLWithPath: outDir).standardizedFileURL
        var isDirectory: ObjCBool = false
        let exists = manager.fileExists(atPath: out.path, isDirectory: &isDirectory)
        if exists {
            guard isDirectory.boolValue else { throw ReportError.cannotWrite(path: out.path, reason: "not a folder") }
            let contents = (try? manager.contentsOfDirectory(atPath: out.path)) ?? []
            guard contents.isEmpty || contents.contains("index.html") else {
                throw ReportError.cannotWrite(path: out.path, reason: "the folder holds files but no report (no index.html); give an empty or new folder, or an earlier report's")
            }
        }
        let parent = out.deletingLastPathComponent()
        let staging = parent.appendingPathComponent(".\(out.lastPathComponent).new-\(getpid())")
        let retired = parent.appendingPathComponent(".\(out.lastPathComponent).old-\(getpid())")
        try? manager.removeItem(at: staging)
        do {
            try manager.createDirectory(at: staging.appendingPathComponent("figures"), withIntermediateDirectories: true)
        } catch {
            throw ReportError.cannotWrite(path: out.path, reason: Self.reason(error))
        }
        for file in files {
            let path = staging.appendingPathComponent(file.path).path
            do {
                try AtomicFile.write(file.contents, to: path)
            } catch {
                try? manager.removeItem(at: staging)
                throw ReportError.cannotWrite(path: path, reason: error.reason)
            }
        }
        do {
            if exists { try manager.moveItem(at: out, to: retired) }
            try manager.moveItem(at: staging, to: out)
            try? manager.removeItem(at: retired)
        } catch {
            // put the old report back if the new one could not take its place
            if exists, !manager.fileExists(atPath: out.path) { try? manager.moveItem(at: retired, to: out) }
            try? manager.removeItem(at: staging)
            throw ReportError.cannotWrite(path: out.path, reason: Self.reason(error))
        }
        return files.map(\.path)
    }

    static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
            let message = strerror(Int32(underlying.code)).map({ String(cString: $0) })
        {
            return message
        }
        return nsError.localizedDescription.replacingOccurrences(of: "\n", with: " ")
    }
}

/// Renders the report of `experiment` (or of the store's only experiment when nil) from `store`
/// into `outDir`: `index.html`, `index.md`, `curves.csv`, `deltas.csv`, `train.csv` and
/// `figures/*.svg`. This is what `alignscope report` calls.
/// - Throws: `ReportError` (unknown or unspecified experiment, unwritable folder) or the store's error.
@discardableResult
public func renderReport(store: RunStore, experiment: String?, outDir: String) throws -> ReportSummary {
    let builder = try ReportBuilder(store: store, experiment: experiment)
    let files = try builder.write(to: outDir)
    return ReportSummary(experiment: builder.experimentName, outDir: outDir, files: files, indexPath: outDir + "/index.html")
}
