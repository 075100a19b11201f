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

    /// Reads the experiment `experiment` from `store`; when nil, the store must hold exactly one experiment.
    /// - Throws: `ReportError.experimentNotFound` / `.experimentNotChosen`, or the store's error.
    public init(store: RunStore, experiment: String?) throws {
        self.init(data: try ReportData.load(store: store, experiment: experiment))
    }

    init(data: ReportData) {
        self.data = data
        changes = data.changes
    }

    /// The name of the experiment being reported.
    public var experimentName: String { data.experiment.name }

    /// Every file of the report, sorted by path.
    public func files() -> [ReportFile] {
        let figures = figures()
        var files = [
            ReportFile(path: "curves.csv", contents: curvesCSV()),
            ReportFile(path: "deltas.csv", contents: deltasCSV()),
            ReportFile(path: "train.csv", contents: trainCSV()),
            ReportFile(path: "index.html", contents: indexHTML(figures: figures)),
            ReportFile(path: "index.md", contents: indexMarkdown(figures: figures)),
        ]
        if data.measures.hasCurves {
            files.append(ReportFile(path: "measures.csv", contents: measuresCSV()))
        }
        if !data.samples.isEmpty {
            files.append(ReportFile(path: "samples.csv", contents: samplesCSV()))
        }
        files += figures.map { ReportFile(path: "figures/" + $0.file, contents: $0.svg) }
        return files.sorted { $0.path < $1.path }
    }

    /// Writes every file under `outDir` (created as needed), each atomically. Files of an earlier
    /// report that this one does not produce are left in place.
    /// - Returns: the relative paths written, sorted.
    @discardableResult
    public func write(to outDir: String) throws -> [String] {
        let files = files()
        let manager = FileManager.default
        for folder in [outDir, outDir + "/figures"] {
            do {
                try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw ReportError.cannotWrite(path: folder, reason: Self.reason(error))
            }
        }
        for file in files {
            let path = outDir + "/" + file.path
            do {
                try AtomicFile.write(file.contents, to: path)
            } catch {
                throw ReportError.cannotWrite(path: path, reason: error.reason)
            }
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
