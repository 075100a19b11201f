import Model

/// One micro-batch of an objective: its forward pass, loss and backward pass, the gradient accumulated into the
/// model scaled by the micro-batch's `share` of the step. `Trainer.step` packs the batches and weighs the results;
/// what each objective does with a batch is here.
extension Objective {
    /// Whether the objective's loss reads a scalar head's rewards rather than log-probabilities (a reward model).
    public var trainsOnRewards: Bool { rewardHeadSeed != nil }

    /// Which tokens an objective that trains on single sequences (SFT) trains on.
    public var sequenceLossOn: LossOn? {
        if case .sft(let lossOn, _) = self { return lossOn }
        return nil
    }

    /// - Parameters:
    ///   - reference: the reference sums of the batch's sequences (a reward model: each pair's margin).
    ///   - desirable: unpaired objectives (KTO): whether each example of the micro-batch is desirable.
    ///   - dLogprobs: scratch of at least the batch's length (dLoss/dlogprob, then scaled by `share`).
    /// - Returns: the micro-batch's result (its loss not yet scaled by `share`).
    func trainMicroBatch(model: LlamaModel, _ batch: TokenBatch, weights: [Float], spans: [SequenceSpan], reference: [Double]?,
                         desirable: [Bool]?, share: Double, dLogprobs: inout [Float]) -> ObjectiveResult {
        let n = batch.tokens.count
        switch self {
        case .reward(_, let center, _):
            // r at each sequence's last token (the end of turn): chosen, rejected, chosen, ...
            let rewards = model.forwardRewards(batch, rows: spans.map { $0.start + $0.count - 1 }, training: true)
            let pairs = spans.count / 2
            let (result, dc, dr) = bradleyTerryLoss(chosen: (0..<pairs).map { rewards[2 * $0] }, rejected: (0..<pairs).map { rewards[2 * $0 + 1] },
                                                    margins: reference!, center: center)
            model.backwardRewards((0..<2 * pairs).map { Float(share) * ($0 % 2 == 0 ? dc[$0 / 2] : dr[$0 / 2]) })
            return result
        case let .kto(beta, wD, wU, _):
            let lp = model.forward(batch, training: true)
            let b = spans.count / 2, ref = reference!
            let sums = weights.withUnsafeBufferPointer { sequenceLogprobs(logprobs: lp, weights: $0, spans: spans) }
            let (result, d) = ktoLoss(policy: Array(sums[0..<b]), reference: Array(ref[0..<b]),
                                      policyMismatched: Array(sums[b...]), referenceMismatched: Array(ref[b...]),
                                      desirable: desirable!, beta: beta, desirableWeight: wD, undesirableWeight: wU)
            // each completion's summed log-probability gets its dloss/dlog pi; the mismatched pairs none (z is detached)
            for t in 0..<n { dLogprobs[t] = 0 }
            for (k, span) in spans.prefix(b).enumerated() {
                for t in span.range where weights[t] != 0 { dLogprobs[t] = Float(d[k] * share) * weights[t] }
            }
            dLogprobs.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
            return result
        default:
            let lp = model.forward(batch, training: true, logSumSquares: readsLogSumSquares)
            let squares = model.lastLogSumSquares
            let result = weights.withUnsafeBufferPointer { w in
                squares.withUnsafeBufferPointer { q in
                    dLogprobs.withUnsafeMutableBufferPointer { d in
                        evaluate(logprobs: lp, weights: w, spans: spans, referenceLogprobs: reference,
                                 logSumSquares: readsLogSumSquares ? q : nil, dLogprobs: UnsafeMutableBufferPointer(rebasing: d[0..<n]))
                    }
                }
            }
            for t in 0..<n { dLogprobs[t] *= Float(share) }
            dLogprobs.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
            return result
        }
    }
}
