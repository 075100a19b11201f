/// The Anthropic HH transcript form, "\n\nHuman: {user}\n\nAssistant: {assistant}..." <-> messages.
///
/// Every turn is a marker ("\n\nHuman:" or "\n\nAssistant:"), one space, then the content up to
/// the next marker. `render(parse(t)) == t` for every transcript `parse` accepts, and
/// `parse(render(m)) == m` for user/assistant messages whose contents hold no marker. HH has only
/// two speakers: `render` writes every role other than "assistant" (system included) as Human.
public enum HHTranscript {
    public static let humanMarker = "\n\nHuman:"
    public static let assistantMarker = "\n\nAssistant:"

    /// The messages of a transcript (roles "user" and "assistant"). Throws
    /// `TokenizerError.malformedTranscript` when the text does not start with a marker or a marker
    /// is not followed by a space (a prompt ending in "\n\nAssistant:" is not a transcript: cut
    /// that marker off, or render the prompt with `ChatTemplate.hh`).
    public static func parse(_ text: String) throws -> [ChatMessage] {
        let bytes = Array(text.utf8)
        let markers: [(bytes: [UInt8], role: String)] = [
            (Array(humanMarker.utf8), "user"), (Array(assistantMarker.utf8), "assistant"),
        ]
        func marker(at i: Int) -> (length: Int, role: String)? {
            for m in markers where bytes.count - i >= m.bytes.count {
                if bytes[i..<(i + m.bytes.count)].elementsEqual(m.bytes) { return (m.bytes.count, m.role) }
            }
            return nil
        }
        func characterOffset(_ byteOffset: Int) -> Int {
            String(decoding: bytes[..<byteOffset], as: UTF8.self).count
        }
        guard !bytes.isEmpty else {
            throw TokenizerError.malformedTranscript(offset: 0, reason: "the transcript is empty")
        }
        guard var current = marker(at: 0) else {
            throw TokenizerError.malformedTranscript(
                offset: 0, reason: #"expected the transcript to start with "\n\nHuman:" or "\n\nAssistant:""#)
        }
        var messages: [ChatMessage] = []
        var turnStart = 0
        while true {
            let separator = turnStart + current.length
            guard separator < bytes.count, bytes[separator] == UInt8(ascii: " ") else {
                let name = current.role == "user" ? "Human:" : "Assistant:"
                throw TokenizerError.malformedTranscript(
                    offset: characterOffset(separator), reason: "expected a space after \"\(name)\"")
            }
            let contentStart = separator + 1
            var i = contentStart
            var following: (length: Int, role: String)?
            while i < bytes.count {
                if bytes[i] == 0x0A, let m = marker(at: i) {
                    following = m
                    break
                }
                i += 1
            }
            messages.append(ChatMessage(role: current.role,
                                        content: String(decoding: bytes[contentStart..<i], as: UTF8.self)))
            guard let next = following else { return messages }
            current = next
            turnStart = i
        }
    }

    /// "\n\nHuman: {content}" for user (and any non-assistant) messages, "\n\nAssistant: {content}"
    /// for assistant messages.
    public static func render(_ messages: [ChatMessage]) -> String {
        var out = ""
        for m in messages {
            out += (m.role == "assistant" ? assistantMarker : humanMarker) + " " + m.content
        }
        return out
    }
}
