import Foundation
import GGUF
import Model
import Probes
import RunStore
import Tokenizer
import Training

/// Progress of a run, sent to a callback; the CLI draws it. Returning `false` from the callback
/// stops the run after the current step (it can be resumed later).
public enum RunProgress: Sendable {
    case skipped(run: String, reason: String)
    case started(run: String, fromStep: Int, totalSteps: Int)
    case loading(run: String, what: String)
    case step(run: String, step: Int, totalSteps: Int, loss: Double, tokensPerSecond: Double, elapsed: Double)
    case evaluated(run: String, step: Int, responses: Int, seconds: Double)
    case checkpointed(run: String, step: Int)
    case finished(run: String, seconds: Double)
    case failed(run: String, error: String)
}

/// Executes the runs of an experiment against a run store.
public final class RunExecutor {
    public let experiment: Experiment
    public let store: RunStore
    /// Folder under which each run keeps `<experiment>/<run>/checkpoint.bin`.
    public let checkpointRoot: URL
    public var progress: (RunProgress) -> Void = { _ in }

    public init(experiment: Experiment, store: RunStore, checkpointRoot: URL) {
        self.experiment = experiment
        self.store = store
        self.checkpointRoot = checkpointRoot
    }
}
