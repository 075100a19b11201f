/// A prompt and a response as token ids, the way every score, training sequence and sample in AlignScope is made:
/// the prompt rendered by the chat template and the response (with its template terminator) tokenised separately,
/// no BOS, ids concatenated. The one place for that, for the rule that a response must leave room for a prompt
/// token (`pair`), and for the tokens that end a response (`stopTokens`).
public struct ChatEncoder {
    public enum Failure: Error, CustomStringConvertible, Equatable, Sendable {
        /// Template `raw` scores the prompt as the file writes it; this prompt is a list of messages.
        case rawNeedsText
        /// A response with no token (an empty response under a template that adds nothing).
        case emptyResponse
        /// A response of `tokens` tokens cannot fit `maxLength` with a prompt token before it.
        case responseTooLong(tokens: Int, maxLength: Int, what: String)

        public var description: String {
            switch self {
            case .rawNeedsText:
                return "template \"raw\" scores the prompt as the file writes it, but this line gives it as a list of messages; use template \"chatml\" or \"hh\", or write the prompt as text"
            case .emptyResponse:
                return "empty response"
            case let .responseTooLong(tokens, maxLength, what):
                return "\(what) is \(tokens) tokens, train.max_length is \(maxLength): it cannot fit with its prompt"
            }
        }
    }

    public let tokenizer: any TextTokenizer
    public let template: ChatTemplate

    public init(tokenizer: any TextTokenizer, template: ChatTemplate) {
        self.tokenizer = tokenizer
        self.template = template
    }

    /// The prompt's scored text under `template` (`ChatTemplate.prompt(_:)`); `raw` needs the prompt's own text.
    /// No tokenizer is involved.
    public static func promptText(_ source: PromptSource, template: ChatTemplate) throws(Failure) -> String {
        guard let text = template.prompt(source) else { throw .rawNeedsText }
        return text
    }

    /// The prompt's scored text under this encoder's template.
    public func promptText(_ source: PromptSource) throws(Failure) -> String {
        try Self.promptText(source, template: template)
    }

    /// The prompt's ids.
    public func prompt(_ source: PromptSource) throws(Failure) -> [Int32] {
        tokenizer.encode(try promptText(source))
    }

    /// A response's ids after `source` (`separated` false: the file wrote it without the prompt's separator).
    public func response(_ text: String, after source: PromptSource, separated: Bool = true) -> [Int32] {
        tokenizer.encode(template.response(text, after: source, separated: separated))
    }

    /// Checks that a response of these ids can be scored within `maxLength` (at least one prompt token before it).
    public static func checkFits(_ response: [Int32], maxLength: Int, what: String = "response") throws(Failure) {
        guard response.count < maxLength else { throw .responseTooLong(tokens: response.count, maxLength: maxLength, what: what) }
    }

    /// A (prompt, response) pair within `maxLength`: an empty response or one that leaves no room for a prompt token
    /// is refused; a prompt longer than the room left is cut from the left (as is usual for HH). `cut`: tokens removed.
    public func pair(prompt source: PromptSource, response text: String, separated: Bool = true,
                     maxLength: Int) throws(Failure) -> (prompt: [Int32], response: [Int32], cut: Int) {
        let responseIDs = response(text, after: source, separated: separated)
        var promptIDs = try prompt(source)
        guard !responseIDs.isEmpty else { throw .emptyResponse }
        try Self.checkFits(responseIDs, maxLength: maxLength)
        let room = maxLength - responseIDs.count
        var cut = 0
        if promptIDs.count > room {
            cut = promptIDs.count - room
            promptIDs.removeFirst(cut)
        }
        return (promptIDs, responseIDs, cut)
    }

    /// The tokens that end a response of a model with this tokenizer: its end-of-text (or end-of-turn) token, and
    /// ChatML's `<|im_end|>` when the vocabulary has it as one token.
    public static func stopTokens(_ tokenizer: any TextTokenizer) -> Set<Int32> {
        var stop: Set<Int32> = [tokenizer.eos]
        let end = tokenizer.encode("<|im_end|>")
        if end.count == 1 { stop.insert(end[0]) }
        return stop
    }
}
