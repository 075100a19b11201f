import Base
import Foundation
import Probes
import Training

/// Training on a fixed data set (sft, the pair objectives, kto, reward models, coh): the examples encoded as the
/// objective reads them and, for an objective that reads a reference model, the starting weights' values, cached.
struct OfflineStage: TrainingStage {
    func data(_ input: TrainingInput, _ run: RunContext) throws -> TrainingData {
        let encoded = try PairEncoder.training(input.examples, objective: run.config.objective, tokenizer: input.loaded.tokenizer,
                                               template: input.template, maxLength: run.config.train.maxLength, file: input.trainPath)
        return try Self.withReference(encoded, input, run)
    }

    /// TR-DPO: a second copy of the model, holding the reference's weights (the starting weights until the first sync;
    /// a resumed run reads them from its checkpoint).
    func prepare(_ trainer: Trainer, _ input: TrainingInput, probes: ProbeEvaluator, _ run: RunContext) throws {
        guard let settings = run.config.objective.referenceSync else { return }
        run.report(.loading(run: run.name, what: "TR-DPO's moving reference (a second copy of the weights)"))
        trainer.referenceSync = ReferenceSync(settings, model: input.loaded.model.copy(maxTokens: run.config.batchTokens))
    }

    /// Encoded data as the trainer takes it, with the reference values a preference or kto objective reads
    /// (computed once per model and data and cached beside the checkpoints; zeros for an objective that reads none).
    static func withReference(_ encoded: PairEncoder.Encoded, _ input: TrainingInput, _ run: RunContext) throws -> TrainingData {
        let config = run.config
        // the reference: the starting weights, or the model `objective.reference` names (loaded only when needed)
        var model = input.loaded.model, identity = input.modelIdentity
        let needsOne: Bool
        switch encoded {
        case .unpaired: needsOne = true
        case .pairs: needsOne = config.objective.needsReference
        default: needsOne = false
        }
        if needsOne, let reference = config.reference {
            let other = try run.loadReference(reference)
            (model, identity) = (other.model, "reference:" + other.identity)
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
                run.report(.loading(run: run.name, what: "data: \(split) chosen/rejected pairs split into a desirable and an undesirable example each"))
            }
            if let warning = config.objective.dataWarning(desirable: desirable.filter { $0 }.count, undesirable: desirable.filter { !$0 }.count) {
                run.report(.warning(run: run.name, message: warning))
            }
            // the reference of every micro-batch of the run (its mismatched pairs depend on the batch), cached
            var digest = SHA256()
            for (p, d) in zip(pairs, desirable) { digest.update("\(p.prompt)|\(p.response)|\(d);") }
            digest.update("seed=\(config.seed);steps=\(config.train.steps);batch=\(config.train.batchSize);accum=\(config.train.gradAccum)")
            let reference = try run.cachedReference(modelIdentity: identity, kind: "|kto", data: digest,
                                                    what: "reference log-probabilities (KTO: every batch's completions and mismatched pairs)") {
                Trainer.ktoReferenceLogprobs(model: model, pairs: pairs, train: config.train, seed: config.seed)
            }
            return .unpaired(pairs, desirable: desirable, reference: reference)
        case .pairs(let pairs):
            var digest = SHA256()
            for p in pairs { digest.update("\(p.prompt)|\(p.chosen)|\(p.rejected);") }
            // an objective that reads no reference model gets zeros (its loss ignores them), computed and cached nowhere
            guard config.objective.needsReference else { return .preference(pairs, reference: [Double](repeating: 0, count: 2 * pairs.count)) }
            // LD-DPO weighs the reference's tails too: its values are other numbers, cached under their own key
            let tail = config.objective.tailWeight
            let reference = try run.cachedReference(modelIdentity: identity + (tail.map { "|ld_alpha:\($0)" } ?? ""), data: digest,
                                                    what: "reference log-probabilities") {
                referenceLogprobs(model: model, pairs: pairs, batchSize: config.train.batchSize, tailWeight: tail)
            }
            return .preference(pairs, reference: reference)
        }
    }
}
