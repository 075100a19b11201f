import Base

/// Everything that can be wrong with an experiment spec or its inputs. Each case renders as one
/// line naming the file and the place (key path or line), and what was expected.
public enum SpecError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case syntax(file: String, line: Int, column: Int, message: String)
    case invalid(file: String, path: String, expected: String, found: String)
    case unknownKey(file: String, path: String, allowed: [String])
    case missing(file: String, path: String, expected: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason):
            return "\(file): cannot read: \(reason)"
        case .syntax(let file, let line, let column, let message):
            return line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
        case .invalid(let file, let path, let expected, let found):
            return "\(file): \(path): expected \(expected), found \(found)"
        case .unknownKey(let file, let path, let allowed):
            return "\(file): \(path): unknown key (allowed here: \(allowed.joined(separator: ", ")))"
        case .missing(let file, let path, let expected):
            return "\(file): \(path): missing; expected \(expected)"
        }
    }
}

extension SpecError {
    /// A problem found while decoding a spec, in the file `file`.
    public init(_ issue: SpecIssue, file: String) {
        switch issue {
        case let .invalid(path, expected, found): self = .invalid(file: file, path: path, expected: expected, found: found)
        case let .unknownKey(path, allowed): self = .unknownKey(file: file, path: path, allowed: allowed)
        case let .missing(path, expected): self = .missing(file: file, path: path, expected: expected)
        }
    }
}
