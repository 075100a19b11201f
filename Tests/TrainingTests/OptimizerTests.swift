import Model
import XCTest
@testable import Training

final class OptimizerTests: XCTestCase {
    /// Two AdamW steps against values computed by hand (Python, float64) from the update rule:
    /// m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, p = p (1 - lr wd) - lr mhat / (sqrt(vhat) + eps).
    func testAdamWTwoStepsMatchHandComputedValues() {
        let opt = AdamW(parameterCount: 3, config: AdamWConfig(weightDecay: 0.01))
        var p: [Float] = [1, -2, 0.5]
        var g1: [Float] = [0.1, -0.2, 0.3], g2: [Float] = [0.05, 0.1, -0.1]
        p.withUnsafeMutableBufferPointer { pb in
            g1.withUnsafeMutableBufferPointer { opt.step(params: pb, grads: $0, lr: 0.1) }
        }
        XCTAssertEqual(opt.t, 1)
        for (a, b) in zip(p, [0.899000009999999, -1.8980000049999997, 0.39950000333333324]) {
            XCTAssertEqual(Double(a), b, accuracy: 1e-6)
        }
        for (a, b) in zip(Array(opt.m), [0.01, -0.02, 0.03]) { XCTAssertEqual(Double(a), b, accuracy: 1e-8) }
        for (a, b) in zip(Array(opt.v), [1e-5, 4e-5, 9e-5]) { XCTAssertEqual(Double(a), b, accuracy: 1e-6 * b) }
        p.withUnsafeMutableBufferPointer { pb in
            g2.withUnsafeMutableBufferPointer { opt.step(params: pb, grads: $0, lr: 0.1) }
        }
        XCTAssertEqual(opt.t, 2)
        for (a, b) in zip(p, [0.8048830579018706, -1.8694683027136758, 0.3590786479247475]) {
            XCTAssertEqual(Double(a), b, accuracy: 1e-6)
        }
        XCTAssertEqual(opt.moments.count, 6)
    }

    func testLearningRateSchedules() {
        // Warm-up: linear to the peak over `warmup` steps.
        XCTAssertEqual(learningRate(step: 0, totalSteps: 10, warmup: 4, peak: 1, schedule: .cosine), 0.25)
        XCTAssertEqual(learningRate(step: 3, totalSteps: 10, warmup: 4, peak: 1, schedule: .cosine), 1)
        // After warm-up: steps 3...9 decay over 6 intervals.
        XCTAssertEqual(learningRate(step: 6, totalSteps: 10, warmup: 4, peak: 1, schedule: .constant), 1)
        XCTAssertEqual(learningRate(step: 9, totalSteps: 10, warmup: 4, peak: 2, schedule: .linear), 0, accuracy: 1e-12)
        XCTAssertEqual(learningRate(step: 6, totalSteps: 10, warmup: 4, peak: 2, schedule: .linear), 2 * 3 / 5.0, accuracy: 1e-12)
        XCTAssertEqual(learningRate(step: 4, totalSteps: 10, warmup: 4, peak: 2, schedule: .cosine), 2, accuracy: 1e-12)
        XCTAssertEqual(learningRate(step: 9, totalSteps: 10, warmup: 4, peak: 2, schedule: .cosine, minRatio: 0.1),
                       0.2, accuracy: 1e-12)
        // Cosine at the midpoint of the decay is halfway.
        XCTAssertEqual(learningRate(step: 5, totalSteps: 7, warmup: 0, peak: 1, schedule: .cosine, minRatio: 0), 0.0669872981, accuracy: 1e-9)
        XCTAssertEqual(learningRate(step: 3, totalSteps: 7, warmup: 0, peak: 1, schedule: .cosine), 0.5, accuracy: 1e-12)
    }

    func testClipGradients() {
        var g: [Float] = [3, 4, 0]
        let norm = g.withUnsafeMutableBufferPointer { clipGradients($0, maxNorm: 1) }
        XCTAssertEqual(norm, 5)
        XCTAssertEqual(g[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(g[1], 0.8, accuracy: 1e-6)
        var h: [Float] = [0.3, 0.4]
        let n2 = h.withUnsafeMutableBufferPointer { clipGradients($0, maxNorm: 1) }
        XCTAssertEqual(n2, 0.5, accuracy: 1e-7)
        XCTAssertEqual(h, [0.3, 0.4], "below the limit nothing changes")
        h.withUnsafeMutableBufferPointer { scaleGradients($0, by: 0.5) }
        XCTAssertEqual(h, [0.15, 0.2])
    }

    func testSFTLossAndGradient() {
        let lp: [Float] = [-1, -2, -3, 0]
        let w: [Float] = [1, 0, 2, 0]
        var d = [Float](repeating: 9, count: 4)
        let r = lp.withUnsafeBufferPointer { lpb in
            w.withUnsafeBufferPointer { wb in
                d.withUnsafeMutableBufferPointer { db in
                    Objective.sft(lossOn: .response).evaluate(
                        logprobs: lpb, weights: wb, spans: [SequenceSpan(start: 0, count: 4)], dLogprobs: db)
                }
            }
        }
        XCTAssertEqual(r.loss, 7.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(d, [-1.0 / 3, 0, -2.0 / 3, 0].map { Float($0) })
    }

    func testPackMasksThePrompt() {
        let (batch, weights, spans) = LossOn.response.pack([(prompt: [1, 2], response: [3, 4]), (prompt: [5], response: [6])])
        XCTAssertEqual(batch.tokens, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(batch.targets, [-1, 3, 4, -1, 6, -1])
        XCTAssertEqual(weights, [0, 1, 1, 0, 1, 0])
        XCTAssertEqual(spans, [SequenceSpan(start: 0, count: 4), SequenceSpan(start: 4, count: 2)])
        XCTAssertEqual(LossOn.all.pack([(prompt: [1, 2], response: [3])]).batch.targets, [2, 3, -1])
    }
}
