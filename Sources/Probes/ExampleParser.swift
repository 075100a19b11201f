import Base
import Tokenizer
import Foundation

/// The format-level reading of one JSON line, before the prompt becomes `ChatMessage`s: which prompt
/// the line has and which text fields, with the problems reported against file and line.
struct ParsedLine: Equatable {
    struct Message: Equatable {
        var role: String
        var content: String
    }

    enum Prompt: Equatable {
        /// From `prompt` (string or message list), `messages`, or chat-format `chosen`.
        case messages([Message])
        /// The part of an HH transcript before its last "\n\nAssistant:" (parsed by `HHTranscript`).
        case hhTranscript(String)
    }

    var line: Int
    var prompt: Prompt
    /// The prompt as the file wrote it when it wrote text, and what joins it to a response in the
    /// author's concatenation (`PromptSource.text`, `.separator`).
    var promptText: String?
    var separator = ""
    /// Which form the line was read as (`DataForm`), for `probes show` and `probes audit`.
    var form = DataForm.plainPrompt
    /// `label` of an unpaired line (desirable or not), `rating`/`score` of a rated one.
    var label: Bool?
    var rating: Double?

    /// The field the prompt was read from (for errors about the transcript).
    var promptField: String { form == .explicitHH || form == .explicitHHMarkerInResponses ? "prompt" : "chosen" }
    /// Text response fields (including `chosen`, `rejected`), already cut out of transcripts or message lists.
    var fields: [String: String]
    /// Fields that are present but not usable as a response, with their JSON type ("a number", ...).
    var otherFields: [String: String]
    /// Number fields of the line by name (a pair's `margin`, ...).
    var numbers: [String: Double] = [:]
    /// `origins`: field name -> origin string, as written by `ProbeSet.writeJSONL`.
    var origins: [String: String]
    /// `split` ("train"/"heldout"), as written by `ProbeSet.writeJSONL`.
    var split: String?
    /// Response fields the file wrote without `separator` (an explicit-prompt HH response without the space that
    /// follows "Assistant:"): scored as written, right after the prompt (`ChatTemplate.response(_:after:separated:)`).
    var unseparated: Set<String> = []
    /// What was done with each key of the line, for `probes show` (`describeFields`).
    var notes: [String: String] = [:]
}

/// The forms a data line is read as (docs/REFERENCE.md "Data formats").
public enum DataForm: String, Sendable, CaseIterable {
    case plainPrompt = "plain prompt"
    case promptMessages = "prompt as messages"
    case chat = "chat messages"
    case explicitHH = "explicit-prompt HH"
    case explicitHHMarkerInResponses = "explicit-prompt HH, marker in the responses"
    case implicitHH = "implicit-prompt HH transcripts"
    case implicitMessages = "implicit-prompt message lists"
    /// `{prompt, completion, label: true|false}`: thumbs-up/down feedback, no pair.
    case unpaired = "unpaired (completion, label)"
    /// `{prompt, response|completion, rating|score: number}`.
    case rated = "rated (response, rating)"
    /// TRL's prompt-completion form `{prompt, completion}` (no label): SFT with `objective.target: "completion"`.
    case promptCompletion = "prompt-completion"
    /// TRL's language-modelling form `{text}`: no prompt; SFT with `target: "text"`, `loss_on: "all"`.
    case text = "language modelling (text)"
}

/// Keys that describe the line rather than hold a response.
let reservedKeys: Set<String> = ["prompt", "messages", "origins", "split", "idx"]

/// The marker that starts every HH transcript, and the one before each assistant turn.
private let humanMarker = HHTranscript.humanMarker
private let hhAssistantMarker = HHTranscript.assistantMarker

