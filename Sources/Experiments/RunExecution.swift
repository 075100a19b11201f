import Foundation
import GGUF
import Model
import Probes
import RunStore
import Tokenizer
import Training

/// The work of one run: load, resume, then step / evaluate / record / checkpoint until done.
final class RunExecution {
    let executor: RunExecutor
    let run: Experiment.PlannedRun
    let runID: Int64
    var config: RunConfig { run.config }
    var store: RunStore { executor.store }

    init(executor: RunExecutor, run: Experiment.PlannedRun, runID: Int64) {
        self.executor = executor
        self.run = run
        self.runID = runID
    }

    /// Returns true when the run reached its last step, false when `shouldContinue` stopped it.
    func execute(shouldContinue: () -> Bool) throws -> Bool {
        let started = Date()
        let report = executor.progress
        report(.loading(run: run.name, what: "model"))
        let loaded = try ModelLoader.load(config.model, experiment: executor.experiment, capacity: config.train.batchSize * config.train.maxLength,
                                          maxSequenceLength: config.train.maxLength, threads: config.threads)
        let template = ChatTemplate(rawValue: config.template)!
        report(.loading(run: run.name, what: "data"))
        let trainPath = executor.experiment.resolve(config.trainPath)
        var examples = try loadExamples(path: trainPath)
        if config.trainLimit > 0 { examples = Array(examples.prefix(config.trainLimit)) }
        let encoded = try examples.enumerated().map { i, ex in
            try PairEncoder.encode(prompt: ex.prompt, response: config.objective.target == "chosen" ? ex.chosen : (ex.rejected ?? ""),
                                   tokenizer: loaded.tokenizer, template: template, maxLength: config.train.maxLength,
                                   file: trainPath, line: i + 1)
        }
        let probes = try ProbeEvaluator(
            config: config, experiment: executor.experiment, store: store, loaded: loaded,
            template: template, trainPrompts: examples.map(\.prompt))

        let trainer = Trainer(model: loaded.model, config: config, examples: encoded)
        let checkpoint = executor.checkpointURL(runName: run.name)
        var step = 0
        if let header = try Checkpoint.readHeader(checkpoint), header.configSHA256 == run.configSHA256 {
            _ = try Checkpoint.read(checkpoint, into: [loaded.model.parameters, trainer.optimizer.m, trainer.optimizer.v])
            trainer.optimizer.t = header.adamT
            step = header.step
        }
        // Rows recorded after the checkpoint belong to steps that will be run again.
        _ = try store.truncate(runID: runID, afterStep: step == 0 ? -1 : step)
        report(.started(run: run.name, fromStep: step, totalSteps: config.train.steps))

        if step == 0 && config.eval.atStart {
            try evaluate(probes, step: 0)
        }
        let clock = Date()
        var stepsDone = 0
        while step < config.train.steps {
            guard shouldContinue() else { return false }
            let t0 = Date()
            step += 1
            let result = trainer.step(step)
            let seconds = Date().timeIntervalSince(t0)
            guard result.loss.isFinite else { throw RunError.nonFinite(step: step, what: "loss") }
            guard result.gradNorm.isFinite else { throw RunError.nonFinite(step: step, what: "gradient norm") }
            stepsDone += 1
            try store.writeTrainMetrics(runID: runID, step: step, metrics: [
                ("loss", result.loss), ("lr", result.lr), ("grad_norm", result.gradNorm),
                ("tokens", Double(result.tokens)), ("target_tokens", Double(result.targetTokens)),
                ("tokens_per_s", Double(result.tokens) / max(seconds, 1e-9)),
                ("elapsed", Date().timeIntervalSince(started)),
            ])
            report(.step(run: run.name, step: step, totalSteps: config.train.steps, loss: result.loss,
                         tokensPerSecond: Double(result.tokens) / max(seconds, 1e-9),
                         elapsed: Date().timeIntervalSince(clock)))
            if config.isEvalStep(step) { try evaluate(probes, step: step) }
            if config.isCheckpointStep(step) {
                try Checkpoint.write(
                    to: checkpoint,
                    header: .init(step: step, adamT: trainer.optimizer.t, parameterCount: loaded.model.parameterCount, configSHA256: run.configSHA256),
                    tensors: [UnsafeBufferPointer(loaded.model.parameters), UnsafeBufferPointer(trainer.optimizer.m), UnsafeBufferPointer(trainer.optimizer.v)])
                try store.setLastStep(runID: runID, step: step)
                report(.checkpointed(run: run.name, step: step))
            }
            try store.heartbeat(runID: runID)
        }
        report(.finished(run: run.name, seconds: Date().timeIntervalSince(started)))
        return true
    }

    func evaluate(_ probes: ProbeEvaluator, step: Int) throws {
        let t0 = Date()
        let rows = try probes.score(step: step)
        try store.writeEvaluation(runID: runID, step: step, rows: rows)
        executor.progress(.evaluated(run: run.name, step: step, responses: rows.count, seconds: Date().timeIntervalSince(t0)))
    }
}
