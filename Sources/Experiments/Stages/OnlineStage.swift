import Base
import Foundation
import Model
import Probes
import RunStore
import Tokenizer
import Training

/// A reward model scoring responses given as text, as labelling (`Labeller`) and online training (`objective.reward:
/// { run }`) both read it: the prompt rendered by the chat template, each response through `template.response`
/// (so it ends with the end-of-turn the model was trained to score at), r at the response's last token.
struct RewardModelScorer {
    let model: LlamaModel
    let tokenizer: any TextTokenizer
    let template: ChatTemplate

    /// One score per response of each (prompt, responses) item, in one batched pass (nil prompt text: 0s, which
    /// validation rules out for runs: `raw` needs the prompt as text).
    func scores(_ items: [(prompt: PromptSource, responses: [String])]) -> [[Double]] {
        var encoded: [(prompt: [Int32], responses: [[Int32]])] = []
        let encoder = ChatEncoder(tokenizer: tokenizer, template: template)
        for item in items {
            let prompt = (try? encoder.prompt(item.prompt)) ?? []
            encoded.append((prompt, prompt.isEmpty ? item.responses.map { _ in [] } : item.responses.map { encoder.response($0, after: item.prompt) }))
        }
        let need = encoded.map { $0.prompt.count + $0.responses.reduce(0) { $0 + $1.count } }.max() ?? 1
        let session = BatchSession(model: model, slots: max(need, 1), context: max(1, encoded.map { $0.prompt.count + ($0.responses.map(\.count).max() ?? 0) }.max() ?? 1))
        let rewards = session.scoreRewards(encoded)
        return zip(encoded, rewards).map { item, r in item.prompt.isEmpty ? r.map { _ in 0 } : r.map(Double.init) }
    }
}

/// Online policy optimisation (ppo): trains on prompts, sampling responses as it goes and scoring them with a
/// reward source: a reward-model run's final weights, a judge model, or a rule.
struct OnlineStage: TrainingStage {
    let settings: PolicyOptimization

    func inputRuns(of config: RunConfig) -> [String] { Stages.commonInputs(of: config) + [config.objective.rewardRun].compactMap { $0 } }

    func data(_ input: TrainingInput, _ run: RunContext) throws -> TrainingData {
        let encoded = try PairEncoder.training(input.examples, objective: run.config.objective, tokenizer: input.loaded.tokenizer,
                                               template: input.template, maxLength: run.config.train.maxLength, file: input.trainPath)
        return try OfflineStage.withReference(encoded, input, run)
    }

    /// What the trainer samples and scores with (`PolicyRollout`, `Trainer.ppoStep`): the reference (a copy of the
    /// starting weights, taken before a checkpoint is resumed, or `objective.reference`), the end-of-turn tokens, each prompt's data line (its
    /// samples' seed), and the reward. Also sets `probes.greedyReward` for a reward model or a rule (a judge ranks a
    /// prompt's samples against each other, and a greedy answer has no others).
    func prepare(_ trainer: Trainer, _ input: TrainingInput, probes: ProbeEvaluator, _ run: RunContext) throws {
        let (examples, loaded, template) = (input.examples, input.loaded, input.template)
        let tokenizer = loaded.tokenizer
        let reward: ([Int], [[[Int32]]]) -> [[Double]]
        func texts(_ responses: [[[Int32]]]) -> [[String]] { responses.map { $0.map { tokenizer.decode($0) } } }
        switch settings.reward {
        case .length:
            reward = { _, responses in responses.map { $0.map { Double($0.count) } } }
            probes.greedyReward = { $0.map { Double($0.ids.count) } }
        case .contains(let text):
            reward = { _, responses in texts(responses).map { $0.map { $0.contains(text) ? 1 : 0 } } }
            probes.greedyReward = { $0.map { $0.text.contains(text) ? 1 : 0 } }
        case .run(let r):
            let rm = try run.loadRewardModel(run: r)
            let scorer = RewardModelScorer(model: rm.model, tokenizer: rm.tokenizer, template: template)
            reward = { prompts, responses in
                scorer.scores(zip(prompts, texts(responses)).map { (examples[$0].promptSource, $1) })
            }
            probes.greedyReward = { answers in scorer.scores(answers.map { ($0.prompt, [$0.text]) }).map { $0[0] } }
        case let .judge(path, questionFile):
            run.report(.loading(run: run.name, what: "judge \(path)"))
            let j = try run.loadAuxiliary(ModelLoader.source(path: path, experiment: run.experiment))
            let question = try questionFile.map { try TextFile.readText(run.experiment.resolve($0)) } ?? Judge.defaultTemplate
            let judge = try Judge(model: j.model, tokenizer: j.tokenizer, template: question, chat: template)
            reward = { prompts, responses in
                zip(prompts, texts(responses)).map { judge.scores(prompt: examples[$0], responses: $1) }
            }
        }
        // the KL penalty's reference: a copy of the starting weights (taken before a checkpoint is resumed), or the model
        // `objective.reference` names
        // with LoRA the reference is the policy's base, read with the adapters off (no second copy of the weights)
        let reference = try run.config.reference.map { try run.loadReference($0).model }
            ?? (loaded.model.lora != nil ? loaded.model : loaded.model.copy(maxTokens: 64))
        trainer.rollout = PolicyRollout(reference: reference, stop: loaded.stopTokens, ids: examples.map(\.line), reward: reward)
    }
}
