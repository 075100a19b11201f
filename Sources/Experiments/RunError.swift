/// Errors of a run after its spec was validated: data, model files, numerical failure, I/O.
public enum RunError: Error, CustomStringConvertible {
    case io(path: String, reason: String)
    case data(file: String, line: Int?, reason: String)
    case model(path: String, reason: String)
    case nonFinite(step: Int, what: String)
    case unknownRun(String)

    public var description: String {
        switch self {
        case .io(let path, let reason): return "\(path): \(reason)"
        case .data(let file, let line, let reason): return line.map { "\(file):\($0): \(reason)" } ?? "\(file): \(reason)"
        case .model(let path, let reason): return "\(path): \(reason)"
        case .nonFinite(let step, let what): return "step \(step): \(what) is not finite"
        case .unknownRun(let name): return "no run named \"\(name)\" in this experiment (see alignscope plan)"
        }
    }
}