/// Parses JSONL text (one object per line, blank lines skipped) into `ParsedLine`s; `file` names the
/// source in errors. The format is detected per line:
/// - `prompt` (string = one user turn, or messages ending with a user turn) plus response fields;
/// - `messages`: a chat whose last (assistant) turn is `chosen`;
/// - `chosen` (and `rejected`, ...) as raw HH transcripts or as message lists sharing one prompt.
func parseJSONLines(_ text: String, file: String) throws(ProbesError) -> [ParsedLine] {
    var parsed: [ParsedLine] = []
    var lineNumber = 0
    for (number, line) in TextFile.lines(text) {
        lineNumber = number
        if line.allSatisfy({ $0.isWhitespace }) { continue }
        let value: JSONValue
        do {
            value = try JSONValue.parse(line)
        } catch {
            throw .invalidJSON(file: file, line: lineNumber, reason: error.message)
        }
        guard case let .object(object) = value else {
            throw .notAnObject(file: file, line: lineNumber, found: value.typeName)
        }
        parsed.append(try LineReader(file: file, line: lineNumber, object: object).read())
    }
    if parsed.isEmpty { throw .emptyFile(file: file) }
    return parsed
}

private struct LineReader {
    var file: String
    var line: Int
    var object: [String: JSONValue]

    func read() throws(ProbesError) -> ParsedLine {
        var result = try readLine()
        describeFields(&result)
        return result
    }

    private func readLine() throws(ProbesError) -> ParsedLine {
        var result = ParsedLine(line: line, prompt: .messages([]), fields: [:], otherFields: [:],
                                origins: try readOrigins(), split: try readSplit())
        var responseKeys = Set(object.keys).subtracting(reservedKeys)
        let feedback = try readFeedback(into: &result)
        responseKeys.subtract(feedback)
        if case let .string(text) = object["prompt"], text.hasPrefix(humanMarker) {
            try readExplicitHH(text, keys: responseKeys, into: &result)
        } else if let prompt = object["prompt"] {
            let messages = try promptMessages(prompt)
            if case let .string(text) = prompt { result.promptText = text } else { result.form = .promptMessages }
            result.prompt = .messages(messages)
            // With an explicit prompt, `messages` (if any) is just another message-list response.
            if object["messages"] != nil { responseKeys.insert("messages") }
            for key in responseKeys.sorted() {
                try readResponse(key, promptMessages: messages, reference: "prompt", into: &result)
            }
        } else if let chat = object["messages"] {
            if object["chosen"] != nil {
                throw .invalidMessages(file: file, line: line, field: "chosen",
                                       reason: "given twice, by \"messages\" and by \"chosen\"")
            }
            let (prompt, response) = try splitChat(chat, field: "messages")
            result.form = .chat
            result.prompt = .messages(prompt)
            result.fields["chosen"] = response
            for key in responseKeys.sorted() {
                try readResponse(key, promptMessages: prompt, reference: "messages", into: &result)
            }
        } else if object["chosen"] == nil, case let .string(text)? = object["text"] {
            // TRL's language-modelling form: the whole text, no prompt (`DataForm.text`)
            result.form = .text
            result.promptText = ""
            result.fields["text"] = text
            for key in responseKeys.sorted() where key != "text" {
                try readResponse(key, promptMessages: nil, reference: "text", into: &result)
            }
        } else if let chosen = object["chosen"] {
            switch chosen {
            case let .string(transcript):
                try readImplicitHH(transcript, keys: responseKeys, into: &result)
            case .array:
                let (prompt, response) = try splitChat(chosen, field: "chosen")
                result.form = .implicitMessages
                result.prompt = .messages(prompt)
                result.fields["chosen"] = response
                for key in responseKeys.sorted() where key != "chosen" {
                    try readResponse(key, promptMessages: prompt, reference: "chosen", into: &result)
                }
            default:
                throw .wrongType(file: file, line: line, field: "chosen",
                                 expected: "an HH transcript string or a list of messages", found: chosen.typeName)
            }
        } else {
            throw .unknownFormat(file: file, line: line)
        }
        if result.label != nil || result.rating != nil {
            result.form = result.label != nil ? .unpaired : .rated
            let key = object["completion"] != nil ? "completion" : "response"
            guard result.fields[key] != nil else {
                throw .wrongType(file: file, line: line, field: key, expected: "a string or a list of messages",
                                 found: result.otherFields[key] ?? "nothing")
            }
            return result
        }
        if result.form == .text { return result }
        if result.fields["chosen"] == nil, object["chosen"] == nil, result.fields["completion"] != nil, object["prompt"] != nil {
            result.form = .promptCompletion
            return result
        }
        guard result.fields["chosen"] != nil else {
            if let found = result.otherFields["chosen"] {
                throw .wrongType(file: file, line: line, field: "chosen",
                                 expected: "a string or a list of messages", found: found)
            }
            throw .missingField(file: file, line: line, field: "chosen")
        }
        return result
    }

