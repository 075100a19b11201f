import Foundation
import XCTest
@testable import Experiments

/// The progress line's ETA (issue 41): steps, evaluations and checkpoints measured in this process, nothing else.
final class ProgressClockTests: XCTestCase {
    func testNothingIsEstimatedBeforeAStep() {
        let clock = ProgressClock()
        clock.evaluation(seconds: 30)
        XCTAssertNil(clock.remaining(after: 0, totalSteps: 40, evaluationsLeft: 9, checkpointsLeft: 1, evaluationTokens: 1000))
    }

    /// After a resume at step 303 of 20000, two steps of 2 s measured here: the ETA is the 19697 steps left at 2 s, not
    /// the time since the resume spread over 303 steps (what the line said before).
    func testAResumedRunCountsOnlyItsOwnSteps() throws {
        let clock = ProgressClock()
        clock.step(seconds: 2, tokens: 1000)
        clock.step(seconds: 2, tokens: 1000)
        let eta = try XCTUnwrap(clock.remaining(after: 303, totalSteps: 20000, evaluationsLeft: 0, checkpointsLeft: 0, evaluationTokens: 0))
        XCTAssertEqual(eta, Double(20000 - 303) * 2, accuracy: 1e-9)
    }

    /// Evaluations: estimated from the tokens before one is measured (a third of the steps' token rate), then their
    /// measured mean; checkpoints their measured mean; attribution time added to the steps.
    func testEvaluationsAndCheckpointsAreCounted() throws {
        let clock = ProgressClock()
        clock.step(seconds: 4, tokens: 2000)  // 500 tokens/s, so an evaluation of 3000 tokens is estimated at 3000 / 1500 = 2 s
        var eta = try XCTUnwrap(clock.remaining(after: 1, totalSteps: 10, evaluationsLeft: 2, checkpointsLeft: 1, evaluationTokens: 3000))
        let expected1: Double = 9 * 4 + 2 * 2
        XCTAssertEqual(eta, expected1, accuracy: 1e-9)
        clock.evaluation(seconds: 10)
        clock.evaluation(seconds: 20)
        clock.checkpoint(seconds: 3)
        clock.step(seconds: 2, tokens: 0, counts: false)  // an attribution's work after step 1
        eta = try XCTUnwrap(clock.remaining(after: 1, totalSteps: 10, evaluationsLeft: 2, checkpointsLeft: 1, evaluationTokens: 3000))
        let expected2: Double = 9 * 6 + 2 * 15 + 3
        XCTAssertEqual(eta, expected2, accuracy: 1e-9)
    }

    /// What is left is read off the run's schedule: evaluations and checkpoints at or after the step.
    func testTheScheduleGivesWhatIsLeft() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clock-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = """
            { name: "c", model: { preset: "tiny", seed: 0 }, template: "hh", data: { train: { path: "t.jsonl" }, probes: { path: "t.jsonl" } },
              train: { steps: 40 }, eval: { every: 5 }, checkpoint: { every: 20 } }
            """
        let config = try Experiment.parse(text: spec, file: "c.json5", baseDirectory: dir).runs[0].config
        let clock = ProgressClock()
        clock.step(seconds: 1, tokens: 100)
        clock.evaluation(seconds: 7)
        clock.checkpoint(seconds: 5)
        // after step 12: 28 steps, evaluations at 15, 20, ..., 40 (6), checkpoints at 20 and 40
        let expected3: Double = 28 + 6 * 7 + 2 * 5
        XCTAssertEqual(try XCTUnwrap(clock.remaining(after: 12, config: config, evaluationTokens: 0)), expected3, accuracy: 1e-9)
        // after step 40, its own evaluation and checkpoint are still to come
        let expected4: Double = 7 + 5
        XCTAssertEqual(try XCTUnwrap(clock.remaining(after: 40, config: config, evaluationTokens: 0)), expected4, accuracy: 1e-9)
    }
}
