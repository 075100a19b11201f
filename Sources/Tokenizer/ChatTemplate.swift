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
/// separately and concatenates the ids.
public enum ChatTemplate: String, Codable, Sendable, CaseIterable {
    /// SmolLM2's own template (the `tokenizer.chat_template` of its GGUF).
    case chatml
    /// The raw Anthropic HH transcript form "\n\nHuman: ...\n\nAssistant: ...".
    case hh

    /// SmolLM2's default system message, used when a conversation does not start with one.
    public static let defaultSystemMessage = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    /// ChatML: "<|im_start|>{role}\n{content}<|im_end|>\n" per message, the default system message
    /// first when the first message is not a system message, then "<|im_start|>assistant\n".
    /// HH: `HHTranscript.render(messages)` followed by "\n\nAssistant:".
    public func prompt(_ messages: [ChatMessage]) -> String {
        switch self {
        case .chatml:
            var out = ""
            if messages.first?.role != "system" {
                out += Self.chatmlTurn(ChatMessage(role: "system", content: Self.defaultSystemMessage))
            }
            for m in messages { out += Self.chatmlTurn(m) }
            return out + "<|im_start|>assistant\n"
        case .hh:
            return HHTranscript.render(messages) + HHTranscript.assistantMarker
        }
    }

    /// ChatML: "{text}<|im_end|>". HH: " {text}".
    public func response(_ text: String) -> String {
        switch self {
        case .chatml: text + "<|im_end|>"
        case .hh: " " + text
        }
    }

    private static func chatmlTurn(_ m: ChatMessage) -> String {
        "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n"
    }
}
