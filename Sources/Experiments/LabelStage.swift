import Base
import Foundation
import Model
import Probes
import Training

extension RunExecution {
    /// A label stage's run (`label: {...}`): samples responses to the training prompts from the policy (the
    /// spec's model, or a run's final weights), scores them with a reward-model run or a judge, and writes the
    /// pairs to `labels.jsonl` in the run's folder (`Labeller`: resumable, so an interrupted run continues
    /// where it stopped without sampling again). Recorded at step 0 in `train_metrics`: `label/prompts`,
    /// `label/pairs`, `label/all_equal`, and for a judge its agreement with the probe set's chosen/rejected
    /// (`label/judge_agreement`, over `label/judge_pairs`). Returns false when stopped.
    func executeLabel(_ label: RunConfig.LabelStage) throws -> Bool {
        let started = Date()
        let report = executor.report
        let experiment = executor.experiment
        func load(_ source: RunConfig.ModelSource) throws -> LoadedModel {
            try ModelLoader.load(source, experiment: experiment, capacity: 64, maxSequenceLength: 64, threads: config.threads)
        }
        report(.loading(run: run.name, what: "policy" + (label.policy.map { " (weights of \($0))" } ?? "")))
        let policy = try load(config.model)
        if let p = label.policy { _ = try loadInitialWeights(.init(run: p, step: nil), into: policy.model) }
        let scorer: Labeller.Scorer
        var metrics: [(name: String, value: Double)] = []
        if let r = label.scorerRun {
            report(.loading(run: run.name, what: "reward model \(r)"))
            let base = try load(config.model)
            let rm = base.model.withRewardHead(seed: 0)
            _ = try loadInitialWeights(.init(run: r, step: nil), into: rm)
            scorer = .rewardModel(model: rm, tokenizer: base.tokenizer, name: "run:\(r)")
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
        let out = executor.labelsURL(runName: run.name)
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
            return executor.stopRequested ? .stop : .more
        }
        if summary.alreadyDone + summary.written + summary.allEqual < examples.count { return false }
        let state = try Labeller.state(out.path)
        let (pairs, skipped) = (state.written.count, state.skipped.count)
        metrics += [("label/prompts", Double(examples.count)), ("label/pairs", Double(pairs)), ("label/all_equal", Double(skipped))]
        _ = try store.truncate(runID: runID, afterStep: -1)
        try store.writeTrainMetrics(runID: runID, step: 0, metrics: metrics)
        guard pairs > 0 else {
            throw RunError.data(file: out.path, line: nil, reason: "no pairs: every prompt's samples scored the same (\(skipped) prompts)")
        }
        report(.finished(run: run.name, seconds: Date().timeIntervalSince(started)))
        return true
    }
}
