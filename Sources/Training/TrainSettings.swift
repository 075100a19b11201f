import Base
import Model

/// `train`: the optimizer, its schedule and the batch shape of a run. The decoder is each field's only
/// declaration (key, default, range).
public struct TrainSettings: Codable, Sendable, Equatable {
    public var steps: Int
    public var batchSize: Int
    public var lr: Double
    public var warmup: Int
    public var schedule: LRSchedule
    public var minLRRatio: Double
    public var maxLength: Int
    public var weightDecay: Double
    public var gradClip: Double
    public var gradAccum: Int
    public var beta1: Double
    public var beta2: Double
    /// The input type of the training step's weight products (`LlamaModel.precision`); "bf16" needs a
    /// CPU with native bf16 (`Products.bf16Supported`), checked before a run starts.
    public var precision: Precision
    /// Recompute each block's activations in backward instead of keeping them (`LlamaModel.checkpointActivations`):
    /// less memory for larger models, one more block forward per block and step.
    public var checkpointActivations: Bool
    /// Low-rank adapters (`LoRA`); nil: every weight trains.
    public var lora: LoRASpec?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case steps, batchSize = "batch_size", lr, warmup, schedule, minLRRatio = "min_lr_ratio", maxLength = "max_length"
        case weightDecay = "weight_decay", gradClip = "grad_clip", gradAccum = "grad_accum", beta1, beta2, precision
        case checkpointActivations = "checkpoint_activations", lora
    }

    public init(from decoder: any Decoder) throws {
        let f = try SpecFields(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        steps = try f.int("steps", min: 1, max: 1_000_000)
        batchSize = try f.int("batch_size", default: 4, min: 1, max: 4096)
        lr = try f.double("lr", default: 2e-5, min: 0, max: 1, exclusiveMin: true)
        warmup = try f.int("warmup", default: 0, min: 0)
        schedule = try f.choice("schedule", default: .cosine)
        minLRRatio = try f.double("min_lr_ratio", default: 0, min: 0, max: 1)
        maxLength = try f.int("max_length", default: 256, min: 8, max: 1 << 16)
        weightDecay = try f.double("weight_decay", default: 0, min: 0, max: 1)
        gradClip = try f.double("grad_clip", default: 1.0, min: 0)
        gradAccum = try f.int("grad_accum", default: 1, min: 1, max: 1024)
        beta1 = try f.double("beta1", default: 0.9, min: 0, max: 1, exclusiveMax: true)
        beta2 = try f.double("beta2", default: 0.999, min: 0, max: 1, exclusiveMax: true)
        precision = try f.choice("precision", default: .fp32)
        checkpointActivations = try f.bool("checkpoint_activations", default: false)
        lora = try f.object("lora")
        if warmup > steps { throw f.invalid("warmup", "an integer <= train.steps (\(steps))") }
    }
}

/// `train.lora`: train low-rank adapters W + (alpha / rank) B A on the named projections instead of every weight
/// (`Model.LoRAAdapters`). `targets` defaults to every projection the architecture has (`LoRATarget.available`):
/// checked against the model when the run is planned; `seed` defaults to the run's seed.
public struct LoRASpec: Codable, Sendable, Equatable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    public var targets: [LoRATarget]?
    public var seed: Int?

    public init(from decoder: any Decoder) throws {
        let f = try SpecFields(decoder, allowed: ["rank", "alpha", "dropout", "targets", "seed"])
        rank = try f.int("rank", min: 1, max: 65536)
        alpha = try f.double("alpha", default: Double(2 * rank), min: 0, exclusiveMin: true)
        dropout = try f.double("dropout", default: 0, min: 0, max: 1, exclusiveMax: true)
        let names = LoRATarget.allCases.map(\.rawValue)
        let expected = "a non-empty list of distinct projections among " + names.map { "\"\($0)\"" }.joined(separator: ", ")
        if let value = f.value("targets") {
            guard case .array(let items) = value, !items.isEmpty else { throw f.invalid("targets", expected) }
            var list: [LoRATarget] = []
            for item in items {
                guard case .string(let s) = item, let t = LoRATarget(rawValue: s), !list.contains(t) else {
                    throw SpecIssue.invalid(path: f.sub("targets"), expected: expected, found: SpecFields.describe(item))
                }
                list.append(t)
            }
            targets = list
        } else {
            targets = nil
        }
        seed = f.has("seed") ? try f.int("seed", min: 0, max: Int(UInt32.max)) : nil
    }

    /// The adapters' settings for a model of block kind `block` and a run of seed `runSeed`; nil with the first target
    /// the block does not have.
    public func settings(block: LlamaConfig.BlockStyle, runSeed: Int) -> (settings: LoRASettings?, missing: LoRATarget?) {
        let available = LoRATarget.available(for: block)
        let chosen = targets ?? available
        if let bad = chosen.first(where: { !available.contains($0) }) { return (nil, bad) }
        return (LoRASettings(rank: rank, alpha: alpha, dropout: dropout, targets: chosen, seed: UInt64(seed ?? runSeed)), nil)
    }
}
