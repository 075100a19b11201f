import Base
import Foundation
import Model
import Probes
import RunStore
import Tokenizer
import Training

/// The loop every training stage runs once its trainer is prepared: resume from the run's checkpoint (when it was
/// written for this config and store, with every row it counts on), then step / record / evaluate / snapshot /
/// checkpoint until the last step or a stop request, and check that the store holds every row it should.
struct TrainingLoop {
    let run: RunContext
    let input: TrainingInput
    let probes: ProbeEvaluator
    let trainer: Trainer
    /// When the stage began (loading included), for the `elapsed` metric.
    let started: Date

    var config: RunConfig { run.config }
    var store: RunStore { run.store }
    var name: String { run.name }
    var model: LlamaModel { input.loaded.model }

    /// True when the run reached its last step, false when a stop request ended it (every step taken is checkpointed).
    func execute() throws -> Bool {
        let report = run.report
        let checkpoint = run.executor.checkpointURL(runName: name)
        Checkpoint.removeLeftovers(in: checkpoint.deletingLastPathComponent())
        let storeID = try store.storeID()
        let inputs = try InputFingerprints.of(config, experiment: run.experiment, trainPath: run.executor.trainPath(config))
        var step = try resume(from: checkpoint, storeID: storeID, inputs: inputs)
        // Rows recorded after the checkpoint belong to steps that will be run again.
        _ = try store.truncate(runID: run.runID, afterStep: step == 0 ? -1 : step)
        if step == 0 { try store.setRunInputs(runID: run.runID, inputs) }
        report(.started(run: name, fromStep: step, totalSteps: config.train.steps))

        if step == 0 && config.eval.atStart { try evaluate(step: 0) }
        let clock = Date()
        /// Weights, AdamW state and the step, then the store's `last_step`.
        func saveCheckpoint(_ step: Int) throws {
            try Checkpoint.write(
                to: checkpoint,
                header: .init(step: step, adamT: trainer.optimizer.t, parameterCount: model.parameterCount, configSHA256: run.run.configSHA256, storeID: storeID),
                tensors: ([model.parameters] + trainer.stateTensors).map { UnsafeBufferPointer($0) })
            try store.setLastStep(runID: run.runID, step: step)
            report(.checkpointed(run: name, step: step))
        }
        var checkpointed = step
        let snapshots = run.executor.snapshotSteps(of: name)
        while step < config.train.steps {
            if run.stopRequested {
                // stopped (Ctrl-C, or SIGTERM from a scheduler about to preempt): keep every step taken
                if step > checkpointed { try saveCheckpoint(step) }
                return false
            }
            step += 1
            try trainAndRecord(step: step, since: clock)
            if config.isEvalStep(step) { try evaluate(step: step) }
            if snapshots.contains(step) {
                try Checkpoint.write(
                    to: run.executor.snapshotURL(runName: name, step: step),
                    header: .init(step: step, adamT: 0, parameterCount: model.parameterCount, configSHA256: run.run.configSHA256, storeID: storeID),
                    tensors: [UnsafeBufferPointer(model.parameters)])
            }
            if config.isCheckpointStep(step) {
                try saveCheckpoint(step)
                checkpointed = step
            }
            try store.heartbeat(runID: run.runID)
        }
        // A run is finished only with every row it should have recorded.
        if let missing = try missingRows(through: config.train.steps) {
            throw RunError.incomplete(run: name, detail: missing)
        }
        report(.finished(run: name, seconds: Date().timeIntervalSince(started)))
        return true
    }

    /// The step to go on from: the checkpoint's (its weights and AdamW state read into the model and trainer), or 0.
    func resume(from checkpoint: URL, storeID: String, inputs: [String: RunInput]) throws -> Int {
        guard let header = try Checkpoint.readHeader(checkpoint), header.configSHA256 == run.run.configSHA256 else { return 0 }
        if let why = try resumeRefusal(header, storeID: storeID) {
            run.report(.restarting(run: name, reason: why))
            return 0
        }
        if let change = InputFingerprints.firstChange(recorded: try store.runInputs(runID: run.runID), current: inputs) {
            throw RunError.inputChanged(run: name, input: change.input, path: change.path, checkpoint: checkpoint.path)
        }
        _ = try Checkpoint.read(checkpoint, into: [model.parameters] + trainer.stateTensors)
        trainer.optimizer.t = header.adamT
        return header.step
    }

