import Base
import RunStore
import Foundation

/// An experiment as Slurm job arrays (`alignscope slurm`): the unfinished runs in waves (a run goes in the wave after
/// the last of the runs it reads, `RunConfig.inputRuns`), one array per wave, each array after the previous ones it
/// depends on (`--dependency=afterok`). Every task runs one run in a store of its own (a shard) on node-local disk
/// and copies the shard and the run's checkpoint folder back to the shared results folder when the run ends or is
/// stopped; `alignscope merge` brings the shards into the main store.
public struct SlurmPlan {
    /// `sbatch` settings of every array.
    public struct Settings: Sendable, Equatable {
        public var partition: String?
        public var time: String?
        public var cpus: Int?
        public var mem: String?
        /// At most this many tasks of an array at once (`--array=...%K`).
        public var maxParallel: Int?
        /// More `#SBATCH` arguments, as given.
        public var extra: [String] = []

        public init(partition: String? = nil, time: String? = nil, cpus: Int? = nil, mem: String? = nil, maxParallel: Int? = nil, extra: [String] = []) {
            self.partition = partition
            self.time = time
            self.cpus = cpus
            self.mem = mem
            self.maxParallel = maxParallel
            self.extra = extra
        }
    }

    public struct Wave: Sendable, Equatable {
        public var runs: [String]
        /// Earlier waves holding runs these read (their arrays must succeed first).
        public var after: [Int]
        public var script: String
    }

    public let waves: [Wave]

    /// - Parameters:
    ///   - unfinished: names of the runs to run (the plan's runs not finished in the main store).
    ///   - binary, spec, results: absolute paths of the executable, the spec, and the shared results folder
    ///     (checkpoints under `results/<experiment>/<run folder>/`, shards under `results/<experiment>/shards/`).
    public init(experiment: Experiment, unfinished: Set<String>, settings: Settings, binary: String, spec: String, results: String) {
        var waveOf: [String: Int] = [:]
        var waves: [[Experiment.PlannedRun]] = []
        for run in experiment.runs where unfinished.contains(run.name) {
            // runs are planned after the runs they read, so their waves are known
            let k = run.config.inputRuns.compactMap { waveOf[$0] }.map { $0 + 1 }.max() ?? 0
            waveOf[run.name] = k
            if waves.count <= k { waves.append(contentsOf: Array(repeating: [], count: k + 1 - waves.count)) }
            waves[k].append(run)
        }
        self.waves = waves.enumerated().map { k, runs in
            let after = Array(Set(runs.flatMap { $0.config.inputRuns.compactMap { waveOf[$0] } })).sorted()
            return Wave(runs: runs.map(\.name), after: after,
                        script: Self.script(experiment: experiment.name, wave: k, runs: runs, settings: settings, binary: binary, spec: spec, results: results))
        }
    }

