import Base
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

    /// Returns true when the run reached its last step, false when the progress callback stopped it.
    func execute() throws -> Bool {
        if let label = config.label { return try executeLabel(label) }
        let started = Date()
        let report = executor.report
        report(.loading(run: run.name, what: "model"))
        var loaded = try ModelLoader.load(config.model, experiment: executor.experiment, capacity: config.batchTokens,
                                          maxSequenceLength: config.longestSequence,
                                          threads: config.threads, checkpointActivations: config.train.checkpointActivations)
        if let headSeed = config.objective.rewardHeadSeed, !loaded.model.config.rewardHead {
            loaded.model = loaded.model.withRewardHead(seed: UInt64(headSeed))
        }
        loaded.model.precision = config.train.precision  // training's products (the reference pass's too)
        let template = config.template
        var modelIdentity = "\(config.model)"
        if let initFrom = config.initFrom {
            report(.loading(run: run.name, what: "weights of \(initFrom.run)"))
            modelIdentity = try loadInitialWeights(initFrom, into: loaded.model)
        }
        report(.loading(run: run.name, what: "data"))
        let (trainPath, examples) = try PairEncoder.trainingExamples(of: config, path: executor.trainPath(config))
        let data = try trainingData(examples, loaded: loaded, template: template, path: trainPath, modelIdentity: modelIdentity)
        let probes = try ProbeEvaluator(
            config: config, experiment: executor.experiment, store: store, loaded: loaded,
            template: template, trainPrompts: examples.map(\.prompt))

        let trainer = Trainer(model: loaded.model, train: config.train, objective: config.objective, seed: config.seed, data: data)
        if let settings = config.objective.onlineSettings {
            trainer.rollout = try policyRollout(settings, examples: examples, loaded: loaded, template: template, probes: probes)
        }
        let checkpoint = executor.checkpointURL(runName: run.name)
        Checkpoint.removeLeftovers(in: checkpoint.deletingLastPathComponent())
        let storeID = try store.storeID()
        let inputs = try InputFingerprints.of(config, experiment: executor.experiment, trainPath: executor.trainPath(config))
        var step = 0
        if let header = try Checkpoint.readHeader(checkpoint), header.configSHA256 == run.configSHA256 {
            if let why = try resumeRefusal(header, storeID: storeID, probes: probes) {
                report(.restarting(run: run.name, reason: why))
            } else {
                if let change = InputFingerprints.firstChange(recorded: try store.runInputs(runID: runID), current: inputs) {
                    throw RunError.inputChanged(run: run.name, input: change.input, path: change.path, checkpoint: checkpoint.path)
                }
                _ = try Checkpoint.read(checkpoint, into: [loaded.model.parameters, trainer.optimizer.m, trainer.optimizer.v])
                trainer.optimizer.t = header.adamT
                step = header.step
            }
        }
        // Rows recorded after the checkpoint belong to steps that will be run again.
        _ = try store.truncate(runID: runID, afterStep: step == 0 ? -1 : step)
        if step == 0 { try store.setRunInputs(runID: runID, inputs) }
        report(.started(run: run.name, fromStep: step, totalSteps: config.train.steps))

        if step == 0 && config.eval.atStart {
            try evaluate(probes, step: 0)
        }
        let clock = Date()
        var stepsDone = 0
        /// Weights, AdamW state and the step, then the store's `last_step`.
        func saveCheckpoint(_ step: Int) throws {
            try Checkpoint.write(
                to: checkpoint,
                header: .init(step: step, adamT: trainer.optimizer.t, parameterCount: loaded.model.parameterCount, configSHA256: run.configSHA256, storeID: storeID),
                tensors: [UnsafeBufferPointer(loaded.model.parameters), UnsafeBufferPointer(trainer.optimizer.m), UnsafeBufferPointer(trainer.optimizer.v)])
            try store.setLastStep(runID: runID, step: step)
            report(.checkpointed(run: run.name, step: step))
        }
        var checkpointed = step
        while step < config.train.steps {
            if executor.stopRequested {
                // stopped (Ctrl-C, or SIGTERM from a scheduler about to preempt): keep every step taken
                if step > checkpointed { try saveCheckpoint(step) }
                return false
            }
            let t0 = Date()
            step += 1
            let result = trainer.step(step)
            let seconds = Date().timeIntervalSince(t0)
            guard result.loss.isFinite else { throw RunError.nonFinite(step: step, what: "loss") }
            guard result.gradNorm.isFinite else { throw RunError.nonFinite(step: step, what: "gradient norm") }
            stepsDone += 1
            var metrics: [(name: String, value: Double)] = [
                ("loss", result.loss), ("lr", result.lr), ("grad_norm", result.gradNorm),
                ("tokens", Double(result.tokens)), ("target_tokens", Double(result.targetTokens)),
                ("tokens_per_s", Double(result.tokens) / max(seconds, 1e-9)),
                ("elapsed", Date().timeIntervalSince(started)),
            ]
            // every metric the objective emits is recorded; one named like a metric of the step itself ("tokens")
            // goes under "objective/"
            let own = Set(metrics.map(\.name))
            for key in result.metrics.keys.sorted() {
                metrics.append((own.contains(key) ? "objective/" + key : key, result.metrics[key]!))
            }
            try store.writeTrainMetrics(runID: runID, step: step, metrics: metrics)
            if !result.samples.isEmpty { try store.writeSamples(runID: runID, step: step, sampleRecords(result.samples, examples, loaded.tokenizer)) }
            report(.step(run: run.name, step: step, totalSteps: config.train.steps, loss: result.loss,
                         tokensPerSecond: Double(result.tokens) / max(seconds, 1e-9),
                         elapsed: Date().timeIntervalSince(clock)))
            if config.isEvalStep(step) { try evaluate(probes, step: step) }
            if executor.snapshotSteps(of: run.name).contains(step) {
                try Checkpoint.write(
                    to: executor.snapshotURL(runName: run.name, step: step),
                    header: .init(step: step, adamT: 0, parameterCount: loaded.model.parameterCount, configSHA256: run.configSHA256, storeID: storeID),
                    tensors: [UnsafeBufferPointer(loaded.model.parameters)])
            }
            if config.isCheckpointStep(step) {
                try saveCheckpoint(step)
                checkpointed = step
            }
            try store.heartbeat(runID: runID)
        }
        // A run is finished only with every row it should have recorded.
        if let missing = try missingRows(through: config.train.steps, probes: probes) {
            throw RunError.incomplete(run: run.name, detail: missing)
        }
        report(.finished(run: run.name, seconds: Date().timeIntervalSince(started)))
        return true
    }

    /// Why the checkpoint must not be resumed into this store (nil: resume). A checkpoint resumes only
    /// into the store it was written for, and only while the store holds every row up to its step:
    /// otherwise the run would end "finished" with its early evaluations missing.
    func resumeRefusal(_ header: Checkpoint.Header, storeID: String, probes: ProbeEvaluator) throws -> String? {
        if header.storeID != storeID {
            return "its checkpoint at step \(header.step) was written for another run store; starting over from step 0"
        }
        if let missing = try missingRows(through: header.step, probes: probes) {
            return "the store lacks rows its checkpoint at step \(header.step) counts on (\(missing)); starting over from step 0"
        }
        return nil
    }

    /// The first gap in the run's recorded rows up to `step`: a step without its loss, or an evaluation
    /// step without all of its responses. Nil when nothing is missing.
    func missingRows(through step: Int, probes: ProbeEvaluator) throws -> String? {
        let losses = try store.lossSteps(runID: runID)
        if step >= 1, let s = (1...step).first(where: { !losses.contains($0) }) {
            return "no training loss for step \(s)"
        }
        let counts = try store.evaluationRowCounts(runID: runID)
        for s in config.evalSteps where s <= step {
            let n = counts[s] ?? 0
            if n != probes.responsesPerEvaluation {
                return "evaluation at step \(s) holds \(n) of \(probes.responsesPerEvaluation) log-probabilities"
            }
        }
        return nil
    }

    /// Tokenizes the training examples for the run's objective. Preference objectives also get the
    /// reference model's log-probabilities (the starting weights), computed once per model and data
    /// and cached beside the checkpoints.
    func trainingData(_ examples: [PreferenceExample], loaded: LoadedModel, template: ChatTemplate, path: String,
                      modelIdentity: String) throws -> TrainingData {
        var encoded = try PairEncoder.training(examples, objective: config.objective, tokenizer: loaded.tokenizer, template: template,
                                               maxLength: config.train.maxLength, file: path)
        if config.objective.generation != nil, case .sequences(let sequences) = encoded {
            encoded = .pairs(try spinPairs(examples, sequences, loaded: loaded, template: template))
        }
        switch encoded {
        case .sequences(let sequences):
            return .sequences(sequences)
        case .prompts(let prompts):
            return .prompts(prompts)
        case .hindsight(let sequences):
            return .hindsight(sequences)
        case .rewardPairs(let pairs, let margins):
            return .rewardPairs(pairs, margins: margins)
        case .unpaired(let pairs, let desirable, let split):
            if split > 0 {
                executor.report(.loading(run: run.name, what: "data: \(split) chosen/rejected pairs split into a desirable and an undesirable example each"))
            }
            if let warning = config.objective.dataWarning(desirable: desirable.filter { $0 }.count, undesirable: desirable.filter { !$0 }.count) {
                executor.report(.warning(run: run.name, message: warning))
            }
            // the reference of every micro-batch of the run (its mismatched pairs depend on the batch), cached
            var digest = SHA256()
            for (p, d) in zip(pairs, desirable) { digest.update("\(p.prompt)|\(p.response)|\(d);") }
            digest.update("seed=\(config.seed);steps=\(config.train.steps);batch=\(config.train.batchSize);accum=\(config.train.gradAccum)")
            let reference = try cachedReference(modelIdentity: modelIdentity, kind: "|kto", data: digest,
                                                what: "reference log-probabilities (KTO: every batch's completions and mismatched pairs)") {
                Trainer.ktoReferenceLogprobs(model: loaded.model, pairs: pairs, train: config.train, seed: config.seed)
            }
            return .unpaired(pairs, desirable: desirable, reference: reference)
        case .pairs(let pairs):
            var digest = SHA256()
            for p in pairs { digest.update("\(p.prompt)|\(p.chosen)|\(p.rejected);") }
            // an objective that reads no reference model gets zeros (its loss ignores them), computed and cached nowhere
            guard config.objective.needsReference else { return .preference(pairs, reference: [Double](repeating: 0, count: 2 * pairs.count)) }
            let reference = try cachedReference(modelIdentity: modelIdentity, data: digest, what: "reference log-probabilities") {
                referenceLogprobs(model: loaded.model, pairs: pairs, batchSize: config.train.batchSize)
            }
            return .preference(pairs, reference: reference)
        }
    }

    /// The reference model's values for some training data (the digest of what they depend on), computed once per
    /// model, products and data and cached under results/<experiment>/reference-cache/. bf16 values are cached apart
    /// from fp32 ones (a model key gains "|products:bf16"; fp32 keys are as before that key existed); `kind` names
    /// other values than the pairs' sums (KTO's "|kto"), last in the key.
    func cachedReference(modelIdentity: String, kind: String = "", data: SHA256, what: String, compute: () -> [Double]) throws -> [Double] {
        let cache = ReferenceLogprobCache(directory: executor.checkpointRoot.appendingPathComponent(executor.experiment.name)
            .appendingPathComponent("reference-cache").path)
        executor.report(.loading(run: run.name, what: what))
        let products = config.train.precision == .fp32 ? "" : "|products:\(config.train.precision.rawValue)"
        return try cache.values(model: modelIdentity + products + kind, data: SHA256.hexString(data.finalize()), compute: compute)
    }

    /// Loads the weights a run starts from: another run's final checkpoint or a snapshot at a step.
    /// Returns an identity string for the reference-logprob cache.
    func loadInitialWeights(_ initFrom: RunConfig.InitFrom, into model: LlamaModel) throws -> String {
        guard let parent = try store.run(name: initFrom.run), let planned = executor.experiment.runs.first(where: { $0.name == initFrom.run }) else {
            throw RunError.unknownRun(initFrom.run)
        }
        let url: URL
        if let step = initFrom.step {
            url = executor.snapshotURL(runName: initFrom.run, step: step)
        } else {
            guard parent.status == .finished else {
                throw RunError.io(path: executor.checkpointURL(runName: initFrom.run).path, reason: "run \(initFrom.run) must finish before \(run.name) can start from it (status: \(parent.status.rawValue))")
            }
            url = executor.checkpointURL(runName: initFrom.run)
        }
        // A reward model may start from a language model's weights: they fill all but its head.
        var target = model.parameters
        if let peek = try Checkpoint.readHeader(url), peek.parameterCount != model.parameterCount,
           peek.parameterCount == model.languageModelParameterCount {
            target = UnsafeMutableBufferPointer(rebasing: model.parameters[0..<model.languageModelParameterCount])
        }
        let header = try Checkpoint.read(url, into: [target])
        guard header.configSHA256 == planned.configSHA256 else {
            throw RunError.io(path: url.path, reason: "checkpoint belongs to another config of run \(initFrom.run)")
        }
        // written for this store, or (a run merged from a shard) for the store the run was computed in
        let accepted = [try store.storeID(), try store.runOrigin(runID: parent.id)].compactMap { $0 }
        guard accepted.contains(header.storeID) else {
            throw RunError.io(path: url.path, reason: "the weights of run \(initFrom.run) were written for another run store (run \(initFrom.run) again with this store)")
        }
        return "run:\(planned.configSHA256):step:\(header.step)"
    }

    func evaluate(_ probes: ProbeEvaluator, step: Int) throws {
        let t0 = Date()
        let rows = try probes.score(step: step)
        try store.writeEvaluation(runID: runID, step: step, rows: rows)
        if !probes.rewardAccuracy.isEmpty { try store.writeTrainMetrics(runID: runID, step: step, metrics: probes.rewardAccuracy) }
        executor.report(.evaluated(run: run.name, step: step, responses: rows.count, seconds: Date().timeIntervalSince(t0)))
    }
}
