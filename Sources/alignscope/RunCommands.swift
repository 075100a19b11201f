import Base
import Experiments
import Probes
import Foundation
import RunStore

extension RunVerb {
    func run() throws -> Int32 {
        if let parent = ProcessInfo.processInfo.environment[WorkerPool.parentVariable].flatMap({ Int32($0) }) {
            // A `--jobs` worker stops (after its step) when its parent dies, and not later than that.
            ChildProcess.dieWithParent(signal: SIGTERM, expectedParent: parent)
        }
        let dbPath = db
        // One spec per experiment name: decided from the store as it is (read only), before anything is written.
        let experiment = try Commands.experimentVersion(try Experiment.load(path: spec), db: dbPath, newVersion: newVersion)
        if let only, !experiment.runs.contains(where: { $0.name == only }) {
            throw UsageError(message: "--only: no run named \"\(only)\" in \(spec) (runs: \(experiment.runs.map(\.name).joined(separator: ", ")))")
        }
        let root = try checkpointRoot()
        // SIGINT/SIGTERM from here on stop the command (a generator making probe texts included), never kill it
        if jobs == 1 { StopRequest.installHandlers() }
        // Everything the runs read is checked before the store is opened: bad input creates no file.
        do {
            try RunExecutor.validateInputs(of: experiment, generate: true)
        } catch where StopRequest.isSet {
            FileHandle.standardError.write(Data("interrupted while checking the inputs (\(error)), before anything was recorded; run the same command again\n".utf8))
            return 1
        }
        let store = try RunStore(path: dbPath)
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: root)
        executor.followSeconds = follow.map(Double.init)
        try executor.checkResumableInputs(only: only)
        // the plan line, once the input is known good (a --jobs worker leaves it to its parent)
        if !quiet && ProcessInfo.processInfo.environment[WorkerPool.parentVariable] == nil {
            FileHandle.standardError.write(Data((Commands.threadsLine(experiment, jobs: jobs) + "\n").utf8))
        }
        if jobs > 1 {
            try executor.recordPlan()
            return try runWorkers()
        }
        let display = ProgressDisplay(quiet: quiet)
        executor.progress = { event in
            display.show(event)
            return StopRequest.isSet ? .stop : .more
        }
        let summary = try executor.runAll(only: only, inputsValidated: true)
        display.finish()
        if !quiet {
            var parts = ["\(summary.finished.count) finished"]
            if !summary.skipped.isEmpty { parts.append("\(summary.skipped.count) skipped") }
            if !summary.interrupted.isEmpty { parts.append("\(summary.interrupted.count) interrupted") }
            if !summary.failed.isEmpty { parts.append("\(summary.failed.count) failed") }
            print("\(experiment.name): " + parts.joined(separator: ", ") + " (store: \(dbPath))")
        }
        if StopRequest.isSet || !summary.interrupted.isEmpty {
            let where_ = summary.interrupted.map { "\($0.run) at step \($0.step)" }.joined(separator: ", ")
            FileHandle.standardError.write(Data(("interrupted\(where_.isEmpty ? "" : ": " + where_); run the same command again to resume\n").utf8))
            return 1
        }
        if let first = summary.failed.first {
            throw CommandFailure(description: "run \(first.run) failed: \(first.error)")
        }
        return 0
    }


    /// `--jobs N` (`WorkerPool`): the worker is this verb with one job, so every option reaches it.
    func runWorkers() throws -> Int32 {
        var worker = self
        worker.jobs = 1
        let (code, stopped): (Int32, Bool)
        do {
            (code, stopped) = try WorkerPool.run(argv: [Self.name] + worker.arguments, count: jobs)
        } catch {
            throw CommandFailure(description: "\(error)")
        }
        if stopped {
            FileHandle.standardError.write(Data("interrupted: the workers stopped after their step; run the same command again to resume\n".utf8))
            return max(code, 1)
        }
        return code
    }

    /// The checkpoint folder: `--checkpoints`, or the database's folder. It must be a folder (or be
    /// creatable as one) that this user can write, checked before anything runs.
    func checkpointRoot() throws -> URL {
        let root = checkpoints.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: db).deletingLastPathComponent()
        var existing = root.standardizedFileURL
        while !FileManager.default.fileExists(atPath: existing.path), existing.path != "/" { existing.deleteLastPathComponent() }
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: existing.path, isDirectory: &isDirectory)
        let option = checkpoints != nil ? "--checkpoints" : "checkpoint folder (beside --db \(db))"
        guard isDirectory.boolValue else {
            throw UsageError(message: "\(option): \(existing.path) is not a directory (checkpoints go to \(root.path))")
        }
        // access() says yes to root on file systems that take no folder (/sys, /proc): make one and remove it
        let probe = existing.appendingPathComponent(".alignscope-probe-\(getpid())").path
        guard access(existing.path, W_OK) == 0, mkdir(probe, 0o700) == 0 else {
            throw UsageError(message: "\(option): \(existing.path) is not writable (checkpoints go to \(root.path))")
        }
        rmdir(probe)
        return root
    }
}

