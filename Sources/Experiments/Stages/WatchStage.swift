import Base
import Foundation
import HFModels
import Model
import Probes
import RunStore
import Tokenizer
import Training

/// A run trained elsewhere (`model: { checkpoints: DIR, base }`): no training; the probe set is evaluated at every
/// checkpoint of DIR (`TrainerOutput`) and recorded as this run's steps (the checkpoints' global steps; `base` at step 0),
/// with the trainer's own log (`log_history`) as its train metrics. With `--follow S` (`RunExecutor.followSeconds`) it
/// keeps watching DIR and evaluates each new checkpoint once complete, until none has appeared for S seconds.
///
/// A checkpoint is read only once it is complete (its `trainer_state.json` written, its weights present) and its files
/// stopped changing (the same sizes and modification times one poll apart). What was evaluated is never evaluated
/// again: a run started again goes on from the steps it recorded; each evaluated checkpoint's files are fingerprinted
/// (`run_inputs`, "checkpoint:STEP"), and one whose files changed since is refused. A checkpoint deleted before it was
/// evaluated (the Trainer's `save_total_limit`) is reported, not an error.
struct WatchStage: Stage {
    /// The scoring settings of a watched run (it has no `train` section): probes up to 1024 tokens, 4 per batch.
    static let scoringSettings = try! JSONDecoder().decode(TrainSettings.self, from: Data(#"{"steps": 1, "max_length": 1024}"#.utf8))
    /// A watched run's config as it scores: probes up to 1024 tokens or the model's context, whichever is less.
    static func scoring(_ config: RunConfig, context: Int) -> RunConfig {
        var c = config
        c.train.maxLength = min(c.train.maxLength, context)
        return c
    }

    /// Seconds between looks at the folder (and the pause that tells a finished checkpoint from one being written).
    static let poll: TimeInterval = 1

    let folder: String
    let base: String?

    func summary(of config: RunConfig) -> String {
        let found = (try? TrainerOutput(folder: folder).scan().complete.map(\.step)) ?? []
        let steps = found.isEmpty ? "none yet" : "\(found.count) now, steps \(found.map(String.init).joined(separator: ","))"
        return "evaluates the checkpoints of \(folder) (\(steps))\(base.map { ", its base \($0) as step 0" } ?? "")"
    }

    func inputRuns(of config: RunConfig) -> [String] { [] }

    /// The folder must exist and hold a complete checkpoint, unless a base gives the model (then checkpoints may come).
    func validate(_ config: RunConfig, experiment: Experiment, tokenizer: any TextTokenizer) throws {
        let scan = try TrainerOutput(folder: folder).scan()
        if scan.complete.isEmpty && base == nil {
            throw RunError.io(path: folder, reason: "no complete checkpoint yet (checkpoint-N/ with config.json, weights and trainer_state.json) and no model.base to start from")
        }
        if !config.data.train.isAbsent {
            _ = try PairEncoder.trainingExamples(of: config, path: experiment.resolve(config.data.train.path))
        }
    }

    func execute(_ run: RunContext) throws -> Bool {
        let started = Date()
        let store = run.store, output = TrainerOutput(folder: folder)
        run.report(.loading(run: run.name, what: "model"))
        let config = Self.scoring(run.config, context: try ModelLoader.validate(run.config.model, experiment: run.experiment).config.contextLength)
        let loaded = try ModelLoader.load(config.model, experiment: run.experiment, capacity: config.batchTokens,
                                          maxSequenceLength: config.longestSequence, threads: config.threadCount)
        // the base weights, for adapters (applied onto them); the model holds them now when there is a base
        let usesAdapters = try output.scan().complete.contains(where: \.isAdapter)
        let baseWeights: [Float]? = usesAdapters || base != nil ? Array(loaded.model.parameters) : nil
        var trainPrompts: [[ChatMessage]] = []
        if !config.data.train.isAbsent {
            trainPrompts = try PairEncoder.trainingExamples(of: config, path: run.executor.trainPath(config)).examples.map(\.prompt)
        }
        let probes = try ProbeEvaluator(config: config, experiment: run.experiment, store: store, loaded: loaded,
                                        template: config.template, trainPrompts: trainPrompts)
        // the inputs: probes (and the train file), the base; then one fingerprint per evaluated checkpoint
        var inputs = try InputFingerprints.of(config, experiment: run.experiment, trainPath: run.executor.trainPath(config))
        let recorded = try store.runInputs(runID: run.runID)
        if let change = InputFingerprints.firstChange(recorded: recorded.filter { !$0.key.hasPrefix("checkpoint:") }, current: inputs) {
            throw RunError.io(path: change.path, reason: "the \(change.input) file changed since run \(run.name) recorded its first evaluations; its rows would mix two inputs (record the run again in a new store, or restore the file)")
        }
        for (key, input) in recorded where key.hasPrefix("checkpoint:") {
            guard FileManager.default.fileExists(atPath: input.path) else { continue }  // deleted since: its rows stay
            if try InputFingerprints.sha256(ofDirectory: input.path) != input.sha256 {
                throw RunError.io(path: input.path, reason: "its files changed since it was evaluated as step \(key.dropFirst("checkpoint:".count)) of run \(run.name); refusing to mix two models under one step (record the run again in a new store)")
            }
            inputs[key] = input
        }
        try store.setRunInputs(runID: run.runID, inputs)
        // what is recorded already: a step counts when its evaluation holds every response
        let counts = try store.evaluationRowCounts(runID: run.runID)
        var done = Set(counts.filter { $0.value == probes.responsesPerEvaluation }.map(\.key))
        run.report(.loading(run: run.name, what: "the checkpoints of \(folder) (\(done.count) step\(done.count == 1 ? "" : "s") recorded already)"))

        func evaluate(step: Int, what: String) throws {
            let t0 = Date()
            run.report(.loading(run: run.name, what: what))
            let rows = try probes.score(step: step)
            try store.writeEvaluation(runID: run.runID, step: step, rows: rows, tokenTexts: probes.tokenTexts(rows))
            try store.setLastStep(runID: run.runID, step: max(step, done.max() ?? 0))
            done.insert(step)
            run.report(.evaluated(run: run.name, step: step, responses: rows.count, seconds: Date().timeIntervalSince(t0)))
        }
        if base != nil && !done.contains(0) { try evaluate(step: 0, what: "base model (step 0)") }

        var lastNew = Date(), seen = Set<String>()  // checkpoints seen incomplete or not yet evaluated
        var notes = Set<String>(), stable: [String: [String: [Int]]] = [:]
        while true {
            if run.stopRequested { return false }
            let scan = try output.scan()
            for note in scan.notes where notes.insert(note).inserted { run.report(.warning(run: run.name, message: note)) }
            let present = Set(scan.complete.map(\.name) + scan.incomplete)
            for name in seen.subtracting(present).sorted() {
                run.report(.warning(run: run.name, message: "\(name) was deleted before it was evaluated (the trainer's save_total_limit?): not recorded"))
                seen.remove(name)
            }
            seen.formUnion(scan.incomplete)
            var evaluated = false
            for checkpoint in scan.complete where !done.contains(checkpoint.step) {
                seen.insert(checkpoint.name)
                // read only once its files stopped changing: the same signature one poll apart
                guard stable[checkpoint.path] == checkpoint.signature else {
                    stable[checkpoint.path] = checkpoint.signature
                    continue
                }
                if run.stopRequested { return false }
                try load(checkpoint, into: loaded, baseWeights: baseWeights, run)
                try importLog(checkpoint, run)
                try evaluate(step: checkpoint.step, what: "\(checkpoint.name) (step \(checkpoint.step))")
                inputs["checkpoint:\(checkpoint.step)"] = RunInput(path: checkpoint.path, sha256: try InputFingerprints.sha256(ofDirectory: checkpoint.path))
                try store.setRunInputs(runID: run.runID, inputs)
                seen.remove(checkpoint.name)
                try store.heartbeat(runID: run.runID)
                evaluated = true
                lastNew = Date()
            }
            let waiting = scan.complete.contains { !done.contains($0.step) }
            if !waiting && !evaluated {
                guard let follow = run.executor.followSeconds, Date().timeIntervalSince(lastNew) < follow else { break }
            }
            if !evaluated {
                if waiting {
                    // a complete checkpoint whose files still changed at the last look: look again (Ctrl-C is heard here)
                    let names = scan.complete.filter { !done.contains($0.step) }.map(\.name)
                    run.report(.loading(run: run.name, what: "\(names.joined(separator: ", ")): waiting until the files stop changing"))
                } else if let follow = run.executor.followSeconds {
                    run.report(.watching(run: run.name, folder: folder, evaluated: done.count, idle: Date().timeIntervalSince(lastNew), limit: follow))
                }
                if run.stopRequested { return false }
                Thread.sleep(forTimeInterval: Self.poll)
            }
            try store.heartbeat(runID: run.runID)
        }
        for name in seen.sorted() {
            run.report(.warning(run: run.name, message: "\(name) is still being written (no trainer_state.json yet): not evaluated; run again, or with --follow, once it is saved"))
        }
        run.report(.finished(run: run.name, seconds: Date().timeIntervalSince(started)))
        return true
    }

    /// A checkpoint's weights into the model (its tokenizer files beside them or in the output folder; the architecture
    /// must be the model's).
    func load(_ checkpoint: TrainerOutput.Checkpoint, into loaded: LoadedModel, baseWeights: [Float]?, _ run: RunContext) throws {
        if checkpoint.isAdapter {
            // a PEFT adapter: the base weights again, then the adapter merged onto them
            guard let baseWeights, baseWeights.count == loaded.model.parameterCount else {
                throw RunError.model(path: checkpoint.path, reason: "\(checkpoint.name) is a PEFT adapter, but the run began without a base model to apply it onto (give model.base)")
            }
            if FileManager.default.fileExists(atPath: checkpoint.path + "/tokenizer.json") {
                let tokenizer = try HFModelDirectory.tokenizer(directory: checkpoint.path, modelDirectory: folder, vocabSize: loaded.model.config.vocabSize)
                guard ModelLoader.tokenizersAgree(tokenizer, loaded.tokenizer) else {
                    throw RunError.model(path: checkpoint.path, reason: "\(checkpoint.name)'s tokenizer reads text otherwise than the base's")
                }
            }
            _ = loaded.model.parameters.update(fromContentsOf: baseWeights)
            try PEFTAdapter(path: checkpoint.path, config: loaded.model.config).apply(to: loaded.model)
            return
        }
        let directory = try HFModelDirectory(path: checkpoint.path, tokenizerDirectory: Self.tokenizerDirectory(checkpoint.path, folder: folder))
        guard directory.config.holdsTheWeights(of: loaded.model.config) else {
            throw RunError.model(path: checkpoint.path, reason: "\(checkpoint.name) has another architecture or shape than the model this run evaluates (config.json differs from \(base == nil ? "the first checkpoint's" : "the base's"))")
        }
        guard ModelLoader.tokenizersAgree(directory.tokenizer, loaded.tokenizer) else {
            throw RunError.model(path: checkpoint.path, reason: "\(checkpoint.name)'s tokenizer reads text otherwise than \(base == nil ? "the first checkpoint's" : "the base's") (\(directory.tokenizer.vocabSize) tokens)")
        }
        try directory.loadWeights(into: loaded.model)
    }

    /// The trainer's log of a checkpoint into `train_metrics`, at its steps (a later checkpoint repeats the earlier
    /// history: a row already there is written again with the same value, never twice).
    func importLog(_ checkpoint: TrainerOutput.Checkpoint, _ run: RunContext) throws {
        let (steps, skipped) = try TrainerOutput.logHistory(checkpoint.path + "/trainer_state.json")
        for (step, metrics) in steps.sorted(by: { $0.key < $1.key }) {
            try run.store.writeTrainMetrics(runID: run.runID, step: step, metrics: metrics.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
        if !skipped.isEmpty {
            run.report(.warning(run: run.name, message: "\(checkpoint.path)/trainer_state.json: log_history entries that are not numbers are not recorded: \(skipped.sorted().joined(separator: ", "))"))
        }
    }

    /// Where a checkpoint's tokenizer is: beside its weights, else in the output folder.
    static func tokenizerDirectory(_ checkpoint: String, folder: String) -> String {
        FileManager.default.fileExists(atPath: checkpoint + "/tokenizer.json") ? checkpoint : folder
    }
}