    /// A response field: a string, or a message list that repeats the prompt and ends with the
    /// assistant's response. Anything else is kept aside as an unusable field (an error only if mapped).
    private func readResponse(_ key: String, promptMessages: [ParsedLine.Message]?, reference: String,
                              into result: inout ParsedLine) throws(ProbesError) {
        let value = object[key]!
        switch value {
        case let .string(text):
            result.fields[key] = text
        case let .array(items) where promptMessages != nil && items.count == 1 && isAssistantMessage(items[0]):
            // TRL's conversational form: the prompt as messages, each response one assistant message.
            result.fields[key] = try messageList(value, field: key)[0].content
        case let .array(items) where !items.isEmpty && items.allSatisfy(looksLikeMessage):
            let (prompt, response) = try splitChat(value, field: key)
            if let promptMessages, prompt != promptMessages {
                throw .promptMismatch(file: file, line: line, field: key, reference: reference)
            }
            result.fields[key] = response
        default:
            result.otherFields[key] = value.typeName
            if case let .number(x) = value { result.numbers[key] = x }
        }
    }

    private func isAssistantMessage(_ value: JSONValue) -> Bool {
        guard case let .object(fields) = value, case .string("assistant")? = fields["role"] else { return false }
        return true
    }

    private func looksLikeMessage(_ value: JSONValue) -> Bool {
        guard case let .object(fields) = value else { return false }
        return fields["role"] != nil && fields["content"] != nil
    }

    /// `prompt`: a string (one user turn) or a non-empty message list ending with a user turn.
    private func promptMessages(_ value: JSONValue) throws(ProbesError) -> [ParsedLine.Message] {
        switch value {
        case let .string(text):
            try checkPlainPrompt(text)
            return [ParsedLine.Message(role: "user", content: text)]
        case .array:
            let messages = try messageList(value, field: "prompt")
            guard messages.last?.role == "user" else {
                throw .invalidMessages(file: file, line: line, field: "prompt",
                                       reason: "expected the last message to be a \"user\" turn, found \"\(messages.last!.role)\"")
            }
            return messages
        default:
            throw .wrongType(file: file, line: line, field: "prompt",
                             expected: "a string or a list of messages", found: value.typeName)
        }
    }

    /// A chat ending with an assistant turn: (the messages before it, its content). The prompt part
    /// must be non-empty and end with a user turn.
    private func splitChat(_ value: JSONValue, field: String) throws(ProbesError) -> ([ParsedLine.Message], String) {
        var messages = try messageList(value, field: field)
        guard messages.last!.role == "assistant" else {
            throw .invalidMessages(file: file, line: line, field: field,
                                   reason: "expected the last message to be an \"assistant\" turn, found \"\(messages.last!.role)\"")
        }
        let response = messages.removeLast().content
        guard messages.last?.role == "user" else {
            throw .invalidMessages(file: file, line: line, field: field,
                                   reason: "expected a \"user\" turn before the last \"assistant\" turn")
        }
        return (messages, response)
    }

