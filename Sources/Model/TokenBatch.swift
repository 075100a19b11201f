/// A packed batch: sequences concatenated, positions restarting at 0 at each sequence start.
public struct TokenBatch: Sendable {
    /// (N) token ids.
    public var tokens: [Int32]
    /// (N) the token to score at each position (normally the next token of the same sequence); -1 = none.
    public var targets: [Int32]
    /// Ascending offsets into `tokens` where sequences start; the first is 0.
    public var sequenceStarts: [Int]

    public init(tokens: [Int32], targets: [Int32], sequenceStarts: [Int]) {
        self.tokens = tokens
        self.targets = targets
        self.sequenceStarts = sequenceStarts
    }

    /// Number of tokens.
    public var count: Int { tokens.count }

    /// Length of sequence `s`.
    public func sequenceLength(_ s: Int) -> Int {
        (s + 1 < sequenceStarts.count ? sequenceStarts[s + 1] : tokens.count) - sequenceStarts[s]
    }

    /// Packs (context, continuation) pairs: each sequence is context + continuation, and targets are set
    /// exactly where the NEXT token is a continuation token, so the returned log-probabilities are those of
    /// the continuation given its context. Each context must be non-empty.
    public static func scoring(_ pairs: [(context: [Int32], continuation: [Int32])]) -> TokenBatch {
        var tokens: [Int32] = [], targets: [Int32] = [], starts: [Int] = []
        for (context, continuation) in pairs {
            precondition(!context.isEmpty, "TokenBatch.scoring: empty context")
            starts.append(tokens.count)
            let seq = context + continuation
            for (i, t) in seq.enumerated() {
                tokens.append(t)
                targets.append(i + 1 >= context.count && i + 1 < seq.count ? seq[i + 1] : -1)
            }
        }
        return TokenBatch(tokens: tokens, targets: targets, sequenceStarts: starts)
    }

    func validate(vocabSize: Int) {
        precondition(targets.count == tokens.count, "TokenBatch: targets and tokens differ in length")
        precondition(!tokens.isEmpty && sequenceStarts.first == 0, "TokenBatch: first sequence must start at 0")
        for i in 1..<sequenceStarts.count {
            precondition(sequenceStarts[i] > sequenceStarts[i - 1] && sequenceStarts[i] < tokens.count,
                         "TokenBatch: sequence starts must ascend inside the batch")
        }
        for t in tokens { precondition(t >= 0 && Int(t) < vocabSize, "TokenBatch: token \(t) out of vocabulary") }
        for t in targets { precondition(t >= -1 && Int(t) < vocabSize, "TokenBatch: target \(t) out of vocabulary") }
    }
}
