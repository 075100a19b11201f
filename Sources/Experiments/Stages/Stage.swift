import Base
import Foundation
import Model
import RunStore
import Tokenizer
import Training

/// One kind of run's work, as the runner (`RunExecutor.runAll`) drives it: the runner plans the run, waits for the
/// runs it reads (`inputRuns`), claims it, calls `execute` and records how it ended. Where a stage resumes from is
/// the stage's own: a training stage's checkpoint (`TrainingLoop`), a label stage's pairs file (`Labeller`).
///
/// The stages: `OfflineStage` (a fixed data set: sft, the pair objectives, kto, reward models, coh), `SpinStage`
/// (one SPIN iteration: generated pairs), `OnlineStage` (ppo: samples scored by a reward source while it trains),
/// `LabellingStage` (no training: samples scored and written as pairs). The first three are `TrainingStage`s, which
/// share the loading and the loop and differ only in the data they train on and what the trainer samples with.
protocol Stage {
    /// What `plan` prints of the run after its name and identity.
    func summary(of config: RunConfig) -> String
    /// Checks the stage's own inputs before anything is written (`RunExecutor.validateInputs`, exit 2 on error):
    /// its data as it will encode them, its judge. Common checks (model, memory, probes) are the runner's.
    func validate(_ config: RunConfig, experiment: Experiment, tokenizer: any TextTokenizer) throws
    /// The runs this stage reads (their weights, pairs or rewards), which must finish first.
    func inputRuns(of config: RunConfig) -> [String]
    /// Does the run's work: true when it reached its end, false when it stopped on request (Ctrl-C, SIGTERM).
    func execute(_ run: RunContext) throws -> Bool
}

enum Stages {
    /// The stage a run's config describes: the one place that tells the kinds of run apart.
    static func stage(for config: RunConfig) -> any Stage {
        if case .checkpoints(let folder, let base) = config.model { return WatchStage(folder: folder, base: base) }
        if let label = config.label { return LabellingStage(label: label) }
        if let generation = config.objective.generation { return SpinStage(generation: generation) }
        if let online = config.objective.onlineSettings { return OnlineStage(settings: online) }
        return OfflineStage()
    }

    /// The plan line of a run that trains.
    static func trainingSummary(of c: RunConfig) -> String {
        let from = c.data.train.from.map { ", trains on the pairs of \($0)" } ?? ""
        // eval.attribution: its steps and the responses it follows (each costs a forward and backward of its own)
        let attribution = c.eval.attribution.map { a in
            ", attribution every \(a.every) steps on \(a.probes.map { "\($0) probes" } ?? "every probe")\(a.project.map { " (sketch of \($0))" } ?? "")"
        } ?? ""
        let kl = c.eval.kl ? ", KL to the reference" : ""
        return "\(c.train.steps) steps, batch \(c.train.batchSize), lr \(JSONValue.format(c.train.lr)), seed \(c.seed), evals at \(c.evalSteps.map(String.init).joined(separator: ","))\(from)\(attribution)\(kl)"
    }

    /// What every stage reads: the weights it starts from, the label run whose pairs it trains on, and a run whose
    /// weights are its reference model.
    static func commonInputs(of config: RunConfig) -> [String] {
        var runs = [config.initFrom?.run, config.data.train.from].compactMap { $0 }
        if case .run(let r)? = config.reference, !runs.contains(r.run) { runs.append(r.run) }
        return runs
    }
}

/// What a stage has of the run it executes: its plan, its row in the store, and the run-level services every
/// stage uses (a model loaded from the spec, another run's weights, the reference-value cache, progress).
extension RunConfig {
    /// What `plan` prints of the run after its name and identity (its stage's summary).
    public var planSummary: String { Stages.stage(for: self).summary(of: self) }
}

final class RunContext {
    let executor: RunExecutor
    let run: Experiment.PlannedRun
    let runID: Int64
    var name: String { run.name }
    var config: RunConfig { run.config }
    var store: RunStore { executor.store }
    var experiment: Experiment { executor.experiment }
    var report: (RunProgress) -> Void { executor.report }
    var stopRequested: Bool { executor.stopRequested }

    init(executor: RunExecutor, run: Experiment.PlannedRun, runID: Int64) {
        self.executor = executor
        self.run = run
        self.runID = runID
    }

    /// A model for sampling or scoring beside the trained one (a policy, a reward model, a judge): small buffers.
    func loadAuxiliary(_ source: RunConfig.ModelSource) throws -> LoadedModel {
        try ModelLoader.load(source, experiment: experiment, capacity: 64, maxSequenceLength: 64, threads: config.threadCount)
    }

    /// A reward-model run's final weights on the spec's model with a reward head.
    func loadRewardModel(run name: String) throws -> (model: LlamaModel, tokenizer: any TextTokenizer) {
        report(.loading(run: name, what: "reward model \(name)"))
        let base = try loadAuxiliary(config.model)
        let rm = base.model.withRewardHead(seed: 0)
        _ = try loadInitialWeights(.init(run: name, step: nil), into: rm)
        return (rm, base.tokenizer)
    }

    /// The reference model named by `objective.reference` (a model file or preset, or a run's weights on the model that
    /// run trained), sized like the policy, and its identity for the reference cache.
    func loadReference(_ reference: RunConfig.ReferenceModel) throws -> (model: LlamaModel, identity: String) {
        report(.loading(run: name, what: "reference model"))
        let source = try reference.modelSource(in: experiment)
        let loaded = try ModelLoader.load(source, experiment: experiment, capacity: config.batchTokens, maxSequenceLength: config.longestSequence,
                                          threads: config.threadCount)
        loaded.model.precision = config.train.precision
        if case .run(let r) = reference { return (loaded.model, try loadInitialWeights(r, into: loaded.model)) }
        return (loaded.model, "\(source)")
    }

    /// The reference model's values for some training data (the digest of what they depend on), computed once per
    /// model, products and data and cached under results/<experiment>/reference-cache/. bf16 values are cached apart
    /// from fp32 ones (a model key gains "|products:bf16"; fp32 keys are as before that key existed); `kind` names
    /// other values than the pairs' sums (KTO's "|kto"), last in the key.
    func cachedReference(modelIdentity: String, kind: String = "", data: SHA256, what: String, compute: () -> [Double]) throws -> [Double] {
        let cache = ReferenceLogprobCache(directory: executor.checkpointRoot.appendingPathComponent(experiment.name)
            .appendingPathComponent("reference-cache").path)
        report(.loading(run: run.name, what: what))
        let products = config.train.precision == .fp32 ? "" : "|products:\(config.train.precision.rawValue)"
        return try cache.values(model: modelIdentity + products + kind, data: SHA256.hexString(data.finalize()), compute: compute)
    }

    /// Loads the weights a run starts from: another run's final checkpoint or a snapshot at a step.
    /// Returns an identity string for the reference-logprob cache.
    func loadInitialWeights(_ initFrom: RunConfig.InitFrom, into model: LlamaModel) throws -> String {
        guard let parent = try store.run(name: initFrom.run), let planned = experiment.runs.first(where: { $0.name == initFrom.run }) else {
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
}
