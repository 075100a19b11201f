import Model

/// A piece of a training sequence's text and whether the loss covers its tokens.
public struct TextPiece: Sendable, Equatable {
    public var text: String
    public var trained: Bool
    public init(_ text: String, trained: Bool) {
        self.text = text
        self.trained = trained
    }
}

/// Chain of Hindsight (Liu, Sferrazza, Abbeel 2023) as a data transformation: a preference pair becomes
/// the one sequence `prompt + helpful + chosen + unhelpful + rejected`, e.g. with the defaults
/// "{prompt}A helpful answer: {chosen} An unhelpful answer: {rejected}", trained with the SFT loss on
/// both answers (the feedback phrases and the prompt are context only). At evaluation the model is
/// conditioned on the positive feedback: a probe response is scored after `evaluationPrefix(prompt:)`.
/// `chosen` and `rejected` are response texts as the chat template renders them (terminator included).
public struct HindsightTemplate: Codable, Sendable, Equatable {
    /// Placed between the prompt and the chosen answer; also the evaluation prefix.
    public var helpful: String
    /// Placed between the chosen and the rejected answer.
    public var unhelpful: String

    public init(helpful: String = "A helpful answer: ", unhelpful: String = " An unhelpful answer: ") {
        self.helpful = helpful
        self.unhelpful = unhelpful
    }

    /// The five pieces of one training sequence: prompt, helpful, chosen (trained), unhelpful,
    /// rejected (trained). Their concatenation is the sequence's text.
    public func pieces(prompt: String, chosen: String, rejected: String) -> [TextPiece] {
        [TextPiece(prompt, trained: false), TextPiece(helpful, trained: false), TextPiece(chosen, trained: true),
         TextPiece(unhelpful, trained: false), TextPiece(rejected, trained: true)]
    }

    /// The context under which probe responses are scored: the prompt followed by the helpful prefix.
    public func evaluationPrefix(prompt: String) -> String { prompt + helpful }

    /// Tokenises each pair piece by piece (`encode` on each piece, `bos` prepended to the sequence) and packs
    /// the sequences with `TokenBatch.pack`. Encoding piece by piece keeps the loss boundaries on token boundaries.
    public func pack(
        _ pairs: [(prompt: String, chosen: String, rejected: String)], bos: Int32?, encode: (String) -> [Int32]
    ) -> (batch: TokenBatch, weights: [Float], spans: [SequenceSpan]) {
        TokenBatch.pack(pairs.map { p in
            var seq = pieces(prompt: p.prompt, chosen: p.chosen, rejected: p.rejected).map { (ids: encode($0.text), trained: $0.trained) }
            if let bos { seq.insert((ids: [bos], trained: false), at: 0) }
            return seq
        })
    }
}
