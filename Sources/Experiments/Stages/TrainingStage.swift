import Base
import Foundation
import Probes
import Tokenizer
import Training

/// What a training stage has loaded before its own work: the model (with the weights it starts from), the
/// template and the training examples as read.
struct TrainingInput {
    let loaded: LoadedModel
    let template: ChatTemplate
    let trainPath: String
    let examples: [PreferenceExample]
    /// The starting weights' identity (the spec's model, or a run at a step), the reference cache's key.
    let modelIdentity: String
}

/// A stage that trains the model. Loading (model, reward head, starting weights, data, probes) and the loop
/// (`TrainingLoop`: step, evaluate, record, checkpoint, resume) are the same for every training stage; a stage
/// says what it trains on (`data`) and what else the trainer needs (`prepare`, e.g. ppo's rollout).
protocol TrainingStage: Stage {
    /// The encoded training data (and the reference values its objective reads).
    func data(_ input: TrainingInput, _ run: RunContext) throws -> TrainingData
    /// Anything the trainer needs beyond its data, set before a checkpoint is resumed (default: nothing).
    func prepare(_ trainer: Trainer, _ input: TrainingInput, probes: ProbeEvaluator, _ run: RunContext) throws
}

extension TrainingStage {
    func prepare(_ trainer: Trainer, _ input: TrainingInput, probes: ProbeEvaluator, _ run: RunContext) throws {}

    func inputRuns(of config: RunConfig) -> [String] { Stages.commonInputs(of: config) }

    func summary(of config: RunConfig) -> String { Stages.trainingSummary(of: config) }

    /// The training data encoded as the run will encode it, and a judge the objective scores with
    /// (pairs from a label stage are checked when the run that trains on them starts).
    func validate(_ config: RunConfig, experiment: Experiment, tokenizer: any TextTokenizer) throws {
        if let reference = config.reference { try Self.checkReference(reference, config, experiment: experiment, tokenizer: tokenizer) }
        guard config.data.train.from == nil else { return }
        if let (judge, question) = config.objective.rewardJudge {
            try RunExecutor.validateJudge(judge, question: question, experiment: experiment, key: "objective.reward.judge")
        }
        let (trainPath, examples) = try PairEncoder.trainingExamples(of: config, path: experiment.resolve(config.data.train.path))
        _ = try PairEncoder.training(examples, objective: config.objective, tokenizer: tokenizer, template: config.template,
                                     maxLength: config.train.maxLength, file: trainPath)
    }

    /// A reference model must read the policy's tokens as the policy does: the same vocabulary size and the same ids
    /// for a few texts (the chat markers among them), or the log-ratios compare different sequences.
    static func checkReference(_ reference: RunConfig.ReferenceModel, _ config: RunConfig, experiment: Experiment,
                               tokenizer: any TextTokenizer) throws {
        let source = try reference.modelSource(in: experiment)
        guard source != config.model else { return }
        let other = try ModelLoader.validate(source, experiment: experiment).tokenizer
        if !ModelLoader.tokenizersAgree(other, tokenizer) {
            throw SpecError.invalid(file: experiment.specPath, path: "objective.reference",
                                    expected: "a model with the policy's tokenizer (\(tokenizer.vocabSize) tokens, the same ids for the same text)",
                                    found: "\(source), whose tokenizer has \(other.vocabSize) tokens" + (other.vocabSize == tokenizer.vocabSize ? " and splits text differently" : ""))
        }
    }

    func execute(_ run: RunContext) throws -> Bool {
        let started = Date()
        let config = run.config
        run.report(.loading(run: run.name, what: "model"))
        var loaded = try ModelLoader.load(config.model, experiment: run.experiment, capacity: config.batchTokens,
                                          maxSequenceLength: config.longestSequence,
                                          threads: config.threadCount, checkpointActivations: config.train.checkpointActivations)
        if let headSeed = config.objective.rewardHeadSeed, !loaded.model.config.rewardHead {
            loaded.model = loaded.model.withRewardHead(seed: UInt64(headSeed))
        }
        loaded.model.precision = config.train.precision  // training's products (the reference pass's too)
        var modelIdentity = "\(config.model)"
        if let initFrom = config.initFrom {
            run.report(.loading(run: run.name, what: "weights of \(initFrom.run)"))
            modelIdentity = try run.loadInitialWeights(initFrom, into: loaded.model)
        }
        if let lora = config.train.lora {
            // after the starting weights are in: the adapters train on them (B = 0, so the model scores as they do)
            guard let settings = lora.settings(block: loaded.model.config.block, runSeed: config.seed).settings else {
                preconditionFailure("train.lora.targets are checked when the run is planned")
            }
            loaded.model.attachLoRA(settings)
        }
        run.report(.loading(run: run.name, what: "data"))
        let (trainPath, examples) = try PairEncoder.trainingExamples(of: config, path: run.executor.trainPath(config))
        let input = TrainingInput(loaded: loaded, template: config.template, trainPath: trainPath, examples: examples,
                                  modelIdentity: modelIdentity)
        let data = try data(input, run)
        let probes = try ProbeEvaluator(
            config: config, experiment: run.experiment, store: run.store, loaded: loaded,
            template: config.template, trainPrompts: examples.map(\.prompt))
        // what evaluations compare with, held before any step or resume: the starting weights' distributions (where the
        // mass went; KL when the reference is the starting weights) and a separate reference model's
        if config.eval.tokens || config.eval.kl {
            run.report(.loading(run: run.name, what: "the starting weights' distributions at every probe response position"))
            probes.holdStart()
        }
        if config.eval.kl, let reference = config.reference {
            probes.holdReference(try run.loadReference(reference).model)
        }
        let trainer = Trainer(model: loaded.model, train: config.train, objective: config.objective, seed: config.seed, data: data)
        try prepare(trainer, input, probes: probes, run)
        return try TrainingLoop(run: run, input: input, probes: probes, trainer: trainer, started: started).execute()
    }
}
