import Model
import Foundation
import XCTest
@testable import Training

/// The preference losses on a hand-made batch of two pairs (no model): values written out by hand, gradients
/// against finite differences of the loss as a function of the per-token log-probabilities.
final class PreferenceLossTests: XCTestCase {
    // Spans (chosen A, rejected A, chosen B, rejected B); the first position of each span is a prompt
    // position (weight 0; position 0 carries a non-zero logprob that must be ignored).
    //   A chosen   lp [-7, -1, -2]  -> pi = -3     A rejected lp [0, -2, -3] -> pi = -5
    //   B chosen   lp [ 0, -4, -2]  -> pi = -6     B rejected lp [0, -2]     -> pi = -2
    // Reference sums [-4, -4, -4, -2]:
    //   h_A = (-3 + 4) - (-5 + 4) = 1 - (-1) = 2,   h_B = (-6 + 4) - (-2 + 2) = -2 - 0 = -2.
    private let logprobs: [Float] = [-7, -1, -2, 0, -2, -3, 0, -4, -2, 0, -2]
    private let weights: [Float] = [0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1]
    private let spans = [SequenceSpan(start: 0, count: 3), SequenceSpan(start: 3, count: 3),
                         SequenceSpan(start: 6, count: 3), SequenceSpan(start: 9, count: 2)]
    private let reference: [Double] = [-4, -4, -4, -2]
    private let chosenA = [1, 2], rejectedA = [4, 5], chosenB = [7, 8], rejectedB = [10], masked = [0, 3, 6, 9]

    private func run(_ objective: Objective, logprobs lp: [Float]? = nil, pairs: Int = 2, reference ref: [Double]? = nil)
        -> (result: ObjectiveResult, grad: [Float]) {
        let spans = Array(self.spans.prefix(2 * pairs))
        let n = spans.last!.start + spans.last!.count
        let lp = Array((lp ?? logprobs).prefix(n)), w = Array(weights.prefix(n))
        var d = [Float](repeating: 9, count: n)
        let r = lp.withUnsafeBufferPointer { lpb in
            w.withUnsafeBufferPointer { wb in
                d.withUnsafeMutableBufferPointer {
                    objective.evaluate(logprobs: lpb, weights: wb, spans: spans,
                                       referenceLogprobs: ref ?? Array(reference.prefix(2 * pairs)), dLogprobs: $0)
                }
            }
        }
        return (r, d)
    }

    private func assertGrad(_ g: [Float], _ positions: [Int], _ value: Double, _ accuracy: Double = 1e-7,
                            file: StaticString = #filePath, line: UInt = #line) {
        for t in positions { XCTAssertEqual(Double(g[t]), value, accuracy: accuracy, "position \(t)", file: file, line: line) }
    }

    private let s1 = 0.7310585786300049  // sigmoid(1)
    private let l1 = 0.31326168751822286  // -log sigmoid(1) = log(1 + e^-1); -log sigmoid(-1) = log(1 + e) = 1 + l1

    func testDPOLossGradientAndMetricsByHand() {
        // beta = 0.5: beta h_A = 1, beta h_B = -1.
        // loss = mean(-log s(1), -log s(-1)) = (l1 + 1 + l1) / 2 = 0.5 + l1.
        // dLoss/dh = -beta s(-beta h) / P: A: -0.5 (1 - s1) / 2, B: -0.5 s1 / 2; + on chosen, - on rejected.
        let (r, g) = run(.dpo(beta: 0.5, labelSmoothing: 0))
        XCTAssertEqual(r.loss, 0.5 + l1, accuracy: 1e-12)
        assertGrad(g, chosenA, -0.25 * (1 - s1))
        assertGrad(g, rejectedA, 0.25 * (1 - s1))
        assertGrad(g, chosenB, -0.25 * s1)
        assertGrad(g, rejectedB, 0.25 * s1)
        assertGrad(g, masked, 0, 0)
        // Rewards 0.5 (pi - ref): chosen (0.5, -1), rejected (-0.5, 0); A is ranked right, B wrong.
        let m = r.metrics
        XCTAssertEqual(m["rewards/chosen"]!, -0.25, accuracy: 1e-12)
        XCTAssertEqual(m["rewards/rejected"]!, -0.25, accuracy: 1e-12)
        XCTAssertEqual(m["rewards/margins"]!, 0, accuracy: 1e-12)  // margins (1, -1)
        XCTAssertEqual(m["rewards/accuracy"], 0.5)
        XCTAssertEqual(m["logps/chosen"], -4.5)  // mean(-3, -6)
        XCTAssertEqual(m["logps/rejected"], -3.5)  // mean(-5, -2)
        XCTAssertEqual(m["pairs"], 2)
    }