    /// A non-empty array of `{role, content}` objects with string values and no other keys.
    private func messageList(_ value: JSONValue, field: String) throws(ProbesError) -> [ParsedLine.Message] {
        guard case let .array(items) = value else {
            throw .wrongType(file: file, line: line, field: field, expected: "a list of messages", found: value.typeName)
        }
        guard !items.isEmpty else {
            throw .invalidMessages(file: file, line: line, field: field, reason: "expected at least one message, found an empty list")
        }
        var messages: [ParsedLine.Message] = []
        for (i, item) in items.enumerated() {
            let path = "\(field)[\(i)]"
            guard case let .object(fields) = item else {
                throw .wrongType(file: file, line: line, field: path, expected: "an object {role, content}", found: item.typeName)
            }
            if let key = fields.keys.sorted().first(where: { $0 != "role" && $0 != "content" }) {
                throw .invalidMessages(file: file, line: line, field: path, reason: "unknown key \"\(key)\", expected \"role\" and \"content\"")
            }
            var strings: [String] = []
            for key in ["role", "content"] {
                guard let v = fields[key] else { throw .missingField(file: file, line: line, field: "\(path).\(key)") }
                guard case let .string(s) = v else {
                    throw .wrongType(file: file, line: line, field: "\(path).\(key)", expected: "a string", found: v.typeName)
                }
                strings.append(s)
            }
            messages.append(ParsedLine.Message(role: strings[0], content: strings[1]))
        }
        return messages
    }

    /// Explicit-prompt HH (as TRL, the DPO reference code and the learning-dynamics probe sets write it):
    /// `prompt` is a transcript ending with "\n\nAssistant:" and each response starts with the one space
    /// that follows the marker; or (a published variant) the prompt stops before the final marker and
    /// each response starts with "\n\nAssistant: ". The prompt's turns become messages; a response loses
    /// exactly that prefix, so that under `hh` the scored text is the author's `prompt + response`.
    private func readExplicitHH(_ text: String, keys: Set<String>, into result: inout ParsedLine) throws(ProbesError) {
        let body: String, separator: String
        if text.hasSuffix(hhAssistantMarker) {
            body = String(text.dropLast(hhAssistantMarker.count))
            separator = " "
        } else {
            body = text
            separator = hhAssistantMarker + " "
            guard case let .string(first)? = object["chosen"] ?? object["completion"] ?? object["response"], first.hasPrefix(separator) else {
                throw .invalidMessages(file: file, line: line, field: "prompt", reason:
                    "an HH transcript prompt must end with \"\\n\\nAssistant:\" (or each response must start with \"\\n\\nAssistant: \")")
            }
        }
        result.prompt = .hhTranscript(body)
        result.form = separator == " " ? .explicitHH : .explicitHHMarkerInResponses
        result.promptText = text
        result.separator = separator
        for key in keys.sorted() where key != "prompt" {
            try readHHResponse(key, separator: separator, into: &result)
        }
    }

