import Model

/// One tokenized (prompt, response) pair; the prompt was cut from the left to fit `max_length`.
public struct EncodedPair: Sendable {
    public var prompt: [Int32]
    public var response: [Int32]
    /// Prompt tokens removed from the left to fit.
    public var promptCut: Int

    public init(prompt: [Int32], response: [Int32], promptCut: Int) {
        self.prompt = prompt
        self.response = response
        self.promptCut = promptCut
    }
}

/// What a run trains on, already tokenized.
public enum TrainingData {
    /// SFT: one sequence per example.
    case sequences([EncodedPair])
    /// DPO / IPO / hinge: pairs, with the reference model's (chosen, rejected) sums, two per pair.
    case preference([PreferencePair], reference: [Double])
    /// Chain of Hindsight: one sequence per pair with both answers, as token pieces (`PairEncoder.hindsight`).
    case hindsight([[(ids: [Int32], trained: Bool)]])
    /// A reward model's pairs, each with its Bradley-Terry margin.
    case rewardPairs([PreferencePair], margins: [Double])
    /// KTO: unpaired (prompt, completion) examples and whether each is desirable; `reference` holds the
    /// reference model's summed log-probabilities of every micro-batch of the run, in step order
    /// (`ktoReferenceLogprobs`): its B completions, then its B mismatched pairs.
    case unpaired([EncodedPair], desirable: [Bool], reference: [Double])
    /// An online objective's prompts (`Objective.ppo`); the responses are sampled as it trains.
    case prompts([[Int32]])

    /// Whether each data item is one example whose sequences are consecutive in its micro-batch (sft, coh and the pair
    /// objectives; not KTO's mismatched pairs, a reward model's scores or an online objective's samples).
    public var isOneExamplePerItem: Bool {
        switch self {
        case .sequences, .preference, .hindsight: return true
        case .rewardPairs, .unpaired, .prompts: return false
        }
    }

    public var count: Int {
        switch self {
        case .sequences(let s): return s.count
        case .preference(let p, _): return p.count
        case .hindsight(let h): return h.count
        case .rewardPairs(let p, _): return p.count
        case .unpaired(let p, _, _): return p.count
        case .prompts(let p): return p.count
        }
    }
}

/// The optimizer state of one run and its training step. The loop itself lives in `Experiments.TrainingLoop`:
/// step, evaluate, record and checkpoint are separate functions.
public final class Trainer {
    public let model: LlamaModel
    public let train: TrainSettings
    public let data: TrainingData
    public let optimizer: AdamW
    public let objective: Objective
    private var order: DataOrder
    var dLogprobs: [Float]
    /// The data order's seed; online objectives also derive their samples' seeds from it (`stepSeed`).
    public let seed: Int
    /// An online objective's reference, stop tokens and reward (`Objective.ppo`); nil for the others.
    public var rollout: PolicyRollout?
    /// Sampling and reference-scoring sessions of an online objective, kept across steps (their caches).
    var policySession: BatchSession?
    var referenceSession: BatchSession?
    /// TR-DPO's moving reference (`ReferenceSync`); nil when the reference stays fixed.
    public var referenceSync: ReferenceSync?
    /// When set, `step` keeps its examples' terms of the gradient (`lastExampleTerms`, read by `Attribution`).
    public var recordsExampleTerms = false
    /// The last step's example terms, in micro-batch order (empty unless `recordsExampleTerms`).
    public private(set) var lastExampleTerms: [ExampleTerm] = []

    /// What a checkpoint holds beside the weights, in order: with LoRA what trains (the adapters, a reward model's
    /// head), then AdamW's moments (of what trains) and, with TR-DPO, the reference's weights.
    public var stateTensors: [UnsafeMutableBufferPointer<Float>] {
        (model.lora == nil ? [] : model.trainable.map(\.parameters)) + [optimizer.m, optimizer.v]
            + (referenceSync.map { [$0.model.parameters] } ?? [])
    }

    /// - Parameter seed: the data order's seed (`DataOrder`).
    public init(model: LlamaModel, train: TrainSettings, objective: Objective, seed: Int, data: TrainingData) {
        self.model = model
        self.train = train
        self.data = data
        self.order = DataOrder(count: data.count, seed: seed)
        self.optimizer = AdamW(
            parameterCount: model.trainableCount,
            config: AdamWConfig(beta1: train.beta1, beta2: train.beta2,
                                eps: 1e-8, weightDecay: train.weightDecay))
        self.objective = objective
        self.seed = seed
        self.dLogprobs = [Float](repeating: 0, count: model.maxTokens)
    }

    public struct StepResult {
        public var loss: Double
        public var lr: Double
        public var gradNorm: Double
        public var tokens: Int
        public var targetTokens: Int
        /// Objective diagnostics averaged over the step's micro-batches (`rewards/margins`, ...).
        public var metrics: [String: Double]
        /// An online objective's sampled responses (`Objective.ppo`); empty for the others.
        public var samples: [PolicySample] = []
    }