    func testConservativeDPOByHand() {
        // Pair A only, beta = 0.5, eps = 0.1, beta h = 1:
        // loss = 0.9 (-log s(1)) + 0.1 (-log s(-1)) = 0.9 l1 + 0.1 (1 + l1) = l1 + 0.1.
        // dLoss/d(beta h) = -0.9 s(-1) + 0.1 s(1) = -0.9 (1 - s1) + 0.1 s1 = s1 - 0.9; times beta = 0.5.
        let (r, g) = run(.dpo(beta: 0.5, labelSmoothing: 0.1), pairs: 1)
        XCTAssertEqual(r.loss, l1 + 0.1, accuracy: 1e-12)
        assertGrad(g, chosenA, 0.5 * (s1 - 0.9))
        assertGrad(g, rejectedA, -0.5 * (s1 - 0.9))
        assertGrad(g, [0, 3], 0, 0)
    }

    /// labelSmoothing 0 is plain DPO: -log sigmoid(beta h) (computed here as log(1 + exp(-beta h))) and
    /// gradient -beta sigmoid(-beta h), for margins from strongly wrong to strongly right.
    func testDPOWithoutLabelSmoothingIsPlainDPO() {
        for shift in stride(from: -12.0, through: 12.0, by: 1.5) {
            let ref = [-4 - shift, -4, -4, -2]  // h_A = 2 + shift, h_B = -2
            let (r, g) = run(.dpo(beta: 0.7, labelSmoothing: 0), reference: ref)
            let hA = 2 + shift, hB = -2.0
            let plain = (log(1 + exp(-0.7 * hA)) + log(1 + exp(-0.7 * hB))) / 2
            XCTAssertEqual(r.loss, plain, accuracy: 1e-12 * max(1, plain), "shift \(shift)")
            assertGrad(g, chosenA, -0.7 / (1 + exp(0.7 * hA)) / 2, 1e-7)
            assertGrad(g, rejectedB, 0.7 / (1 + exp(0.7 * hB)) / 2, 1e-7)
            XCTAssertNotEqual(run(.dpo(beta: 0.7, labelSmoothing: 0.05), reference: ref).result.loss, r.loss)
        }
    }

    func testIPOLossByHand() {
        // tau = 0.25: target margin 1/(2 tau) = 2. A: (2 - 2)^2 = 0, B: (-2 - 2)^2 = 16; mean 8.
        // dLoss/dh = 2 (h - 2) / P: A 0, B 2 (-4) / 2 = -4.
        let (r, g) = run(.ipo(tau: 0.25))
        XCTAssertEqual(r.loss, 8, accuracy: 1e-12)
        assertGrad(g, chosenA + rejectedA + masked, 0, 0)
        assertGrad(g, chosenB, -4, 0)
        assertGrad(g, rejectedB, 4, 0)
        // Rewards scaled by tau (TRL convention): chosen mean(0.25 * 1, 0.25 * -2) = -0.125.
        XCTAssertEqual(r.metrics["rewards/chosen"]!, -0.125, accuracy: 1e-12)
        XCTAssertEqual(r.metrics["rewards/margins"]!, 0.25 * (2 - 2) / 2, accuracy: 1e-12)
    }

