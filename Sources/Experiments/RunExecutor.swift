import Base
import Foundation
import GGUF
import Model
import Probes
import RunStore
import Tokenizer
import Training

/// Runs report through the one progress type (`Base.ProgressEvent`), as labelling and the bench do.
public typealias RunProgress = ProgressEvent

/// Executes the runs of an experiment against a run store.
public final class RunExecutor {
    public let experiment: Experiment
    public let store: RunStore
    /// Folder under which each run keeps `<experiment>/<run>/checkpoint.bin`.
    public let checkpointRoot: URL
    /// Called with every event; answering `.stop` to any of them stops after the current step.
    public var progress: (RunProgress) -> ProgressDisposition = { _ in .more }
    /// Set once the callback has answered `.stop`.
    public private(set) var stopRequested = false
    /// `run --follow S`: a watched checkpoint folder (`WatchStage`) is watched until no new checkpoint has appeared for
    /// S seconds; nil: what is there is evaluated, then the run ends.
    public var followSeconds: Double?

    public init(experiment: Experiment, store: RunStore, checkpointRoot: URL) {
        self.experiment = experiment
        self.store = store
        self.checkpointRoot = checkpointRoot
    }
}

extension RunExecutor {
    /// One spec per experiment name: the experiment as it is when `store` has no experiment of its name or has it with
    /// this spec (same sha256). Another spec under the name is refused (`RunError.specConflict`, naming both hashes and
    /// the ways on) unless `newVersion`: then the spec is the experiment "NAME.vK", K >= 2, the first version recorded
    /// with this spec or else the first name free (a new experiment row; every stored spec is kept as it was).
    /// Reads the store only.
    public static func experimentVersion(_ experiment: Experiment, store: RunStore, newVersion: Bool,
                                         newVersionFlag: String? = "--new-version") throws -> Experiment {
        guard let recorded = try store.experiment(name: experiment.name), recorded.specSHA256 != experiment.specSHA256 else {
            return try adoptingFormerIdentities(experiment, store: store)
        }
        var k = 2
        while true {
            let name = "\(experiment.name).v\(k)"
            let version = try store.experiment(name: name)
            if version == nil || version?.specSHA256 == experiment.specSHA256 {
                if newVersion { return try adoptingFormerIdentities(try experiment.renamed(name), store: store) }
                var ways = "give this spec another name"
                if let flag = newVersionFlag {
                    ways += version == nil ? ", or run with \(flag) to record it as a new experiment \"\(name)\" beside \"\(experiment.name)\", keeping both specs"
                        : ", or run with \(flag) to go on with \"\(name)\", where this spec is recorded"
                }
                throw RunError.specConflict(store: store.path, name: experiment.name, stored: recorded.specSHA256,
                                            given: experiment.specSHA256, file: experiment.specPath, ways: ways)
            }
            k += 1
        }
    }

    /// `experiment` with each run that `store` holds only under the identity an AlignScope from before a key was frozen gave
    /// it (`RunConfig.formerIdentityJSON`: a spec that set `threads` to other than 2) under that identity, so that it is
    /// found, skipped or resumed as before. Reads the store only.
    static func adoptingFormerIdentities(_ experiment: Experiment, store: RunStore) throws -> Experiment {
        var out = experiment
        for (i, run) in experiment.runs.enumerated() {
            guard let former = run.config.formerIdentityJSON, try store.run(configSHA256: run.configSHA256) == nil else { continue }
            let sha = SHA256.hex(Array(former.utf8))
            if try store.run(configSHA256: sha) != nil {
                out.runs[i].configJSON = former
                out.runs[i].configSHA256 = sha
            }
        }
        return out
    }

    /// Records the experiment and its planned runs; returns the run ids in plan order.
    @discardableResult
    public func recordPlan() throws -> [(run: Experiment.PlannedRun, id: Int64)] {
        let experimentID = try store.recordExperiment(name: experiment.name, spec: experiment.specText, specSHA256: experiment.specSHA256)
        return try experiment.runs.map { run in
            var params: [String: SQLiteValue] = [:]
            Self.flatten(run.config.json, prefix: "", into: &params)
            let id = try store.recordRun(experimentID: experimentID, name: run.name, config: run.configJSON,
                                         configSHA256: run.configSHA256, seed: Int64(run.config.seed), params: params)
            return (run, id)
        }
    }