    /// One optimizer step and its rows: the step's metrics (every metric the objective emits; one named like a
    /// metric of the step itself, e.g. "tokens", goes under "objective/") and an online step's samples.
    func trainAndRecord(step: Int, since clock: Date) throws {
        let t0 = Date()
        let result = trainer.step(step)
        let seconds = Date().timeIntervalSince(t0)
        guard result.loss.isFinite else { throw RunError.nonFinite(step: step, what: "loss") }
        guard result.gradNorm.isFinite else { throw RunError.nonFinite(step: step, what: "gradient norm") }
        var metrics: [(name: String, value: Double)] = [
            ("loss", result.loss), ("lr", result.lr), ("grad_norm", result.gradNorm),
            ("tokens", Double(result.tokens)), ("target_tokens", Double(result.targetTokens)),
            ("tokens_per_s", Double(result.tokens) / max(seconds, 1e-9)),
            ("elapsed", Date().timeIntervalSince(started)),
        ]
        let own = Set(metrics.map(\.name))
        for (key, value) in result.metrics.sorted(by: { $0.key < $1.key }) {
            metrics.append((own.contains(key) ? "objective/" + key : key, value))
        }
        try store.writeTrainMetrics(runID: run.runID, step: step, metrics: metrics)
        if !result.samples.isEmpty { try store.writeSamples(runID: run.runID, step: step, sampleRecords(result.samples)) }
        run.report(.step(run: name, step: step, totalSteps: config.train.steps, loss: result.loss,
                         tokensPerSecond: Double(result.tokens) / max(seconds, 1e-9),
                         elapsed: Date().timeIntervalSince(clock)))
    }

    /// The store rows of a step's samples.
    func sampleRecords(_ samples: [PolicySample]) -> [SampleRecord] {
        samples.map { s in
            let ex = input.examples[s.prompt]
            return SampleRecord(dataLine: ex.line, sample: s.sample, prompt: ex.promptText ?? ex.promptJSON.canonical,
                                text: input.loaded.tokenizer.decode(s.ended ? Array(s.tokens.dropLast()) : s.tokens),
                                reward: s.score, kl: s.kl, advantage: s.advantage, tokens: s.tokens.count, eos: s.ended)
        }
    }

    /// Why the checkpoint must not be resumed into this store (nil: resume). A checkpoint resumes only
    /// into the store it was written for, and only while the store holds every row up to its step:
    /// otherwise the run would end "finished" with its early evaluations missing.
    func resumeRefusal(_ header: Checkpoint.Header, storeID: String) throws -> String? {
        if header.storeID != storeID {
            return "its checkpoint at step \(header.step) was written for another run store; starting over from step 0"
        }
        if let missing = try missingRows(through: header.step) {
            return "the store lacks rows its checkpoint at step \(header.step) counts on (\(missing)); starting over from step 0"
        }
        return nil
    }

    /// The first gap in the run's recorded rows up to `step`: a step without its loss, or an evaluation
    /// step without all of its responses. Nil when nothing is missing.
    func missingRows(through step: Int) throws -> String? {
        let losses = try store.lossSteps(runID: run.runID)
        if step >= 1, let s = (1...step).first(where: { !losses.contains($0) }) {
            return "no training loss for step \(s)"
        }
        let counts = try store.evaluationRowCounts(runID: run.runID)
        for s in config.evalSteps where s <= step {
            let n = counts[s] ?? 0
            if n != probes.responsesPerEvaluation {
                return "evaluation at step \(s) holds \(n) of \(probes.responsesPerEvaluation) log-probabilities"
            }
        }
        return nil
    }

    func evaluate(step: Int) throws {
        let t0 = Date()
        let rows = try probes.score(step: step)
        try store.writeEvaluation(runID: run.runID, step: step, rows: rows, tokenTexts: probes.tokenTexts(rows))
        if !probes.rewardAccuracy.isEmpty { try store.writeTrainMetrics(runID: run.runID, step: step, metrics: probes.rewardAccuracy) }
        run.report(.evaluated(run: name, step: step, responses: rows.count, seconds: Date().timeIntervalSince(t0)))
    }
}
