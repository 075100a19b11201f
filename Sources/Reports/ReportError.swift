/// Why a report could not be made. `description` is one line naming the store or file.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    /// The store has no experiment of this name; `available` lists the names it has.
    case experimentNotFound(path: String, name: String, available: [String])
    /// No experiment was named and the store holds none, or several.
    case experimentNotChosen(path: String, available: [String])
    /// A file or folder of the report could not be written.
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .experimentNotFound(let path, let name, let available):
            return "\(path): no experiment named '\(name)'"
                + (available.isEmpty ? "; the store has no experiments" : "; the store has: \(available.joined(separator: ", "))")
        case .experimentNotChosen(let path, let available):
            return available.isEmpty
                ? "\(path): the store has no experiments yet; run one with `alignscope run SPEC` first"
                : "\(path): the store has several experiments (\(available.joined(separator: ", "))); choose one with --experiment NAME"
        case .cannotWrite(let path, let reason):
            return "\(path): cannot write the report: \(reason)"
        }
    }
}
