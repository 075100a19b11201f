/// A Hugging Face model directory that cannot be read: one line naming the file (and the key or tensor)
/// and what was expected.
public enum HFError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file is missing, unreadable or malformed as a whole.
    case file(path: String, reason: String)
    /// A key of a JSON file, or a tensor of a safetensors file, is missing or has a value we cannot use.
    case entry(path: String, key: String, reason: String)

    public var description: String {
        switch self {
        case let .file(path, reason): return "\(path): \(reason)"
        case let .entry(path, key, reason): return "\(path): \(key): \(reason)"
        }
    }

    /// The file the error is about.
    public var path: String {
        switch self {
        case let .file(path, _), let .entry(path, _, _): return path
        }
    }
}
