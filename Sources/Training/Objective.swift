/// Which tokens an SFT loss trains on.
public enum LossOn: String, Codable, Sendable {
    /// Only the response tokens (prompt masked).
    case response
    /// Every token after the first.
    case all
}

/// A training objective. Every objective is built on the one log-prob primitive (`LlamaModel.forward`):
/// it sees per-token log-probabilities, per-token weights and per-sequence spans, and returns the loss,
/// diagnostics and dLoss/dlogprob per token.
public enum Objective: Sendable, Equatable {
    /// Weighted negative log-likelihood: loss = -sum(w * lp) / sum(w).
    case sft(lossOn: LossOn)
}

/// A sequence's token positions inside a packed batch. Preference objectives pair spans (chosen, rejected).
public struct SequenceSpan: Sendable, Equatable {
    public var start: Int
    public var count: Int
    public init(start: Int, count: Int) {
        self.start = start
        self.count = count
    }
    public var range: Range<Int> { start..<(start + count) }
}

/// What an objective returns besides the gradient.
public struct ObjectiveResult: Sendable {
    public var loss: Double
    /// Diagnostics named like "logps/mean_token" (objective-specific).
    public var metrics: [String: Double]
}

extension Objective {
    /// Evaluates the objective.
    /// - Parameters:
    ///   - logprobs: (N) per-token log-probabilities from `forward`.
    ///   - weights: (N) per-token weights (0 where a token is not trained on, e.g. target -1).
    ///   - spans: the sequences of the batch (used by sequence-level objectives; SFT ignores them).
    ///   - dLogprobs: (N) written with dLoss/dlogprob.
    public func evaluate(
        logprobs: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, spans: [SequenceSpan],
        dLogprobs: UnsafeMutableBufferPointer<Float>
    ) -> ObjectiveResult {
        precondition(weights.count == logprobs.count && dLogprobs.count == logprobs.count, "Objective: size mismatch")
        switch self {
        case .sft:
            return sftLoss(logprobs: logprobs, weights: weights, dLogprobs: dLogprobs)
        }
    }
}

/// loss = -sum(w * lp) / sum(w); dLoss/dlp_t = -w_t / sum(w). With sum(w) = 0 the loss and gradient are 0.
public func sftLoss(
    logprobs: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, dLogprobs: UnsafeMutableBufferPointer<Float>
) -> ObjectiveResult {
    var sw = 0.0, swl = 0.0
    for t in 0..<logprobs.count where weights[t] != 0 {
        sw += Double(weights[t])
        swl += Double(weights[t]) * Double(logprobs[t])
    }
    guard sw > 0 else {
        dLogprobs.update(repeating: 0)
        return ObjectiveResult(loss: 0, metrics: ["tokens": 0])
    }
    for t in 0..<logprobs.count { dLogprobs[t] = Float(-Double(weights[t]) / sw) }
    return ObjectiveResult(loss: -swl / sw, metrics: ["tokens": sw, "logps/mean_token": swl / sw])
}

import Model

extension LossOn {
    /// Packs (prompt, response) token sequences into one batch for SFT. The target at position t is token t+1
    /// of the same sequence; with `.response` only positions whose next token belongs to the response get a
    /// target (so logits are computed only there), with `.all` every position but the last does.
    /// Returns the batch, per-token weights (1 where there is a target) and each sequence's span.
    public func pack(_ examples: [(prompt: [Int32], response: [Int32])]) -> (batch: TokenBatch, weights: [Float], spans: [SequenceSpan]) {
        var tokens: [Int32] = [], targets: [Int32] = [], starts: [Int] = [], spans: [SequenceSpan] = []
        for (prompt, response) in examples {
            let seq = prompt + response
            precondition(!seq.isEmpty, "LossOn.pack: empty example")
            starts.append(tokens.count)
            spans.append(SequenceSpan(start: tokens.count, count: seq.count))
            for i in seq.indices {
                tokens.append(seq[i])
                let trained = i + 1 < seq.count && (self == .all || i + 1 >= prompt.count)
                targets.append(trained ? seq[i + 1] : -1)
            }
        }
        let weights = targets.map { $0 >= 0 ? Float(1) : 0 }
        return (TokenBatch(tokens: tokens, targets: targets, sequenceStarts: starts), weights, spans)
    }
}