    /// The IPO loss is 0 with zero gradient exactly at h = 1/(2 tau) and grows on both sides.
    func testIPOMinimumIsAtHalfInverseTau() {
        // tau = 0.1: target 5. h_A = (-3 - refc) - (-5 + 4) = -2 - refc, so refc = -2 - h.
        func loss(_ h: Double) -> (Double, [Float]) {
            let r = run(.ipo(tau: 0.1), pairs: 1, reference: [-2 - h, -4])
            return (r.result.loss, r.grad)
        }
        let (l0, g0) = loss(5)
        XCTAssertEqual(l0, 0)
        assertGrad(g0, [0, 1, 2, 3, 4, 5], 0, 0)
        XCTAssertEqual(loss(5.5).0, 0.25, accuracy: 1e-12)
        XCTAssertEqual(loss(4.5).0, 0.25, accuracy: 1e-12)
        XCTAssertGreaterThan(loss(0).0, loss(4.5).0)
    }

    func testHingeLossByHand() {
        // beta = 0.25: A: max(0, 1 - 0.5) = 0.5, B: max(0, 1 + 0.5) = 1.5; mean 1.
        // Both inside the margin: dLoss/dh = -beta / P = -0.125 for each pair.
        let (r, g) = run(.hinge(beta: 0.25))
        XCTAssertEqual(r.loss, 1, accuracy: 1e-12)
        assertGrad(g, chosenA + chosenB, -0.125, 0)
        assertGrad(g, rejectedA + rejectedB, 0.125, 0)
        assertGrad(g, masked, 0, 0)
    }

    func testHingeHasZeroGradientBeyondTheMargin() {
        // beta = 1: A: 1 - 2 < 0 -> loss 0, gradient 0; B: 1 + 2 = 3 -> gradient -1 / 2.
        let (r, g) = run(.hinge(beta: 1))
        XCTAssertEqual(r.loss, 1.5, accuracy: 1e-12)
        assertGrad(g, chosenA + rejectedA, 0, 0)
        assertGrad(g, chosenB, -0.5, 0)
        assertGrad(g, rejectedB, 0.5, 0)
        // Exactly at the kink (beta h = 1): loss 0 and gradient 0.
        let kink = run(.hinge(beta: 0.5), pairs: 1)
        XCTAssertEqual(kink.result.loss, 0)
        assertGrad(kink.grad, [0, 1, 2, 3, 4, 5], 0, 0)
    }

    /// dLoss/dlp_t against central differences of the loss in each per-token log-probability (the step 2^-7 is
    /// exact in Float and the sums are formed in Double, so the loss is a smooth function of Double inputs).
    func testGradientsMatchFiniteDifferences() {
        let objectives: [Objective] = [.dpo(beta: 0.5, labelSmoothing: 0), .dpo(beta: 2, labelSmoothing: 0.2),
                                       .ipo(tau: 0.25), .ipo(tau: 0.05), .hinge(beta: 0.25), .sft(lossOn: .response),
                                       .pair(SimPO(beta: 2, gamma: 1)), .pair(SimPO(beta: 0.5, gamma: 0.5, labelSmoothing: 0.2)),
                                       .pair(IPO(tau: 0.25, lengthNormalized: true)), .pair(DPO(beta: 0.5, dpopLambda: 2)),
                                       .pair(DPO(beta: 0.4, labelSmoothing: 0.1, lossTypes: [.aot, .aotUnpaired, .sft])),
                                       .pair(CPO(lossType: .simpo, beta: 2, cpoAlpha: 0.5, gamma: 0.5, alpha: 0.3)), .pair(ORPO(beta: 0.5))]
        let h: Float = 1.0 / 128
        for objective in objectives {
            let (_, g) = run(objective)
            var largest = 0.0
            for t in logprobs.indices {
                var up = logprobs, down = logprobs
                up[t] += h
                down[t] -= h
                let numeric = (run(objective, logprobs: up).result.loss - run(objective, logprobs: down).result.loss) / Double(2 * h)
                XCTAssertEqual(Double(g[t]), numeric, accuracy: 1e-5 + 1e-5 * abs(numeric), "\(objective) position \(t)")
                largest = max(largest, abs(numeric))
            }
            XCTAssertGreaterThan(largest, 0.05, "\(objective): the check must see a real gradient")
        }
    }