    /// Implicit-prompt HH: `chosen` (and `rejected`) are whole transcripts. The prompt is their longest
    /// common prefix cut after its last "\n\nAssistant:" (as TRL's prompt extraction does), so that a
    /// response holding "\n\nHuman:" (the model speaking for the human) stays one response; with
    /// `chosen` alone, the prompt ends at its last "\n\nAssistant:". Other transcript fields must
    /// start with the same prompt.
    private func readImplicitHH(_ chosen: String, keys: Set<String>, into result: inout ParsedLine) throws(ProbesError) {
        guard chosen.hasPrefix(humanMarker) else {
            throw .invalidMessages(file: file, line: line, field: "chosen",
                                   reason: "the line has no \"prompt\" or \"messages\" field, so \"chosen\" must be a whole HH transcript \"\\n\\nHuman: ...\\n\\nAssistant: ...\"")
        }
        var shared = Array(chosen.utf8)
        if case let .string(rejected)? = object["rejected"], rejected.hasPrefix(humanMarker) {
            let r = Array(rejected.utf8)
            var n = 0
            while n < min(shared.count, r.count), shared[n] == r[n] { n += 1 }
            shared = Array(shared[..<n])
        }
        let marker = Array(hhAssistantMarker.utf8)
        var end = shared.count - marker.count
        while end >= 0, !shared[end..<(end + marker.count)].elementsEqual(marker) { end -= 1 }
        if end <= 0, case let .string(rejected)? = object["rejected"], rejected.hasPrefix(humanMarker) {
            throw .promptMismatch(file: file, line: line, field: "rejected", reference: "chosen")
        }
        guard end > 0 else {
            throw .invalidMessages(file: file, line: line, field: "chosen",
                                   reason: "expected a transcript with an \"\\n\\nAssistant:\" turn after its prompt (shared by \"chosen\" and \"rejected\")")
        }
        let promptText = String(decoding: shared[..<(end + marker.count)], as: UTF8.self)
        result.prompt = .hhTranscript(String(decoding: shared[..<end], as: UTF8.self))
        result.form = .implicitHH
        result.promptText = promptText
        result.separator = " "
        for key in keys.sorted() {
            guard case let .string(text) = object[key]!, text.hasPrefix(humanMarker) else {
                try readResponse(key, promptMessages: nil, reference: "chosen", into: &result)
                continue
            }
            guard text.hasPrefix(promptText) else {
                throw .promptMismatch(file: file, line: line, field: key, reference: "chosen")
            }
            let rest = String(text.dropFirst(promptText.count))
            guard rest.hasPrefix(" ") else {
                throw .invalidMessages(file: file, line: line, field: key, reason: "expected one space after the prompt's final \"\\n\\nAssistant:\"")
            }
            result.fields[key] = String(rest.dropFirst())
        }
    }

