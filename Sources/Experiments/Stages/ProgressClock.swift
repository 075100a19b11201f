import Foundation

/// What the progress line's ETA is computed from (issue 41): the times this process measured, never the time since an
/// earlier process started the run. Steps (their mean, attribution included), evaluations (their mean; before the first
/// is measured, estimated from the tokens an evaluation runs at a third of the training steps' token rate, a forward
/// pass being about a third of a step) and checkpoints (their mean; 0 before one is written).
///
///     remaining = (steps left) x (mean step) + (evaluations left) x (mean evaluation) + (checkpoints left) x (mean checkpoint)
///
/// after step s: steps s+1 ... T, evaluations at steps >= s (the step's own comes after its progress line), checkpoints
/// likewise.
final class ProgressClock {
    private(set) var steps = 0, stepSeconds = 0.0, stepTokens = 0
    private(set) var evaluations = 0, evaluationSeconds = 0.0
    private(set) var checkpoints = 0, checkpointSeconds = 0.0

    /// One step's time; `counts` false adds time to the steps already counted (an attribution's work after its step).
    func step(seconds: Double, tokens: Int, counts: Bool = true) {
        if counts { steps += 1 }
        stepSeconds += seconds
        stepTokens += tokens
    }

    func evaluation(seconds: Double) {
        evaluations += 1
        evaluationSeconds += seconds
    }

    func checkpoint(seconds: Double) {
        checkpoints += 1
        checkpointSeconds += seconds
    }

    /// Seconds to go after `step` of `totalSteps`, with `evaluationsLeft` evaluations and `checkpointsLeft` checkpoints
    /// still to run, an evaluation running `evaluationTokens` tokens; nil before a step was measured.
    func remaining(after step: Int, totalSteps: Int, evaluationsLeft: Int, checkpointsLeft: Int, evaluationTokens: Int) -> Double? {
        guard steps > 0, stepSeconds > 0 else { return nil }
        let perStep = stepSeconds / Double(steps)
        let perEvaluation: Double
        if evaluations > 0 {
            perEvaluation = evaluationSeconds / Double(evaluations)
        } else {
            let tokensPerSecond = Double(stepTokens) / stepSeconds
            perEvaluation = tokensPerSecond > 0 ? Double(evaluationTokens) / (3 * tokensPerSecond) : 0
        }
        let perCheckpoint = checkpoints > 0 ? checkpointSeconds / Double(checkpoints) : 0
        return Double(max(0, totalSteps - step)) * perStep + Double(evaluationsLeft) * perEvaluation + Double(checkpointsLeft) * perCheckpoint
    }

    /// `remaining` with what is left counted from the run's schedule.
    func remaining(after step: Int, config: RunConfig, evaluationTokens: Int) -> Double? {
        let total = config.train.steps
        let evaluationsLeft = config.evalSteps.filter { $0 >= step && $0 > 0 }.count
        var checkpointsLeft = 0
        if step <= total {
            for s in step...total where config.isCheckpointStep(s) { checkpointsLeft += 1 }
        }
        return remaining(after: step, totalSteps: total, evaluationsLeft: evaluationsLeft, checkpointsLeft: checkpointsLeft,
                         evaluationTokens: evaluationTokens)
    }
}