    /// `sbatch` gave no job id.
    public struct SubmitFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Writes each wave's script to `folder/wave-K.sbatch` (and makes `folder/logs`); returns the paths in wave order.
    public func writeScripts(to folder: URL) throws -> [String] {
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("logs"), withIntermediateDirectories: true)
        return try waves.enumerated().map { k, wave in
            let path = folder.appendingPathComponent("wave-\(k).sbatch").path
            try AtomicFile.write(wave.script, to: path)
            return path
        }
    }

    /// Submits the waves with `sbatch --parsable`, each after the waves it reads (`afterok` dependencies), and records
    /// each run's job and task (`run_jobs`); `submitted(k, wave, job, dependency)` is told of each.
    public func submit(scripts: [String], store: RunStore, submitted: (Int, Wave, String, String?) -> Void) throws {
        var jobs: [String] = []
        for (k, (wave, path)) in zip(waves, scripts).enumerated() {
            let dependency = wave.after.isEmpty ? nil : "--dependency=afterok:" + wave.after.map { jobs[$0] }.joined(separator: ":")
            let out = try runCommand(["sbatch", "--parsable"] + (dependency.map { [$0] } ?? []) + [path], input: "", timeout: 60)
            let id = String(out.split(separator: "\n").first ?? "").split(separator: ";").first.map(String.init) ?? ""
            guard !id.isEmpty, id.allSatisfy(\.isNumber) else { throw SubmitFailure(description: "sbatch \(path): no job id in its answer \"\(out.prefix(200))\"") }
            jobs.append(id)
            for (task, name) in wave.runs.enumerated() {
                if let record = try store.run(name: name) { try store.setJob(runID: record.id, job: "\(id)_\(task)") }
            }
            submitted(k, wave, id, dependency)
        }
    }

    /// The state of each Slurm job (`JOB_TASK`) that `squeue` (queued, running) or `sacct` (ended, where accounting
    /// is kept) knows; jobs neither knows are absent.
    public static func jobStates(_ ids: [String]) -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        var out: [String: String] = [:]
        let list = ids.sorted().joined(separator: ",")
        func read(_ argv: [String]) {
            guard let text = try? runCommand(argv, input: "", timeout: 20) else { return }
            for line in text.split(separator: "\n") {
                let f = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                if f.count >= 2, ids.contains(f[0]), out[f[0]] == nil { out[f[0]] = f[1].lowercased() }
            }
        }
        read(["squeue", "-h", "-r", "-o", "%i|%T", "-j", list])
        read(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", list])
        return out
    }

    /// A value as one bash word.
    static func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// The batch script of one wave. Each task: its store is its own shard from an earlier attempt (a requeued task
    /// resumes) or a new one with the shards of the runs it reads merged in (copied to local disk first: SQLite is
    /// never opened on the shared filesystem); the checkpoint folders of those runs and its own are copied to local
    /// disk; `alignscope run --only` runs it there (SIGTERM: it stops after the step and checkpoints); then the
    /// shard and the run's checkpoint folder are copied back, each to a temporary name and renamed. A folder
    /// cannot replace another in one rename, so its complete copy is first renamed `.FOLDER.ready.PID`, then the
    /// old folder removed and the ready one renamed into place; a task stopped between those two steps leaves
    /// the ready copy, which the next attempt of the task moves into place before anything else. The reference
    /// log-probability cache (`results/<experiment>/reference-cache`, one file per model and data) is shared the
    /// same way: copied to local disk before the run, new files copied back (temporary name, then renamed), so a
    /// later task or a requeued one does not compute the same reference again.
    static func script(experiment: String, wave k: Int, runs: [Experiment.PlannedRun], settings: Settings, binary: String, spec: String, results: String) -> String {
        let folders = runs.map { RunExecutor.runFolder(experiment: experiment, runName: $0.name) }
        let folderOf = Dictionary(uniqueKeysWithValues: runs.map { ($0.name, RunExecutor.runFolder(experiment: experiment, runName: $0.name)) })
        let inputs = runs.map { run in
            run.config.inputRuns.map { folderOf[$0] ?? RunExecutor.runFolder(experiment: experiment, runName: $0) }
        }
        var lines = ["#!/bin/bash", "# AlignScope: experiment \(experiment), wave \(k) (\(runs.count) run\(runs.count == 1 ? "" : "s")), written by alignscope slurm"]
        lines.append("#SBATCH --job-name=alignscope-\(experiment)-w\(k)")
        lines.append("#SBATCH --array=0-\(runs.count - 1)" + (settings.maxParallel.map { "%\($0)" } ?? ""))
        lines.append("#SBATCH --output=\(results)/\(experiment)/slurm/logs/%x-%A_%a.out")
        lines.append("#SBATCH --open-mode=append")
        lines.append("#SBATCH --requeue")
        if let p = settings.partition { lines.append("#SBATCH --partition=\(p)") }
        if let t = settings.time { lines.append("#SBATCH --time=\(t)") }
        if let c = settings.cpus { lines.append("#SBATCH --cpus-per-task=\(c)") }
        if let m = settings.mem { lines.append("#SBATCH --mem=\(m)") }
        for a in settings.extra { lines.append("#SBATCH \(a)") }
        lines += [
            "set -u",
            "ALIGNSCOPE=\(quoted(binary))",
            "SPEC=\(quoted(spec))",
            // every name is one quoted word (never pasted into code): an experiment called x$(touch y) stays a name
            "EXPERIMENT=\(quoted(experiment))",
            "SHARED=\(quoted(results + "/" + experiment))",
            "RUNS=(\(runs.map { quoted($0.name) }.joined(separator: " ")))",
            "FOLDERS=(\(folders.map(quoted).joined(separator: " ")))",
        ] + inputs.enumerated().map { k, folders in "INPUTS_\(k)=(\(folders.map(quoted).joined(separator: " ")))" } + [
            "i=${SLURM_ARRAY_TASK_ID:?not a Slurm array task}",
            "case $i in ''|*[!0-9]*) echo \"alignscope: SLURM_ARRAY_TASK_ID is not a number\" >&2; exit 1 ;; esac",
            "RUN=${RUNS[$i]}; FOLDER=${FOLDERS[$i]}",
            "LOCAL=\"${SLURM_TMPDIR:-${TMPDIR:-$SHARED/slurm/local}}/alignscope-${SLURM_ARRAY_JOB_ID:-$$}-$i\"",
            "rm -rf \"$LOCAL\" && mkdir -p \"$LOCAL/checkpoints/$EXPERIMENT\" \"$LOCAL/in\" \"$SHARED/shards\" || exit 1",
            "trap 'rm -rf \"$LOCAL\"' EXIT",
            "# publish FILE DIR NAME: FILE as DIR/NAME, copied under a temporary name first, then renamed (never half a file)",
            "publish() { cp \"$1\" \"$2/.$3.$$\" && mv -f \"$2/.$3.$$\" \"$2/$3\"; }",
            "# the folders of the runs this task reads (a bash array per task: each name one word, never code)",
            "eval \"TASK_INPUTS=(\\\"\\${INPUTS_$i[@]}\\\")\"",
            "# the task's store: its shard from an earlier attempt, else a new one holding the runs it reads",
            "if [ -f \"$SHARED/shards/$FOLDER.sqlite\" ]; then",
            "  cp \"$SHARED/shards/$FOLDER.sqlite\" \"$LOCAL/store.sqlite\" || exit 1",
            "else",
            "  for input in ${TASK_INPUTS[@]+\"${TASK_INPUTS[@]}\"}; do",
            "    cp \"$SHARED/shards/$input.sqlite\" \"$LOCAL/in/$input.sqlite\" || exit 1",
            "    \"$ALIGNSCOPE\" merge --db \"$LOCAL/store.sqlite\" \"$LOCAL/in/$input.sqlite\" || exit 1",
            "  done",
            "fi",
            "# a copy-back stopped between its last two steps left the complete folder under its ready name; partial",
            "# copies (stopped earlier) are dropped; the name after the folder's must be a pid (other runs' folders share prefixes)",
            "for ready in \"$SHARED/.$FOLDER.ready.\"[0-9]*; do",
            "  case \"${ready#\"$SHARED/.$FOLDER.ready.\"}\" in *[!0-9]*) continue ;; esac",
            "  if [ -d \"$ready\" ]; then rm -rf \"$SHARED/$FOLDER\" && mv \"$ready\" \"$SHARED/$FOLDER\" || exit 1; fi",
            "done",
            "for partial in \"$SHARED/.$FOLDER.\"[0-9]*; do",
            "  case \"${partial#\"$SHARED/.$FOLDER.\"}\" in *[!0-9]*) ;; *) rm -rf \"$partial\" ;; esac",
            "done",
            "for folder in ${TASK_INPUTS[@]+\"${TASK_INPUTS[@]}\"} \"$FOLDER\"; do",
            "  if [ -d \"$SHARED/$folder\" ]; then cp -R \"$SHARED/$folder\" \"$LOCAL/checkpoints/$EXPERIMENT/$folder\" || exit 1; fi",
            "done",
            "# reference log-probabilities computed by other tasks or attempts (one file per key, each written whole)",
            "CACHE=\"$LOCAL/checkpoints/$EXPERIMENT/reference-cache\"",
            "mkdir -p \"$CACHE\" || exit 1",
            "cached=0",
            "for f in \"$SHARED/reference-cache/\"reflogps-*.bin; do",
            "  if [ -f \"$f\" ]; then cp \"$f\" \"$CACHE/\" || exit 1; cached=$((cached + 1)); fi",
            "done",
            "echo \"alignscope: $cached reference-cache file(s) from $SHARED/reference-cache\"",
            "# SIGTERM (preemption, scancel --signal=TERM) reaches the run: it stops after its step and checkpoints",
            "trap 'kill -TERM $child 2>/dev/null' TERM",
            "\"$ALIGNSCOPE\" run \"$SPEC\" --only \"$RUN\" --db \"$LOCAL/store.sqlite\" --checkpoints \"$LOCAL/checkpoints\" --quiet &",
            "child=$!",
            "wait $child; status=$?",
            "while kill -0 $child 2>/dev/null; do wait $child; status=$?; done",
            "# back to the shared folder, each under a temporary name first",
            "publish \"$LOCAL/store.sqlite\" \"$SHARED/shards\" \"$FOLDER.sqlite\" || exit 1",
            "for f in \"$CACHE/\"reflogps-*.bin; do",
            "  name=${f##*/}",
            "  if [ -f \"$f\" ] && [ ! -f \"$SHARED/reference-cache/$name\" ]; then",
            "    mkdir -p \"$SHARED/reference-cache\" && publish \"$f\" \"$SHARED/reference-cache\" \"$name\" || exit 1",
            "  fi",
            "done",
            "if [ -d \"$LOCAL/checkpoints/$EXPERIMENT/$FOLDER\" ]; then",
            "  cp -R \"$LOCAL/checkpoints/$EXPERIMENT/$FOLDER\" \"$SHARED/.$FOLDER.$$\" && mv \"$SHARED/.$FOLDER.$$\" \"$SHARED/.$FOLDER.ready.$$\" || exit 1",
            "  rm -rf \"$SHARED/$FOLDER\" && mv \"$SHARED/.$FOLDER.ready.$$\" \"$SHARED/$FOLDER\" || exit 1",
            "fi",
            "exit $status",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
