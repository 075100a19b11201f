/// Errors of a run after its spec was validated: model files, numerical failure, I/O (a data file's line is a
/// `DataError`).
public enum RunError: Error, CustomStringConvertible {
    case io(path: String, reason: String)
    case model(path: String, reason: String)
    case nonFinite(step: Int, what: String)
    case unknownRun(String)
    /// A run would resume from a checkpoint, but a file it reads changed since it started.
    case inputChanged(run: String, input: String, path: String, checkpoint: String)
    /// A run reached its last step but the store lacks some of its rows.
    case incomplete(run: String, detail: String)
    /// The store holds an experiment of this name with another spec (`RunExecutor.experimentVersion`).
    case specConflict(store: String, name: String, stored: String, given: String, file: String, ways: String)

    public var description: String {
        switch self {
        case .io(let path, let reason): return "\(path): \(reason)"
        case .model(let path, let reason): return "\(path): \(reason)"
        case .nonFinite(let step, let what): return "step \(step): \(what) is not finite"
        case .unknownRun(let name): return "no run named \"\(name)\" in this experiment (see alignscope plan)"
        case .inputChanged(let run, let input, let path, let checkpoint):
            return "\(path): the \(input) file changed since run \(run) started; its checkpoint would mix two inputs in one run (to start the run over with the new file, delete \(checkpoint))"
        case .incomplete(let run, let detail):
            return "run \(run) is incomplete: \(detail)"
        case let .specConflict(store, name, stored, given, file, ways):
            return "\(store): experiment \"\(name)\" was recorded with another spec (sha256 \(stored.prefix(12)) in the store, \(given.prefix(12)) in \(file)); a store keeps one spec per experiment name: \(ways)"
        }
    }
}
