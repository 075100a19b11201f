import Base

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

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case steps, batchSize = "batch_size", lr, warmup, schedule, minLRRatio = "min_lr_ratio", maxLength = "max_length"
        case weightDecay = "weight_decay", gradClip = "grad_clip", gradAccum = "grad_accum", beta1, beta2, precision
        case checkpointActivations = "checkpoint_activations"
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
        if warmup > steps { throw f.invalid("warmup", "an integer <= train.steps (\(steps))") }
    }
}