extension StatusVerb {
    func run() throws -> Int32 {
        let dbPath = db
        guard FileManager.default.fileExists(atPath: dbPath) else {
            throw UsageError(message: "\(dbPath): no such run store (run `alignscope run SPEC --db \(dbPath)` first)")
        }
        let store = try RunStore(path: dbPath, readOnly: true)
        let rows = try store.statusRows(experiment: experiment)
        // runs submitted to Slurm: their job and its state (squeue, then sacct; "-" when neither answers)
        let jobs = try store.jobs()
        let jobState = SlurmPlan.jobStates(Array(Set(rows.compactMap { jobs[$0.runID] })))
        if json {
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
                if let job = jobs[r.runID] {
                    o["slurm_job"] = .string(job)
                    o["slurm_state"] = jobState[job].map { .string($0) } ?? .null
                }
                print(JSONValue.object(o).canonical)
            }
            return 0
        }
        if rows.isEmpty { print("no runs in \(dbPath)"); return 0 }
        let header = ["id", "run", "status", "step", "loss", "started", "finished"] + (jobs.isEmpty ? [] : ["slurm job"])
        var table = [header]
        for r in rows {
            var row: [String] = [
                "\(r.runID)", r.name, r.status == .running && !r.isHeldByLiveOwner() ? "running (owner \(r.owner ?? "?") gone; run again to resume)" : r.status.rawValue,
                r.lastLossStep.map(String.init) ?? r.lastStep.map(String.init) ?? "-",
                r.lastLoss.map { String(format: "%.4f", $0) } ?? "-", r.startedAt ?? "-", r.finishedAt ?? "-",
            ]
            if !jobs.isEmpty {
                let job = jobs[r.runID]
                row.append(job.map { "\($0) \(jobState[$0] ?? "-")" } ?? "-")
            }
            table.append(row)
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
        case .restarting(let run, let reason): emit("\(run): not resuming: \(reason)", updating: false)
        case .started(let run, let from, let total):
            emit(from > 0 ? "\(run): resuming at step \(from)/\(total)" : "\(run): starting, \(total) steps", updating: false)
        case .step(let run, let step, let total, let loss, let tps, let remaining):
            emit(String(format: "%@ %@ %d/%d loss %.4f %.0f tok/s ETA %@", run, Self.bar(step, total), step, total, loss, tps,
                        remaining.map(Self.duration) ?? "-"), updating: tty)
        case .evaluating(let run, let step, let done, let total):
            if done == 0 {
                emit("\(run): step \(step): evaluating \(total) responses", updating: false)
            } else if tty {
                emit("\(run) \(Self.bar(done, total)) \(done)/\(total) responses scored (step \(step))", updating: true)
            }
        case .warning(let run, let message):
            emit("\(run): warning: \(message)", updating: false)
        case .generated(let run, let done, let total, let elapsed):
            if done == 0 {
                emit("\(run): generating \(total) responses (the rejected side)", updating: false)
            } else {
                emit("\(run) \(Self.bar(done, total)) \(done)/\(total) responses generated, \(Self.duration(elapsed))", updating: tty)
            }
        case .labelled(let run, let done, let total, let elapsed):
            emit("\(run) \(Self.bar(done, total)) \(done)/\(total) prompts labelled, \(Self.duration(elapsed))", updating: tty)
        case .evaluated(let run, let step, let n, let seconds):
            emit(String(format: "%@: step %d evaluated %d responses in %.1fs", run, step, n, seconds), updating: false)
        case .checkpointed: break
        case .watching(let run, let folder, let evaluated, let idle, let limit):
            emit("\(run): watching \(folder): \(evaluated) step\(evaluated == 1 ? "" : "s") evaluated; none new for \(Self.duration(idle)) (stops at \(Self.duration(limit)); Ctrl-C stops now)", updating: tty)
        case .finished(let run, let seconds): emit("\(run): finished in \(Self.duration(seconds))", updating: false)
        case .failed(let run, let error): emit("\(run): failed: \(error)", updating: false)
        case .measured(let what): emit(what, updating: false)
        }
    }

    func finish() {
        if lineOpen, tty { FileHandle.standardError.write(Data("\n".utf8)); lineOpen = false }
    }

    /// "[#####---------------]": `done` of `total` in 20 characters.
    static func bar(_ done: Int, _ total: Int) -> String {
        let width = 20
        let filled = max(0, min(width, Int(Double(width) * Double(done) / Double(max(total, 1)))))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
    }
}