    func testLengthNormalisedIPOByHand() {
        // tau = 0.25, target 1/(2 tau) = 2. Log-ratios divided by token counts:
        // A: (-3 + 4)/2 - (-5 + 4)/2 = 1 -> d = -1, loss 1, dpi_c = 2d/2 = -1, dpi_r = +1.
        // B: (-6 + 4)/2 - (-2 + 2)/1 = -1 -> d = -3, loss 9, dpi_c = 2d/2 = -3, dpi_r = -2d/1 = +6.
        let (r, g) = run(.pair(IPO(tau: 0.25, lengthNormalized: true)))
        XCTAssertEqual(r.loss, 5, accuracy: 1e-12)
        assertGrad(g, chosenA, -0.5)
        assertGrad(g, rejectedA, 0.5)
        assertGrad(g, chosenB, -1.5)
        assertGrad(g, rejectedB, 3)
        // unnormalised (the default) on the same pairs: h_A = 2, h_B = -2 -> d = 0 and -4: loss (0 + 16) / 2
        XCTAssertEqual(run(.ipo(tau: 0.25)).result.loss, 8, accuracy: 1e-12)
    }

    func testDPOPByHand() {
        // beta = 0.5, lambda = 2. Pair A: r_c = -3 + 4 = 1 >= 0: no penalty, as DPO: x = beta h_A = 1.
        // Pair B: r_c = -6 + 4 = -2 < 0: x = 0.5 (h_B - 2 * 2) = 0.5 (-2 - 4) = -3.
        let (r, g) = run(.pair(DPO(beta: 0.5, dpopLambda: 2)))
        XCTAssertEqual(r.loss, (l1 + log(1 + exp(3.0))) / 2, accuracy: 1e-12)
        assertGrad(g, chosenA, -0.25 * (1 - s1))
        assertGrad(g, rejectedA, 0.25 * (1 - s1))
        // B: dLoss/dx = -sigmoid(3); dx/dpi_c = beta (1 + lambda) = 1.5, dx/dpi_r = -beta; over P = 2
        let s3 = 1 / (1 + exp(-3.0))
        assertGrad(g, chosenB, -s3 * 1.5 / 2)
        assertGrad(g, rejectedB, s3 * 0.5 / 2)
    }

    func testSimPOLossGradientAndMetricsByHand() {
        // Per-token means: A chosen -3/2 = -1.5, rejected -5/2 = -2.5; B chosen -6/2 = -3, rejected -2/1 = -2.
        // beta = 2, gamma = 1 (target margin gamma/beta = 0.5): m_A = -1.5 + 2.5 - 0.5 = 0.5 (beta m = 1),
        // m_B = -3 + 2 - 0.5 = -1.5 (beta m = -3). loss = mean(-log s(1), -log s(-3)).
        let (r, g) = run(.pair(SimPO(beta: 2, gamma: 1)))
        let sm3 = 1 / (1 + exp(-3.0))  // sigmoid(3) = 1 - sigmoid(-3)
        XCTAssertEqual(r.loss, (l1 + log(1 + exp(3.0))) / 2, accuracy: 1e-12)
        // dLoss/d(beta m) = -sigmoid(-beta m); dLoss/dpi_c = beta (-sigmoid(-beta m)) / N_c / P, the rejected side the opposite / N_r
        assertGrad(g, chosenA, 2 * -(1 - s1) / 2 / 2)
        assertGrad(g, rejectedA, 2 * (1 - s1) / 2 / 2)
        assertGrad(g, chosenB, 2 * -sm3 / 2 / 2)
        assertGrad(g, rejectedB, 2 * sm3 / 1 / 2)
        assertGrad(g, masked, 0, 0)
        // metrics on the averages the loss consumed; rewards = beta x average, no reference
        let m = r.metrics
        XCTAssertEqual(m["logps/chosen"]!, -2.25, accuracy: 1e-12)  // mean(-1.5, -3)
        XCTAssertEqual(m["logps/rejected"]!, -2.25, accuracy: 1e-12)  // mean(-2.5, -2)
        XCTAssertEqual(m["rewards/chosen"]!, -4.5, accuracy: 1e-12)
        XCTAssertEqual(m["rewards/rejected"]!, -4.5, accuracy: 1e-12)
        XCTAssertEqual(m["rewards/accuracy"], 0.5)
        // reference-free: other reference values change nothing
        XCTAssertFalse(Objective.pair(SimPO(beta: 2, gamma: 1)).needsReference)
        XCTAssertEqual(run(.pair(SimPO(beta: 2, gamma: 1)), reference: [9, -9, 3, 1]).result.loss, r.loss)
    }