    /// `params` rows: every leaf of the resolved config under its dotted key path.
    static func flatten(_ v: JSONValue, prefix: String, into out: inout [String: SQLiteValue]) {
        switch v {
        case .object(let o):
            for (k, child) in o { flatten(child, prefix: prefix.isEmpty ? k : "\(prefix).\(k)", into: &out) }
        case .number(let x): out[prefix] = x == x.rounded() && abs(x) < 1e15 ? .integer(Int64(x)) : .real(x)
        case .string(let s): out[prefix] = .text(s)
        case .bool(let b): out[prefix] = .integer(b ? 1 : 0)
        case .null: out[prefix] = .null
        case .array: out[prefix] = .text(v.canonical)
        }
    }

    public struct Summary: Sendable {
        public var finished: [String] = []
        public var failed: [(run: String, error: String)] = []
        public var skipped: [(run: String, reason: String)] = []
        /// Runs stopped by a stop request, with the step they resume from.
        public var interrupted: [(run: String, step: Int)] = []
    }

    /// Refuses (exit 2, before anything is written) to resume a run whose training data, probe set or
    /// model file changed since it started: its checkpoint belongs to this store, it has recorded
    /// fingerprints, and the files no longer match them.
    public func checkResumableInputs(only: String? = nil) throws {
        let storeID = try store.storeID()
        for run in experiment.runs where only == nil || run.name == only {
            guard let record = try store.run(configSHA256: run.configSHA256), record.status != .finished else { continue }
            let recorded = try store.runInputs(runID: record.id)
            guard !recorded.isEmpty else { continue }
            let url = checkpointURL(runName: run.name)
            guard let header = try? Checkpoint.readHeader(url), header.configSHA256 == run.configSHA256,
                  header.storeID == storeID else { continue }
            if let change = InputFingerprints.firstChange(recorded: recorded, current: try InputFingerprints.of(run.config, experiment: experiment, trainPath: trainPath(run.config))) {
                throw RunError.inputChanged(run: run.name, input: change.input, path: change.path, checkpoint: url.path)
            }
        }
    }

    /// Sends an event to the progress callback and remembers a stop.
    func report(_ event: RunProgress) {
        if progress(event) == .stop { stopRequested = true }
    }

    /// Runs every planned run that is not finished (or only `only`), one after the other, claiming
    /// each in the store first so that concurrent processes never train the same run twice.
    /// With `inputsValidated`, the caller has run `validateInputs` and `checkResumableInputs` itself.
    public func runAll(only: String? = nil, inputsValidated: Bool = false) throws -> Summary {
        if !inputsValidated {
            try validateInputs()
            try checkResumableInputs(only: only)
        }
        let planned = try recordPlan()
        if let only, !planned.contains(where: { $0.run.name == only }) { throw RunError.unknownRun(only) }
        var summary = Summary()
        for (run, id) in planned where only == nil || run.name == only {
            if stopRequested { break }
            guard let record = try store.run(id: id) else { continue }
            // a watched checkpoint folder is looked at again: new checkpoints may have come
            let watching = run.config.model.isCheckpoints
            if record.status == .finished && !watching {
                summary.skipped.append((run.name, "finished"))
                report(.skipped(run: run.name, reason: "finished"))
                continue
            }
            if let parent = run.config.initFrom?.run, try store.run(name: parent)?.status != .finished,
               !(run.config.initFrom?.step.map { snapshotExists(parent, $0) } ?? false) {
                summary.skipped.append((run.name, "waiting for \(parent)"))
                report(.skipped(run: run.name, reason: "waiting for \(parent) to finish"))
                continue
            }
            // a label run's policy and scorer, the label run whose pairs a run trains on, and a ppo run's reward model must have finished
            let inputs = run.config.inputRuns.filter { $0 != run.config.initFrom?.run }
            if let parent = try inputs.first(where: { try store.run(name: $0)?.status != .finished }) {
                summary.skipped.append((run.name, "waiting for \(parent)"))
                report(.skipped(run: run.name, reason: "waiting for \(parent) to finish"))
                continue
            }
            guard try store.claim(runID: id, includeFailed: true, includeFinished: watching) else {
                summary.skipped.append((run.name, "held by \(record.owner ?? "another process")"))
                report(.skipped(run: run.name, reason: "held by \(record.owner ?? "another process")"))
                continue
            }
            do {
                let done: Bool
                do {
                    done = try Stages.stage(for: run.config).execute(RunContext(executor: self, run: run, runID: id))
                } catch ProbesError.interrupted {
                    done = false  // a generator command stopped with the run
                }
                if done {
                    try store.finish(runID: id)
                    summary.finished.append(run.name)
                } else {
                    try store.markInterrupted(runID: id, reason: "stopped")
                    summary.interrupted.append((run.name, try store.run(id: id)?.lastStep ?? 0))
                }
            } catch {
                let message = "\(error)"
                try? store.fail(runID: id, error: message)
                summary.failed.append((run.name, message))
                report(.failed(run: run.name, error: message))
            }
        }
        return summary
    }

