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

    /// The one next-token packer (SFT, preference pairs, Chain of Hindsight, scoring): each sequence is its
    /// pieces concatenated, and position i gets a target (token i+1 of the same sequence, weight 1) exactly
    /// when token i+1 belongs to a trained piece. Returns the batch, the per-token weights and each sequence's
    /// span. Sequences must be non-empty.
    public static func pack(_ sequences: [[(ids: [Int32], trained: Bool)]]) -> (batch: TokenBatch, weights: [Float], spans: [SequenceSpan]) {
        var tokens: [Int32] = [], targets: [Int32] = [], starts: [Int] = [], spans: [SequenceSpan] = []
        for pieces in sequences {
            let ids = pieces.flatMap(\.ids)
            precondition(!ids.isEmpty, "TokenBatch.pack: empty sequence")
            let trained = pieces.flatMap { [Bool](repeating: $0.trained, count: $0.ids.count) }
            starts.append(tokens.count)
            spans.append(SequenceSpan(start: tokens.count, count: ids.count))
            for i in ids.indices {
                tokens.append(ids[i])
                targets.append(i + 1 < ids.count && trained[i + 1] ? ids[i + 1] : -1)
            }
        }
        let weights = targets.map { $0 >= 0 ? Float(1) : 0 }
        return (TokenBatch(tokens: tokens, targets: targets, sequenceStarts: starts), weights, spans)
    }

    /// Packs (context, continuation) pairs for scoring: the returned log-probabilities are those of the
    /// continuation given its context. Each context must be non-empty.
    public static func scoring(_ pairs: [(context: [Int32], continuation: [Int32])]) -> TokenBatch {
        pack(pairs.map { context, continuation in
            precondition(!context.isEmpty, "TokenBatch.scoring: empty context")
            return [(context, false), (continuation, true)]
        }).batch
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

/// A sequence's place in a packed batch.
public struct SequenceSpan: Sendable, Equatable {
    public var start: Int
    public var count: Int
    public init(start: Int, count: Int) {
        self.start = start
        self.count = count
    }
    public var range: Range<Int> { start..<(start + count) }
}