    /// A response of an explicit-prompt HH line: a string that starts with `separator` loses it (the template
    /// puts it back); one written without the one space is kept as written and scored right after the prompt
    /// (`unseparated`), as the DPO reference code and the learning-dynamics code score it (prompt and
    /// response tokenised separately, ids concatenated). In the variant whose responses carry
    /// "\n\nAssistant: ", a string without it is no response (it would follow the human's turn) and is kept aside
    /// with that reason, an error only if a category maps it.
    private func readHHResponse(_ key: String, separator: String, into result: inout ParsedLine) throws(ProbesError) {
        guard case let .string(text) = object[key]! else {
            try readResponse(key, promptMessages: nil, reference: "prompt", into: &result)
            return
        }
        if text.hasPrefix(separator) {
            result.fields[key] = String(text.dropFirst(separator.count))
        } else if separator == " " {
            result.fields[key] = text
            result.unseparated.insert(key)
        } else if ["chosen", "rejected", "completion", "response"].contains(key) {
            throw .invalidMessages(file: file, line: line, field: key, reason: #"expected the response to start with "\n\nAssistant: " (explicit-prompt HH whose prompt stops before the final marker)"#)
        } else {
            result.otherFields[key] = #"a string without the leading "\n\nAssistant: " of an HH response (the prompt stops before that marker)"#
        }
    }

    /// Says, for every key of the line, what was done with it (`ParsedLine.notes`, shown by `probes show`).
    private func describeFields(_ result: inout ParsedLine) {
        let feedback: Set<String> = result.label != nil || result.rating != nil ? ["label", "rating", "score"] : []
        for key in object.keys {
            let note: String
            if let text = result.fields[key] {
                if result.form == .implicitHH, case let .string(raw)? = object[key], raw.hasPrefix(humanMarker) {
                    note = "response: the transcript after the prompt it shares with \"chosen\" (and the one space after \"Assistant:\")"
                } else if result.unseparated.contains(key) {
                    note = "response, written without the leading space: scored as written, right after the prompt"
                } else if !result.separator.isEmpty, case let .string(raw)? = object[key], raw.count > text.count {
                    note = "response; its leading \(jsonQuoted(result.separator)) removed (put back when it is scored)"
                } else if case .array? = object[key] {
                    note = "response, the last assistant turn of a message list"
                } else if result.form == .text && key == "text" {
                    note = "the whole text (language modelling: no prompt)"
                } else if key == "messages" && result.form == .chat {
                    note = "the chat: its turns before the last are the prompt, the last assistant turn is \"chosen\""
                } else {
                    note = "response, as written"
                }
            } else if let found = result.otherFields[key] {
                note = "not a response: " + found
            } else if key == "prompt" {
                note = "the prompt (\(result.form.rawValue))"
            } else if key == "messages" {
                note = "the chat: its turns before the last are the prompt, the last assistant turn is \"chosen\""
            } else if feedback.contains(key) {
                note = key == "label" ? "feedback: desirable or not" : "feedback: the rating"
            } else if key == "origins" || key == "split" || key == "idx" {
                note = "probe-set metadata (\(key))"
            } else {
                note = "not a response"
            }
            result.notes[key] = note
        }
    }

    /// A plain-text prompt must not hold a template's markers it cannot be read as: ChatML markers, or
    /// HH markers in text that is not a transcript starting with "\n\nHuman:".
    private func checkPlainPrompt(_ text: String) throws(ProbesError) {
        for marker in ["<|im_start|>", "<|im_end|>"] where text.contains(marker) {
            throw .invalidMessages(file: file, line: line, field: "prompt", reason:
                "holds the ChatML marker \(marker) in a plain prompt; give the turns as a list of messages [{\"role\", \"content\"}]")
        }
        for marker in [humanMarker, hhAssistantMarker] where text.contains(marker) {
            throw .invalidMessages(file: file, line: line, field: "prompt", reason:
                "holds the HH marker \(marker.debugDescription) but does not start with \"\\n\\nHuman:\"; expected an HH transcript \"\\n\\nHuman: ...\\n\\nAssistant:\" or plain text")
        }
    }

    /// Unpaired and rated lines (no `chosen`, a `completion` or `response`, and a `label` or a `rating` /
    /// `score`): reads the feedback and returns its keys (they are no responses). Other lines: nothing.
    private func readFeedback(into result: inout ParsedLine) throws(ProbesError) -> Set<String> {
        guard object["chosen"] == nil, object["messages"] == nil, object["completion"] != nil || object["response"] != nil else { return [] }
        var keys = Set<String>()
        if let value = object["label"] {
            guard case let .bool(b) = value else {
                throw .wrongType(file: file, line: line, field: "label", expected: "true or false", found: value.typeName)
            }
            result.label = b
            keys.insert("label")
        }
        for key in ["rating", "score"] {
            guard let value = object[key] else { continue }
            guard case let .number(x) = value, x.isFinite else {
                throw .wrongType(file: file, line: line, field: key, expected: "a number", found: value.typeName)
            }
            result.rating = x
            keys.insert(key)
        }
        if !keys.isEmpty, object["prompt"] == nil {
            throw .missingField(file: file, line: line, field: "prompt")
        }
        return keys
    }

    private func readOrigins() throws(ProbesError) -> [String: String] {
        guard let value = object["origins"] else { return [:] }
        guard case let .object(fields) = value else {
            throw .wrongType(file: file, line: line, field: "origins", expected: "an object {field: origin}", found: value.typeName)
        }
        var origins: [String: String] = [:]
        for (key, v) in fields {
            guard case let .string(s) = v else {
                throw .wrongType(file: file, line: line, field: "origins.\(key)", expected: "a string", found: v.typeName)
            }
            origins[key] = s
        }
        return origins
    }

    private func readSplit() throws(ProbesError) -> String? {
        guard let value = object["split"] else { return nil }
        guard case let .string(s) = value, s == "train" || s == "heldout" else {
            throw .wrongType(file: file, line: line, field: "split", expected: "\"train\" or \"heldout\"", found: value.canonical)
        }
        return s
    }
}
