import Base

/// Errors of the Probes module; each description is one line naming the file and line, the category,
/// or the command, and what was expected.
public enum ProbesError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read.
    case unreadable(file: String, reason: String)
    /// The file could not be written.
    case unwritable(file: String, reason: String)
    /// The bytes at `offset` are not valid UTF-8.
    case invalidText(file: String, offset: Int)
    /// The file has no JSON lines at all.
    case emptyFile(file: String)
    /// A line is not valid JSON.
    case invalidJSON(file: String, line: Int, reason: String)
    /// A line is valid JSON but not an object.
    case notAnObject(file: String, line: Int, found: String)
    /// A line has none of `prompt`, `messages`, `chosen`.
    case unknownFormat(file: String, line: Int)
    /// A field that is needed (mapped in the spec, or required by the format) is absent.
    case missingField(file: String, line: Int, field: String)
    /// A field has the wrong JSON type.
    case wrongType(file: String, line: Int, field: String, expected: String, found: String)
    /// A prompt or message list is malformed (empty, not ending with the right role, ...).
    case invalidMessages(file: String, line: Int, field: String, reason: String)
    /// Two transcripts or message lists of one line do not start with the same prompt.
    case promptMismatch(file: String, line: Int, field: String, reference: String)
    /// A category cannot be built (too few probes for a derangement, no tokenizer vocabulary, ...).
    case category(name: String, reason: String)
    /// An external generator command could not be started or exited with a non-zero status.
    case commandFailed(command: String, reason: String)
    /// An external generator command was stopped because the user stopped AlignScope (SIGINT/SIGTERM).
    case interrupted(command: String)
    /// An external generator command wrote a line that is not the expected JSON answer.
    case commandOutput(command: String, line: Int, reason: String)
    /// The generation cache file is unreadable or malformed.
    case cache(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read the file (\(reason))"
        case let .unwritable(file, reason):
            return "\(file): cannot write the file (\(reason))"
        case let .invalidText(file, offset):
            return "\(file): invalid UTF-8 at byte offset \(offset); expected UTF-8 text"
        case let .emptyFile(file):
            return "\(file): empty file, expected one JSON object per line"
        case let .invalidJSON(file, line, reason):
            return "\(file):\(line): invalid JSON, expected one JSON object per line (\(reason))"
        case let .notAnObject(file, line, found):
            return "\(file):\(line): expected a JSON object, found \(found)"
        case let .unknownFormat(file, line):
            return "\(file):\(line): expected a \"prompt\", \"messages\" or \"chosen\" field"
        case let .missingField(file, line, field):
            return "\(file):\(line): missing field \"\(field)\""
        case let .wrongType(file, line, field, expected, found):
            return "\(file):\(line): field \"\(field)\" must be \(expected), found \(found)"
        case let .invalidMessages(file, line, field, reason):
            return "\(file):\(line): field \"\(field)\": \(reason)"
        case let .promptMismatch(file, line, field, reference):
            return "\(file):\(line): \"\(field)\" and \"\(reference)\" do not share the same prompt"
        case let .category(name, reason):
            return "category \"\(name)\": \(reason)"
        case let .commandFailed(command, reason):
            return "generator command \(command): \(reason)"
        case let .interrupted(command):
            return "generator command \(command): stopped (AlignScope was interrupted)"
        case let .commandOutput(command, line, reason):
            return "generator command \(command): output line \(line): \(reason)"
        case let .cache(file, reason):
            return "\(file): bad generation cache (\(reason))"
        }
    }
}

extension ProbesError {
    /// A file error of `TextFile` as the loaders report it.
    init(_ error: TextFile.FileError) {
        switch error {
        case let .unreadable(file, reason): self = .unreadable(file: file, reason: reason)
        case let .invalidText(file, offset): self = .invalidText(file: file, offset: offset)
        }
    }

    /// A failure of a generator command as the generators report it.
    init(_ error: CommandError) {
        switch error {
        case let .failed(command, reason): self = .commandFailed(command: command, reason: reason)
        case let .interrupted(command): self = .interrupted(command: command)
        case let .output(command, line, reason): self = .commandOutput(command: command, line: line, reason: reason)
        }
    }
}