    func snapshotExists(_ run: String, _ step: Int) -> Bool {
        FileManager.default.fileExists(atPath: snapshotURL(runName: run, step: step).path)
    }

    /// Steps at which a run must keep a weights snapshot because another run starts from it there.
    func snapshotSteps(of runName: String) -> Set<Int> {
        Set(experiment.runs.flatMap { r -> [Int] in
            var steps: [Int] = []
            if let i = r.config.initFrom, i.run == runName, let s = i.step { steps.append(s) }
            if case .run(let i)? = r.config.reference, i.run == runName, let s = i.step { steps.append(s) }
            return steps
        })
    }

    func snapshotURL(runName: String, step: Int) -> URL {
        checkpointURL(runName: runName).deletingLastPathComponent().appendingPathComponent("weights-\(step).bin")
    }

    /// The training file of a run: `data.train.path` resolved against the spec, or the pairs of the label run
    /// named by `data.train.from`.
    func trainPath(_ config: RunConfig) -> String {
        config.data.train.from.map { labelsURL(runName: $0).path } ?? experiment.resolve(config.data.train.path)
    }

    /// Where a label run writes its pairs (beside where a run keeps its checkpoint).
    public func labelsURL(runName: String) -> URL {
        Self.labelsURL(root: checkpointRoot, experiment: experiment.name, runName: runName)
    }

    static func labelsURL(root: URL, experiment: String, runName: String) -> URL {
        checkpointURL(root: root, experiment: experiment, runName: runName).deletingLastPathComponent().appendingPathComponent("labels.jsonl")
    }

    /// Where a run keeps its checkpoint.
    public func checkpointURL(runName: String) -> URL {
        Self.checkpointURL(root: checkpointRoot, experiment: experiment.name, runName: runName)
    }

    /// results/<experiment>/<swept values>/checkpoint.bin ("run" when nothing is swept); also used
    /// by `export`, which knows the run only from the store.
    static func checkpointURL(root: URL, experiment: String, runName: String) -> URL {
        root.appendingPathComponent(experiment).appendingPathComponent(runFolder(experiment: experiment, runName: runName))
            .appendingPathComponent(Checkpoint.fileName)
    }

    /// Folders AlignScope keeps in results/<experiment>/ beside the runs' (Slurm shards and scripts, the reference
    /// log-probability cache): no run may have one of these names (`Experiment.parse` refuses it).
    public static let reservedFolders: Set<String> = ["shards", "slurm", "reference-cache"]

    /// The folder of a run under its experiment's: the run name after the experiment's ("/" as "_"),
    /// or "run" when nothing is swept.
    static func runFolder(experiment: String, runName: String) -> String {
        let prefix = experiment + "/"
        let leaf = runName.hasPrefix(prefix) ? String(runName.dropFirst(prefix.count)) : "run"
        return leaf.replacingOccurrences(of: "/", with: "_")
    }
}
