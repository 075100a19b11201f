import Experiments
import Probes
import Foundation
import RunStore

/// Set by SIGINT/SIGTERM: the current run stops after its step, is marked interrupted, and resumes later.
nonisolated(unsafe) var stopRequested = false

extension Commands {
    static func defaultDB(_ args: ParsedArguments) -> String { args.string("--db") ?? "results/runs.sqlite" }

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let specPath = args.positional[0]
        let experiment = try Experiment.load(path: specPath)
        let dbPath = defaultDB(args)
        let jobs = try args.int("--jobs", default: 1)
        guard jobs >= 1 else { throw UsageError(message: "--jobs: expected an integer >= 1, found \(jobs)") }
        let store = try RunStore(path: dbPath)
        let root = args.string("--checkpoints").map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: dbPath).deletingLastPathComponent()
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: root)
        if let only = args.string("--only"), !experiment.runs.contains(where: { $0.name == only }) {
            throw UsageError(message: "--only: no run named \"\(only)\" in \(specPath) (runs: \(experiment.runs.map(\.name).joined(separator: ", ")))")
        }
        if jobs > 1 {
            try executor.validateInputs()
            try executor.recordPlan()
            return try runWorkers(jobs: jobs, args: args)
        }
        signal(SIGINT) { _ in stopRequested = true }
        signal(SIGTERM) { _ in stopRequested = true }
        let display = ProgressDisplay(quiet: args.has("--quiet"))
        executor.progress = { display.show($0) }
        let summary = try executor.runAll(only: args.string("--only"), shouldContinue: { !stopRequested })
        display.finish()
        if !args.has("--quiet") {
            var parts = ["\(summary.finished.count) finished"]
            if !summary.skipped.isEmpty { parts.append("\(summary.skipped.count) skipped") }
            if !summary.failed.isEmpty { parts.append("\(summary.failed.count) failed") }
            print("\(experiment.name): " + parts.joined(separator: ", ") + " (store: \(dbPath))")
        }
        if stopRequested { return 1 }
        if let first = summary.failed.first {
            throw CommandFailure(description: "run \(first.run) failed: \(first.error)")
        }
        return 0
    }

    /// `--jobs N`: N worker processes of this executable, each running `run` with `--jobs 1`; they
    /// share the store and claim runs from it, so no run is trained twice.
    static func runWorkers(jobs: Int, args: ParsedArguments) throws -> Int32 {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var workers: [Process] = []
        for _ in 0..<jobs {
            let p = Process()
            p.executableURL = exe
            var argv = ["run", args.positional[0], "--db", defaultDB(args), "--jobs", "1"]
            if let c = args.string("--checkpoints") { argv += ["--checkpoints", c] }
            if let only = args.string("--only") { argv += ["--only", only] }
            if args.has("--quiet") { argv.append("--quiet") }
            p.arguments = argv
            p.environment = ProcessInfo.processInfo.environment.merging(["ALIGNSCOPE_PLAIN_PROGRESS": "1"]) { $1 }
            try p.run()
            workers.append(p)
        }
        signal(SIGINT) { _ in stopRequested = true }
        var code: Int32 = 0
        for p in workers {
            p.waitUntilExit()
            code = max(code, p.terminationStatus)
        }
        return code
    }

    static func status(_ args: ParsedArguments) throws -> Int32 {
        let dbPath = defaultDB(args)
        guard FileManager.default.fileExists(atPath: dbPath) else {
            throw UsageError(message: "\(dbPath): no such run store (run `alignscope run SPEC --db \(dbPath)` first)")
        }
        let store = try RunStore(path: dbPath)
        let rows = try store.statusRows(experiment: args.string("--experiment"))
        if args.has("--json") {
            for r in rows {
                var o: [String: JSONValue] = [
                    "id": .number(Double(r.runID)), "experiment": .string(r.experiment), "name": .string(r.name),
                    "status": .string(r.status.rawValue),
                ]
                o["last_step"] = r.lastStep.map { .number(Double($0)) } ?? .null
                o["last_loss"] = r.lastLoss.map { .number($0) } ?? .null
                o["started_at"] = r.startedAt.map { .string($0) } ?? .null
                o["finished_at"] = r.finishedAt.map { .string($0) } ?? .null
                o["owner"] = r.owner.map { .string($0) } ?? .null
                o["error"] = r.error.map { .string($0) } ?? .null
                print(JSONValue.object(o).canonical)
            }
            return 0
        }
        if rows.isEmpty { print("no runs in \(dbPath)"); return 0 }
        let header = ["id", "run", "status", "step", "loss", "started", "finished"]
        var table = [header]
        for r in rows {
            table.append([
                "\(r.runID)", r.name, r.status == .running && !r.isHeldByLiveOwner() ? "running (owner \(r.owner ?? "?") gone; run again to resume)" : r.status.rawValue,
                r.lastLossStep.map(String.init) ?? r.lastStep.map(String.init) ?? "-",
                r.lastLoss.map { String(format: "%.4f", $0) } ?? "-", r.startedAt ?? "-", r.finishedAt ?? "-",
            ])
        }
        let widths = header.indices.map { c in table.map { $0[c].count }.max()! }
        for row in table {
            print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        for r in rows where r.error != nil { print("\(r.name): \(r.error!)") }
        return 0
    }
}

/// Draws run progress: one updating line on a terminal, plain lines otherwise.
final class ProgressDisplay: @unchecked Sendable {
    let quiet: Bool
    let tty: Bool
    private var lineOpen = false

    init(quiet: Bool) {
        self.quiet = quiet
        tty = isatty(2) == 1 && ProcessInfo.processInfo.environment["ALIGNSCOPE_PLAIN_PROGRESS"] == nil
    }

    private func emit(_ text: String, updating: Bool) {
        if quiet { return }
        if tty {
            let line = updating ? "\r\u{1B}[2K" + text : (lineOpen ? "\r\u{1B}[2K" : "") + text + "\n"
            FileHandle.standardError.write(Data(line.utf8))
            lineOpen = updating
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    func show(_ p: RunProgress) {
        switch p {
        case .skipped(let run, let reason): emit("\(run): skipped (\(reason))", updating: false)
        case .loading(let run, let what): emit("\(run): loading \(what)", updating: true)
        case .started(let run, let from, let total):
            emit(from > 0 ? "\(run): resuming at step \(from)/\(total)" : "\(run): starting, \(total) steps", updating: false)
        case .step(let run, let step, let total, let loss, let tps, let elapsed):
            let eta = elapsed / Double(max(1, step)) * Double(total - step)
            let width = 20
            let filled = Int(Double(width) * Double(step) / Double(max(total, 1)))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            emit(String(format: "%@ [%@] %d/%d loss %.4f %.0f tok/s ETA %@", run, bar, step, total, loss, tps, Self.duration(eta)), updating: tty)
        case .evaluated(let run, let step, let n, let seconds):
            emit(String(format: "%@: step %d evaluated %d responses in %.1fs", run, step, n, seconds), updating: false)
        case .checkpointed: break
        case .finished(let run, let seconds): emit("\(run): finished in \(Self.duration(seconds))", updating: false)
        case .failed(let run, let error): emit("\(run): failed: \(error)", updating: false)
        }
    }

    func finish() {
        if lineOpen, tty { FileHandle.standardError.write(Data("\n".utf8)); lineOpen = false }
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
    }
}