    /// Indices of the examples of micro-batch `micro` of optimizer step `step` (1-based): a pure
    /// function of (seed, step), so resuming needs no data cursor.
    func indices(step: Int, micro: Int) -> [Int] {
        Self.indices(&order, train, step: step, micro: micro)
    }

    static func indices(_ order: inout DataOrder, _ train: TrainSettings, step: Int, micro: Int) -> [Int] {
        let b = train.batchSize
        let first = ((step - 1) * train.gradAccum + micro) * b
        return (0..<b).map { order.index(at: first + $0) }
    }

    /// KTO's sequences of a micro-batch: each example's (prompt, completion), then each prompt with the
    /// completion of the example `ktoMismatchedIndex` names.
    static func ktoSequences(_ pairs: [EncodedPair], _ idx: [Int]) -> [(prompt: [Int32], response: [Int32])] {
        idx.map { (pairs[$0].prompt, pairs[$0].response) }
            + idx.indices.map { k in (pairs[idx[k]].prompt, pairs[idx[ktoMismatchedIndex(k, count: idx.count)]].response) }
    }

    /// The reference log-probabilities KTO needs for a whole run (`TrainingData.unpaired`): for every
    /// micro-batch of every step, in order, the summed log-probabilities under `model` (the reference: the
    /// starting weights) of its sequences (`ktoSequences`). One forward per micro-batch; gradients untouched.
    public static func ktoReferenceLogprobs(model: LlamaModel, pairs: [EncodedPair], train: TrainSettings, seed: Int) -> [Double] {
        var order = DataOrder(count: pairs.count, seed: seed)
        var out: [Double] = []
        for step in 1...max(1, train.steps) {
            for micro in 0..<train.gradAccum {
                let packed = LossOn.response.pack(ktoSequences(pairs, indices(&order, train, step: step, micro: micro)))
                let lp = model.forward(packed.batch, training: false)
                out += packed.weights.withUnsafeBufferPointer { sequenceLogprobs(logprobs: lp, weights: $0, spans: packed.spans) }
            }
        }
        return out
    }

    /// The packed batch of a micro-batch, its weights, spans and the reference sums of its sequences (for a
    /// reward model: each pair's margin, in `reference`).
    func batch(step: Int, micro: Int) -> (batch: TokenBatch, weights: [Float], spans: [SequenceSpan], reference: [Double]?) {
        let idx = indices(step: step, micro: micro)
        switch data {
        case .rewardPairs(let pairs, let margins):
            let packed = PreferencePair.pack(idx.map { pairs[$0] })
            return (packed.batch, packed.weights, packed.spans, idx.map { margins[$0] })
        case .unpaired(let pairs, _, let reference):
            let packed = LossOn.response.pack(Self.ktoSequences(pairs, idx))
            let first = ((step - 1) * train.gradAccum + micro) * 2 * idx.count
            return (packed.batch, packed.weights, packed.spans, Array(reference[first..<first + 2 * idx.count]))
        case .sequences(let pairs):
            guard let lossOn = objective.sequenceLossOn else { preconditionFailure("sequences are SFT data") }
            let packed = lossOn.pack(idx.map { (pairs[$0].prompt, pairs[$0].response) })
            return (packed.batch, packed.weights, packed.spans, nil)
        case .preference(let pairs, let reference):
            let packed = PreferencePair.pack(idx.map { pairs[$0] }, tailWeight: objective.tailWeight)
            // TR-DPO after its first sync: the moved reference's sums of this micro-batch (ReferenceSync)
            if let sync = referenceSync, sync.version(before: step) > 0 {
                let lp = sync.model.forward(packed.batch, training: false)
                return (packed.batch, packed.weights, packed.spans,
                        packed.weights.withUnsafeBufferPointer { sequenceLogprobs(logprobs: lp, weights: $0, spans: packed.spans) })
            }
            return (packed.batch, packed.weights, packed.spans, idx.flatMap { [reference[2 * $0], reference[2 * $0 + 1]] })
        case .hindsight(let sequences):
            let packed = TokenBatch.pack(idx.map { sequences[$0] })
            return (packed.batch, packed.weights, packed.spans, nil)
        case .prompts:
            preconditionFailure("Trainer.batch: an online objective's batches are sampled (ppoStep)")
        }
    }