extension SlurmVerb {
    func run() throws -> Int32 {
        let experiment = try Commands.experimentVersion(try Experiment.load(path: spec), db: db, newVersion: false, flag: nil)
        try RunExecutor.validateInputs(of: experiment, generate: true)
        let results = URL(fileURLWithPath: db).deletingLastPathComponent().standardizedFileURL
        let store = try RunStore(path: db)
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: results)
        try executor.checkResumableInputs()
        var unfinished = Set<String>()
        for (run, id) in try executor.recordPlan() where try store.run(id: id)?.status != .finished { unfinished.insert(run.name) }
        guard !unfinished.isEmpty else {
            print("\(experiment.name): every run is finished (store: \(db))")
            return 0
        }
        // the executable itself (argv[0] may be a bare name found through $PATH)
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.resolvingSymlinksInPath().path
        let plan = SlurmPlan(experiment: experiment, unfinished: unfinished,
                             settings: .init(partition: partition, time: time, cpus: cpus, mem: mem, maxParallel: maxParallel, extra: sbatchArgs),
                             binary: binary, spec: URL(fileURLWithPath: spec).standardizedFileURL.path, results: results.path)
        let folder = results.appendingPathComponent(experiment.name).appendingPathComponent("slurm")
        let scripts = try plan.writeScripts(to: folder)
        if dryRun {
            for (wave, path) in zip(plan.waves, scripts) {
                print("# \(path)" + (wave.after.isEmpty ? "" : " (after waves \(wave.after.map(String.init).joined(separator: ", ")))"))
                print(wave.script)
            }
        } else {
            do {
                try plan.submit(scripts: scripts, store: store) { k, wave, job, dependency in
                    print("wave \(k): job \(job), \(wave.runs.count) run\(wave.runs.count == 1 ? "" : "s")" + (dependency.map { " (\($0))" } ?? ""))
                }
            } catch let error as SlurmPlan.SubmitFailure {
                throw CommandFailure(description: error.description)
            }
        }
        if !dryRun {
            print("when the jobs are done: alignscope merge --db \(db) \(results.appendingPathComponent(experiment.name).appendingPathComponent("shards").path)/*.sqlite")
        }
        return 0
    }
}
