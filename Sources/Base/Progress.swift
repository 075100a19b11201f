/// What the progress callback wants next: go on, or stop the run after its current step (it is marked
/// interrupted and resumes later) and start no other run. The one mechanism for stopping.
public enum ProgressDisposition: Sendable {
    case more
    case stop
}

/// Progress of long work, sent to a callback (runs and labelling answer with a `ProgressDisposition`); the CLI
/// draws it. The one progress type of runs (`RunExecutor`), labelling (`Labeller`) and the bench (`runBenchmarks`).
public enum ProgressEvent: Sendable {
    case skipped(run: String, reason: String)
    case started(run: String, fromStep: Int, totalSteps: Int)
    case loading(run: String, what: String)
    /// A checkpoint was found but cannot be resumed (another store, missing rows): the run starts over.
    case restarting(run: String, reason: String)
    /// `remaining`: the run's estimated seconds to go (`ProgressClock`), nil before it can be estimated.
    case step(run: String, step: Int, totalSteps: Int, loss: Double, tokensPerSecond: Double, remaining: Double?)
    /// Something the researcher should know that does not stop the run (one line).
    case warning(run: String, message: String)
    /// A label run has labelled `done` of `total` prompts (counting those of an earlier, interrupted call).
    case labelled(run: String, done: Int, total: Int, elapsed: Double)
    /// A SPIN iteration has generated `done` of its `total` rejected responses.
    case generated(run: String, done: Int, total: Int, elapsed: Double)
    /// An evaluation at `step` has scored `done` of its `total` responses (sent at its start with 0, then after each
    /// pass through the evaluator's cache).
    case evaluating(run: String, step: Int, done: Int, total: Int)
    case evaluated(run: String, step: Int, responses: Int, seconds: Double)
    case checkpointed(run: String, step: Int)
    /// `run --follow`: a watched run waits for new checkpoints in `folder` (sent about once a second, so Ctrl-C is heard);
    /// `evaluated` steps so far, `idle` seconds since the last new one, ending at `limit`.
    case watching(run: String, folder: String, evaluated: Int, idle: Double, limit: Double)
    case finished(run: String, seconds: Double)
    case failed(run: String, error: String)
    /// A benchmark finished one measurement (one line saying what and how fast).
    case measured(what: String)
}