    /// One optimizer step (forward, backward over `grad_accum` micro-batches, clip, AdamW). Each
    /// micro-batch's loss and gradient are weighted by its share of the step's trained tokens (SFT,
    /// CoH) or pairs (preference objectives).
    public func step(_ step: Int) -> StepResult {
        if let settings = objective.onlineSettings, case .prompts(let prompts) = data { return ppoStep(step, settings, prompts: prompts) }
        model.zeroGradients()
        var micro: [(batch: TokenBatch, weights: [Float], spans: [SequenceSpan], reference: [Double]?)] = []
        for m in 0..<train.gradAccum { micro.append(batch(step: step, micro: m)) }
        let perExample = objective.sequencesPerExample == 2
        func unit(_ weights: [Float], _ spans: [SequenceSpan]) -> Double {
            perExample ? Double(spans.count / 2) : Double(weights.reduce(0, +))
        }
        let total = max(1, micro.reduce(0.0) { $0 + unit($1.weights, $1.spans) })
        var loss = 0.0
        var metrics: [String: Double] = [:]
        var shares: [String: Double] = [:]  // per metric, the shares of the micro-batches that reported it
        var tokens = 0
        var targets = 0
        lastExampleTerms = []
        for (m, mb) in micro.enumerated() {
            let n = mb.batch.tokens.count
            tokens += n
            let share = unit(mb.weights, mb.spans) / total
            // a reward model scores sequences, not next tokens: it has no target tokens to count
            if !objective.trainsOnRewards { targets += mb.batch.targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
            // unpaired data: whether each example of this micro-batch is desirable
            var desirable: [Bool]?
            if case let .unpaired(_, labels, _) = data { desirable = indices(step: step, micro: m).map { labels[$0] } }
            model.lora?.dropoutKey = UInt64((step - 1) * train.gradAccum + m)  // LoRA's dropout masks: a function of the step
            let result = objective.trainMicroBatch(model: model, mb.batch, weights: mb.weights, spans: mb.spans, reference: mb.reference,
                                                   desirable: desirable, share: share, dLogprobs: &dLogprobs)
            loss += result.loss * share
            combine(&metrics, &shares, result.metrics, share: share)
            if recordsExampleTerms {
                precondition(!objective.trainsOnRewards && data.isOneExamplePerItem, "Trainer: example terms of \(objective.kind) are not defined")
                lastExampleTerms += dLogprobs.withUnsafeBufferPointer {
                    ExampleTerm.slice(mb.batch, spans: mb.spans, dLogprobs: UnsafeBufferPointer(rebasing: $0[0..<n]),
                                      indices: indices(step: step, micro: m), perExample: objective.sequencesPerExample)
                }
            }
        }
        let (lr, norm) = Self.update(model: model, optimizer: optimizer, train: train, step: step)
        if let sync = referenceSync {
            metrics["ref_model/version"] = Double(sync.version(before: step))
            sync.afterStep(step, policy: model)
        }
        // a metric some micro-batches lacked (KTO's rewards/chosen in a batch without desirable examples) is the
        // mean over those that had it
        let all = micro.reduce(0.0) { $0 + unit($1.weights, $1.spans) / total }
        for (k, w) in shares where w != all && w > 0 { metrics[k]! /= w }
        return StepResult(loss: loss, lr: lr, gradNorm: Double(norm), tokens: tokens, targetTokens: targets, metrics: metrics)
    }

    /// The update every training step ends with (and each of an online step's mini-batches, and the bench's step):
    /// the gradients clipped to `train.grad_clip`, the learning rate of optimizer step `step` (1-based) under the
    /// schedule, one AdamW step. Returns the rate and the gradients' norm before clipping.
    public static func update(model: LlamaModel, optimizer: AdamW, train: TrainSettings, step: Int) -> (lr: Double, gradNorm: Float) {
        let trainable = model.trainable
        let norm = clipGradients(segments: trainable.map(\.gradients), maxNorm: train.gradClip > 0 ? Float(train.gradClip) : .infinity)
        let lr = rate(train, step: step)
        optimizer.step(segments: trainable, lr: lr)
        return (lr, norm)
    }

    /// The schedule's learning rate at `step` (1-based).
    public static func rate(_ train: TrainSettings, step: Int) -> Double {
        learningRate(step: step - 1, totalSteps: train.steps, warmup: train.warmup, peak: train.lr, schedule: train.schedule,
                     minRatio: train.minLRRatio)
    }

    /// Adds a micro-batch's metrics into the step's: weighted by its share, but `min_*` and `max_*` metrics as
    /// the minimum and maximum over micro-batches.
    private func combine(_ metrics: inout [String: Double], _ shares: inout [String: Double], _ micro: [String: Double], share: Double) {
        for (k, v) in micro {
            if k.hasPrefix("min_") {
                metrics[k] = min(metrics[k] ?? v, v)
            } else if k.hasPrefix("max_") {
                metrics[k] = max(metrics[k] ?? v, v)
            } else {
                metrics[k, default: 0] += v * share
                shares[k, default: 0] += share
            }
        }
    }
}
