import Model

/// One preference example in token ids: a prompt (with BOS and chat template already applied) and two
/// responses, the preferred one first.
public struct PreferencePair: Sendable, Equatable {
    public var prompt: [Int32]
    public var chosen: [Int32]
    public var rejected: [Int32]

    public init(prompt: [Int32], chosen: [Int32], rejected: [Int32]) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
    }

    /// Packs pairs into one batch with the preference convention: for pair i, sequence 2i is
    /// prompt + chosen and sequence 2i+1 is prompt + rejected; targets (and weight 1) only where the next
    /// token is a response token, so each span's weighted sum of log-probabilities is log p(response | prompt).
    /// `spans` list the sequences in that order (chosen, rejected, chosen, rejected, ...).
    /// The prompt must be non-empty (the first response token needs a context).
    /// With `tailWeight` (LD-DPO's alpha), each response's tokens beyond the pair's shared length (the shorter
    /// response's token count) weigh alpha instead of 1, so a span's weighted sum is shared + alpha * tail.
    public static func pack(_ pairs: [PreferencePair], tailWeight: Float? = nil) -> (batch: TokenBatch, weights: [Float], spans: [SequenceSpan]) {
        var sequences: [(prompt: [Int32], response: [Int32])] = []
        sequences.reserveCapacity(2 * pairs.count)
        for p in pairs {
            precondition(!p.prompt.isEmpty, "PreferencePair.pack: empty prompt")
            sequences.append((p.prompt, p.chosen))
            sequences.append((p.prompt, p.rejected))
        }
        var packed = LossOn.response.pack(sequences)
        if let alpha = tailWeight {
            for (i, p) in pairs.enumerated() {
                let shared = min(p.chosen.count, p.rejected.count)
                for span in [packed.spans[2 * i], packed.spans[2 * i + 1]] {
                    var seen = 0
                    for t in span.range where packed.weights[t] != 0 {
                        if seen >= shared { packed.weights[t] = alpha }
                        seen += 1
                    }
                }
            }
        }
        return packed
    }

    /// Tokens of the pair once packed (prompt + chosen + prompt + rejected).
    public var packedCount: Int { 2 * prompt.count + chosen.count + rejected.count }
}

/// Reference log-probabilities of preference pairs: forward(training: false) over batches of up to
/// `batchSize` pairs (fewer when a batch would exceed `model.maxTokens`), summed per span as
/// `Objective.evaluate` sums the policy's. Returns 2 values per pair, in order: chosen, rejected.
/// Leaves the model's gradients untouched.
public func referenceLogprobs(model: LlamaModel, pairs: [PreferencePair], batchSize: Int, tailWeight: Float? = nil) -> [Double] {
    precondition(batchSize > 0, "referenceLogprobs: batchSize must be positive")
    var out: [Double] = []
    out.reserveCapacity(2 * pairs.count)
    var i = 0
    while i < pairs.count {
        var end = i + 1, tokens = pairs[i].packedCount
        while end < pairs.count && end - i < batchSize && tokens + pairs[end].packedCount <= model.maxTokens {
            tokens += pairs[end].packedCount
            end += 1
        }
        let (batch, weights, spans) = PreferencePair.pack(Array(pairs[i..<end]), tailWeight: tailWeight)
        let lp = model.forward(batch, training: false)
        out += weights.withUnsafeBufferPointer { sequenceLogprobs(logprobs: lp, weights: $0, spans: spans) }
        i = end
    }
    return out
}