    /// LD-DPO: tokens beyond the pair's shared length (the shorter response's) weigh alpha, in every pair alike.
    func testLDDPOWeighsTheTailByAlpha() {
        let pairs = [PreferencePair(prompt: [1, 2], chosen: [3, 4, 5], rejected: [6]),
                     PreferencePair(prompt: [7], chosen: [8], rejected: [9, 10])]
        let plain = PreferencePair.pack(pairs), ld = PreferencePair.pack(pairs, tailWeight: 0.25)
        XCTAssertEqual(plain.batch.tokens, ld.batch.tokens)
        // each position's weight is that of the token it predicts: prompt 1 2 -> 3 4 5 | 1 2 -> 6 | 7 -> 8 | 7 -> 9 10
        XCTAssertEqual(plain.weights, [0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0])
        // shared lengths 1 and 1: chosen A's 2nd and 3rd tokens and rejected B's 2nd weigh 0.25
        XCTAssertEqual(ld.weights, [0, 1, 0.25, 0.25, 0, 0, 1, 0, 1, 0, 1, 0.25, 0])
        XCTAssertEqual(Objective.pair(DPO(beta: 0.1, ldAlpha: 0.25)).tailWeight, 0.25)
        XCTAssertNil(Objective.dpo(beta: 0.1, labelSmoothing: 0).tailWeight)
    }

    func testPackPutsChosenThenRejectedWithResponseTargets() {
        let pairs = [PreferencePair(prompt: [1, 2], chosen: [3, 4], rejected: [5]),
                     PreferencePair(prompt: [6], chosen: [7], rejected: [8, 9])]
        let (batch, weights, spans) = PreferencePair.pack(pairs)
        XCTAssertEqual(batch.tokens, [1, 2, 3, 4, 1, 2, 5, 6, 7, 6, 8, 9])
        XCTAssertEqual(batch.targets, [-1, 3, 4, -1, -1, 5, -1, 7, -1, 8, 9, -1])
        XCTAssertEqual(batch.sequenceStarts, [0, 4, 7, 9])
        XCTAssertEqual(weights, [0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0])
        XCTAssertEqual(spans, [SequenceSpan(start: 0, count: 4), SequenceSpan(start: 4, count: 3),
                               SequenceSpan(start: 7, count: 2), SequenceSpan(start: 9, count: 3)])
        XCTAssertEqual(pairs.map(\.packedCount), [7, 5])
    }

    func testNeedsReference() {
        XCTAssertTrue(Objective.dpo(beta: 0.1, labelSmoothing: 0).needsReference)
        XCTAssertTrue(Objective.ipo(tau: 0.1).needsReference)
        XCTAssertTrue(Objective.hinge(beta: 0.1).needsReference)
        XCTAssertFalse(Objective.sft(lossOn: .response).needsReference)
        XCTAssertFalse(Objective.coh(template: HindsightTemplate()).needsReference)
    }
}
