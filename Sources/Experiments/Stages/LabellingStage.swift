import Base
import Foundation
import Model
import Probes
import Tokenizer
import Training

/// A label stage's run (`label: {...}`): samples responses to the training prompts from the policy (the
    /// spec's model, or a run's final weights), scores them with a reward-model run or a judge, and writes the
    /// pairs to `labels.jsonl` in the run's folder (`Labeller`: resumable, so an interrupted run continues
    /// where it stopped without sampling again). Recorded at step 0 in `train_metrics`: `label/prompts`,
    /// `label/pairs`, `label/all_equal`, and for a judge its agreement with the probe set's chosen/rejected
/// (`label/judge_agreement`, over `label/judge_pairs`).
struct LabellingStage: Stage {
    let label: RunConfig.LabelStage

    func summary(of config: RunConfig) -> String {
        let scorer = label.scorerRun.map { "reward model \($0)" } ?? "judge \(label.judge ?? "")"
        return "label: \(label.samples) samples per prompt of \(label.policy ?? "the spec's model"), scored by \(scorer)"
    }

    /// Its prompts must render, its judge (if any) exist, its question hold the placeholders.
    func validate(_ config: RunConfig, experiment: Experiment, tokenizer: any TextTokenizer) throws {
        let (trainPath, examples) = try PairEncoder.trainingExamples(of: config, path: experiment.resolve(config.data.train.path))
        for ex in examples { _ = try PairEncoder.promptText(ex.promptSource, template: config.template, file: trainPath, line: ex.line) }
        if let judge = label.judge { try RunExecutor.validateJudge(judge, question: label.judgeTemplate, experiment: experiment, key: "label.scorer.judge") }
    }

    func inputRuns(of config: RunConfig) -> [String] {
        Stages.commonInputs(of: config) + [label.policy, label.scorerRun].compactMap { $0 }
    }

    func execute(_ run: RunContext) throws -> Bool {
        let started = Date()
        let (report, experiment, config, store, runID) = (run.report, run.experiment, run.config, run.store, run.runID)
        let load = run.loadAuxiliary
        report(.loading(run: run.name, what: "policy" + (label.policy.map { " (weights of \($0))" } ?? "")))
        let policy = try load(config.model)
        if let p = label.policy { _ = try run.loadInitialWeights(.init(run: p, step: nil), into: policy.model) }
        let scorer: Labeller.Scorer
        var metrics: [(name: String, value: Double)] = []
        if let r = label.scorerRun {
            let rm = try run.loadRewardModel(run: r)
            scorer = .rewardModel(model: rm.model, tokenizer: rm.tokenizer, name: "run:\(r)")
        } else {
            let path = label.judge!
            report(.loading(run: run.name, what: "judge \(path)"))
            let j = try load(ModelLoader.source(path: path, experiment: experiment))
            let question = try label.judgeTemplate.map { try TextFile.readText(experiment.resolve($0)) } ?? Judge.defaultTemplate
            let judge = try Judge(model: j.model, tokenizer: j.tokenizer, template: question, chat: config.template)
            if let agreement = judge.agreement(try loadExamples(path: experiment.resolve(config.data.probes.path))) {
                metrics += [("label/judge_agreement", agreement.agreement), ("label/judge_pairs", Double(agreement.pairs))]
            }
            scorer = .judge(judge, name: "judge:\(path)")
        }
        report(.loading(run: run.name, what: "prompts"))
        let (_, examples) = try PairEncoder.trainingExamples(of: config, path: experiment.resolve(config.data.train.path))
        let out = run.executor.labelsURL(runName: run.name)
        try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
        let settings = Labeller.Settings(samples: label.samples, temperature: Float(label.temperature), topP: Float(label.topP),
                                         maxTokens: label.maxTokens, seed: UInt64(label.seed), template: config.template)
        let labeller = Labeller(policy: policy.model, tokenizer: policy.tokenizer,
                                policyName: label.policy.map { "run:\($0)" } ?? "\(config.model)", scorer: scorer, settings: settings)
        let inputs = try labeller.inputs(data: experiment.resolve(config.data.train.path), prompts: examples.count)
        let summary = try labeller.label(examples, out: out.path, inputs: inputs,
                                         wayOn: "to label again from the start, delete \(out.path) and \((Labeller.inputsPath(out.path) as NSString).lastPathComponent)",
                                         name: run.name) { event in
            report(event)
            return run.stopRequested ? .stop : .more
        }
        if summary.alreadyDone + summary.written + summary.allEqual < examples.count { return false }
        let state = try Labeller.state(out.path)
        let (pairs, skipped) = (state.written.count, state.skipped.count)
        metrics += [("label/prompts", Double(examples.count)), ("label/pairs", Double(pairs)), ("label/all_equal", Double(skipped))]
        _ = try store.truncate(runID: runID, afterStep: -1)
        try store.writeTrainMetrics(runID: runID, step: 0, metrics: metrics)
        guard pairs > 0 else {
            throw DataError(file: out.path, line: nil, reason: "no pairs: every prompt's samples scored the same (\(skipped) prompts)")
        }
        report(.finished(run: run.name, seconds: Date().timeIntervalSince(started)))
        return true
    }
}
