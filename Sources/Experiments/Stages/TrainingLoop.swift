import Base
import Foundation
import Kernels
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
    /// Step, evaluation and checkpoint times of this process, for the progress line's ETA.
    let clock = ProgressClock()

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
        if step == 0 {
            try store.setRunInputs(runID: run.runID, inputs)
            try recordPairMeasures()
        }
        report(.started(run: name, fromStep: step, totalSteps: config.train.steps))

        if step == 0 && config.eval.atStart { try evaluate(step: 0) }
        /// Calls `body` with the weights a checkpoint or snapshot holds: the model's, with LoRA merged into a copy that
        /// lives only while it is written (`Checkpoint`).
        func withWeights(_ body: (UnsafeBufferPointer<Float>) throws -> Void) throws {
            guard model.lora != nil else { return try body(UnsafeBufferPointer(model.parameters)) }
            let merged = UnsafeMutableBufferPointer<Float>.allocate(capacity: model.parameterCount)
            defer { merged.deallocate() }
            model.mergedParameters(into: merged)
            try body(UnsafeBufferPointer(merged))
        }
        /// Weights, AdamW state and the step, then the store's `last_step`.
        func saveCheckpoint(_ step: Int) throws {
            let t0 = Date()
            defer { clock.checkpoint(seconds: Date().timeIntervalSince(t0)) }
            try withWeights { weights in
                try Checkpoint.write(
                    to: checkpoint,
                    header: .init(step: step, adamT: trainer.optimizer.t, parameterCount: model.parameterCount, configSHA256: run.run.configSHA256, storeID: storeID),
                    tensors: [weights] + trainer.stateTensors.map { UnsafeBufferPointer($0) })
            }
            try store.setLastStep(runID: run.runID, step: step)
            report(.checkpointed(run: name, step: step))
        }
        var checkpointed = step
        let snapshots = run.executor.snapshotSteps(of: name)
        // one attribution for the run's attributed steps (its buffers are made once)
        let attribution = config.eval.attribution.map {
            Attribution(model: model, sketch: $0.project.map { CountSketch(dimension: $0, seed: UInt64(config.seed)) })
        }
        while step < config.train.steps {
            if run.stopRequested {
                // stopped (Ctrl-C, or SIGTERM from a scheduler about to preempt): keep every step taken
                if step > checkpointed { try saveCheckpoint(step) }
                return false
            }
            step += 1
            if let attribution, config.isAttributionStep(step) {
                try attribute(step: step, attribution)
            } else {
                _ = try trainAndRecord(step: step)
            }
            if config.isEvalStep(step) { try evaluate(step: step) }
            if snapshots.contains(step) {
                try withWeights { weights in
                    try Checkpoint.write(
                        to: run.executor.snapshotURL(runName: name, step: step),
                        header: .init(step: step, adamT: 0, parameterCount: model.parameterCount, configSHA256: run.run.configSHA256, storeID: storeID),
                        tensors: [weights])
                }
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
        // a LoRA run keeps its base weights (the checkpoint's are merged) and reads its adapters from the state
        _ = try Checkpoint.read(checkpoint, into: (model.lora == nil ? [model.parameters] : []) + trainer.stateTensors,
                                skippingWeights: model.lora != nil)
        trainer.optimizer.t = header.adamT
        return header.step
    }

    /// One optimizer step and its rows: the step's metrics (every metric the objective emits; one named like a
    /// metric of the step itself, e.g. "tokens", goes under "objective/") and an online step's samples.
    @discardableResult
    func trainAndRecord(step: Int) throws -> Trainer.StepResult {
        let t0 = Date()
        let result = trainer.step(step)
        let seconds = Date().timeIntervalSince(t0)
        clock.step(seconds: seconds, tokens: result.tokens)
        guard result.loss.isFinite else { throw RunError.nonFinite(step: step, what: "loss") }
        guard result.gradNorm.isFinite else { throw RunError.nonFinite(step: step, what: "gradient norm") }
        var metrics: [(name: String, value: Double)] = [
            ("loss", result.loss), ("lr", result.lr), ("grad_norm", result.gradNorm),
            ("tokens", Double(result.tokens)), ("target_tokens", Double(result.targetTokens)),
            ("tokens_per_s", Double(result.tokens) / max(seconds, 1e-9)),
            ("elapsed", Date().timeIntervalSince(started)),
        ]
        if step == 1 {  // what trains: every weight, or with LoRA the adapters
            metrics += [("trainable_params", Double(model.trainableCount)), ("total_params", Double(model.parameterCount))]
        }
        let own = Set(metrics.map(\.name))
        for (key, value) in result.metrics.sorted(by: { $0.key < $1.key }) {
            metrics.append((own.contains(key) ? "objective/" + key : key, value))
        }
        try store.writeTrainMetrics(runID: run.runID, step: step, metrics: metrics)
        if !result.samples.isEmpty { try store.writeSamples(runID: run.runID, step: step, sampleRecords(result.samples)) }
        run.report(.step(run: name, step: step, totalSteps: config.train.steps, loss: result.loss,
                         tokensPerSecond: Double(result.tokens) / max(seconds, 1e-9),
                         remaining: clock.remaining(after: step, config: config, evaluationTokens: probes.tokensPerEvaluation)))
        return result
    }

    /// A step with `eval.attribution`: theta_t and m_{t-1} kept, the step taken and recorded as any other, then each
    /// followed response's predicted and observed change and its decomposition over the step's examples (`Attribution`).
    func attribute(step: Int, _ attribution: Attribution) throws {
        guard let settings = config.eval.attribution else { return }
        let responses = probes.attributionResponses(probes: settings.probes)
        attribution.begin(optimizer: trainer.optimizer)
        trainer.recordsExampleTerms = true
        defer { trainer.recordsExampleTerms = false }
        let result = try trainAndRecord(step: step)
        let t0 = Date()
        run.report(.loading(run: name, what: "attribution at step \(step): \(responses.count) responses x \(trainer.lastExampleTerms.count) examples"))
        let scale = clipScale(norm: Float(result.gradNorm), maxNorm: config.train.gradClip > 0 ? Float(config.train.gradClip) : .infinity)
        let terms = trainer.lastExampleTerms
        let out = attribution.attribute(optimizer: trainer.optimizer, lr: result.lr, clipScale: scale, terms: terms,
                                        responses: responses.map { ($0.context, $0.continuation) })
        let records = zip(responses, out).map { response, a in
            // an example drawn twice in one step (across an epoch's end) is one row: its contributions added
            var byExample: [Int: AttributionRecord.Influence] = [:]
            for (i, term) in terms.enumerated() {
                byExample[term.example, default: .init(example: term.example, dataLine: input.examples[term.example].line,
                                                       contribution: 0, cosine: a.cosines[i])].contribution += a.contributions[i]
            }
            let influences = [AttributionRecord.Influence(example: -1, dataLine: nil, contribution: a.carried, cosine: nil)]
                + byExample.keys.sorted().map { byExample[$0]! }
            return AttributionRecord(responseID: response.responseID, logprob: a.logprob, predicted: a.predicted, observed: a.observed,
                                     influences: influences)
        }
        try store.writeAttribution(runID: run.runID, step: step, records)
        try store.writeTrainMetrics(runID: run.runID, step: step, metrics: [("time/attribution", Date().timeIntervalSince(t0))])
        clock.step(seconds: Date().timeIntervalSince(t0), tokens: 0, counts: false)
    }

    /// A pair objective's training pairs measured once, at the starting weights (`pair_measures`, step 0): CHES and its
    /// length-normalised form (`chesValues`) from the final hidden states of the positions that predict each response.
    func recordPairMeasures() throws {
        guard case .preference(let pairs, _) = trainer.data, !pairs.isEmpty else { return }
        run.report(.loading(run: name, what: "CHES of the \(pairs.count) training pairs at the starting weights"))
        let dim = model.config.dim
        var rows: [(example: Int, dataLine: Int, name: String, value: Double)] = []
        // in slices, so that the hidden states of a large data set are never all in memory
        for slice in stride(from: 0, to: pairs.count, by: 256) {
            let part = pairs[slice..<min(pairs.count, slice + 256)]
            let (states, firstRows) = probes.batch.finalHiddenStates(part.map { (prompt: $0.prompt, responses: [$0.chosen, $0.rejected]) })
            states.withUnsafeBufferPointer { h in
                for (k, pair) in part.enumerated() {
                    let v = chesValues(chosen: hiddenSum(h, first: firstRows[k][0], count: pair.chosen.count, dim: dim), chosenLength: pair.chosen.count,
                                       rejected: hiddenSum(h, first: firstRows[k][1], count: pair.rejected.count, dim: dim), rejectedLength: pair.rejected.count)
                    let example = slice + k, line = input.examples[example].line
                    rows += [(example, line, Measure.ches.rawValue, v.ches), (example, line, Measure.chesNorm.rawValue, v.normalised)]
                }
            }
        }
        try store.writePairMeasures(runID: run.runID, step: 0, rows)
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
        let total = probes.responsesPerEvaluation
        run.report(.evaluating(run: name, step: step, done: 0, total: total))
        probes.progress = { [run, name] done in run.report(.evaluating(run: name, step: step, done: min(done, total), total: total)) }
        defer { probes.progress = nil }
        let rows = try probes.score(step: step)
        clock.evaluation(seconds: Date().timeIntervalSince(t0))
        try store.writeEvaluation(runID: run.runID, step: step, rows: rows, tokenTexts: probes.tokenTexts(rows))
        if !probes.rewardAccuracy.isEmpty { try store.writeTrainMetrics(runID: run.runID, step: step, metrics: probes.rewardAccuracy) }
        run.report(.evaluated(run: name, step: step, responses: rows.count, seconds: Date().timeIntervalSince(t0)))
    }
}
