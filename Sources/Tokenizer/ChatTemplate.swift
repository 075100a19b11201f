/// One turn of a conversation. Roles are "system", "user" and "assistant".
public struct ChatMessage: Codable, Sendable, Equatable, Hashable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// How a conversation becomes text. `prompt` is everything up to where the assistant's response
/// starts; `response` is the response text with its terminator. Scoring tokenises the two
/// separately and concatenates the ids. A template is its kind and, for ChatML, the system message it puts first
/// (`system`, the spec key of that name); written in specs, on the command line and by its Codable conformance (the
/// standard library's, through `rawValue`) by its kind's name only: a spec's `system` is its own key.
public struct ChatTemplate: RawRepresentable, Codable, Sendable, CaseIterable, Hashable {
    public enum Kind: String, Sendable, CaseIterable {
        /// SmolLM2's own template (the `tokenizer.chat_template` of its GGUF).
        case chatml
        /// The raw Anthropic HH transcript form "\n\nHuman: ...\n\nAssistant: ...".
        case hh
        /// Prompt and response exactly as the data file gives them, concatenated: no markers, no space
        /// added or removed (what the DPO reference code and the learning-dynamics code score). Uses the
        /// prompt's own text (`PromptSource.text`); a prompt given only as messages has none.
        case raw
    }

    public var kind: Kind
    /// ChatML's system message when a conversation does not start with one: nil is SmolLM2's default
    /// (`defaultSystemMessage`), "" none. Only ChatML has a system turn.
    public var system: String?

    public init(kind: Kind, system: String? = nil) {
        self.kind = kind
        self.system = system
    }

    public static let chatml = ChatTemplate(kind: .chatml)
    public static let hh = ChatTemplate(kind: .hh)
    public static let raw = ChatTemplate(kind: .raw)
    public static var allCases: [ChatTemplate] { Kind.allCases.map { ChatTemplate(kind: $0) } }

    public init?(rawValue: String) {
        guard let kind = Kind(rawValue: rawValue) else { return nil }
        self.init(kind: kind)
    }

    /// The kind's name ("chatml", "hh", "raw").
    public var rawValue: String { kind.rawValue }

    // kind and system message both (RawRepresentable's own == would compare the names only)
    public static func == (a: ChatTemplate, b: ChatTemplate) -> Bool { a.kind == b.kind && a.system == b.system }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        hasher.combine(system)
    }

    /// This template with `system` as ChatML's system message (nil: the default).
    public func with(system: String?) -> ChatTemplate { ChatTemplate(kind: kind, system: system) }

    /// SmolLM2's default system message, used when a conversation does not start with one.
    public static let defaultSystemMessage = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    /// ChatML: "<|im_start|>{role}\n{content}<|im_end|>\n" per message, the system message (`system`, by default
    /// SmolLM2's; none when it is "") first when the first message is not a system message, then
    /// "<|im_start|>assistant\n". HH: `HHTranscript.render(messages)` followed by "\n\nAssistant:".
    public func prompt(_ messages: [ChatMessage]) -> String {
        switch kind {
        case .chatml:
            var out = ""
            let system = self.system ?? Self.defaultSystemMessage
            if messages.first?.role != "system" && !system.isEmpty {
                out += Self.chatmlTurn(ChatMessage(role: "system", content: system))
            }
            for m in messages { out += Self.chatmlTurn(m) }
            return out + "<|im_start|>assistant\n"
        case .hh:
            return HHTranscript.render(messages) + HHTranscript.assistantMarker
        case .raw:
            return messages.map(\.content).joined()
        }
    }

    /// ChatML: "{text}<|im_end|>". HH: " {text}". Raw: "{text}".
    public func response(_ text: String) -> String {
        switch kind {
        case .chatml: text + "<|im_end|>"
        case .hh: " " + text
        case .raw: text
        }
    }

    /// The scored prompt text of a prompt read from a data file. ChatML and HH render its messages; raw
    /// uses the text the file gave (nil when the file gave the prompt only as a list of messages that is
    /// more than one user turn).
    public func prompt(_ source: PromptSource) -> String? {
        switch kind {
        case .chatml, .hh: return prompt(source.messages)
        case .raw:
            if let text = source.text { return text }
            if source.messages.count == 1, source.messages[0].role == "user" { return source.messages[0].content }
            return nil
        }
    }

    /// The scored text of a response to `source`: raw joins it with the file's own separator (the one
    /// space an HH transcript puts after "\n\nAssistant:", say), the others as `response(_:)`.
    /// `separated` false: the file wrote this response without the separator (an explicit-prompt HH response
    /// without its leading space); hh and raw then score it exactly as written, right after the prompt, as
    /// the file's authors did (prompt and response tokenised separately, ids concatenated). ChatML, whose
    /// response starts on a line of its own, is the same either way.
    public func response(_ text: String, after source: PromptSource, separated: Bool = true) -> String {
        switch kind {
        case .raw: return (separated ? source.separator : "") + text
        case .hh: return separated ? response(text) : text
        case .chatml: return response(text)
        }
    }

    private static func chatmlTurn(_ m: ChatMessage) -> String {
        "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n"
    }
}

/// A prompt as a data file gives it: its turns, and, when the file wrote the prompt as text, that text
/// and the text that joins it to a response in the author's concatenation (`"\n\nHuman: Hi\n\nAssistant:"`
/// and `" "` for an HH transcript; the string and `""` for a plain prompt).
public struct PromptSource: Sendable, Equatable, Hashable {
    public var messages: [ChatMessage]
    public var text: String?
    public var separator: String

    public init(messages: [ChatMessage], text: String? = nil, separator: String = "") {
        self.messages = messages
        self.text = text
        self.separator = separator
    }
}
