import Base
import Foundation
import Model
import XCTest
@testable import Training

/// The ppo objective's pieces against their definitions: advantages and KL estimators by hand, the clipped
/// surrogate and its gradient against a naive Double computation (the loss written out term by term, its
/// gradient by finite differences), and the whole model's gradient of a mini-batch's surrogate against finite
/// differences of the loss.
final class PolicyGradientTests: XCTestCase {
    func testAdvantagesByHand() {
        let r = [1.0, 2, 3, 6]
        XCTAssertEqual(policyAdvantages(r, baseline: .group, scale: false), [-2, -1, 0, 3])
        // leave one out: 1 - 11/3, 2 - 10/3, 3 - 9/3, 6 - 6/3
        let loo = policyAdvantages(r, baseline: .leaveOneOut, scale: false)
        for (a, e) in zip(loo, [-8.0 / 3, -4.0 / 3, 0, 4]) { XCTAssertEqual(a, e, accuracy: 1e-12) }
        // scaled by the sample standard deviation sqrt(14/3) (+ 1e-4)
        let s = (14.0 / 3).squareRoot() + 1e-4
        for (a, e) in zip(policyAdvantages(r, baseline: .group, scale: true), [-2 / s, -1 / s, 0, 3 / s]) { XCTAssertEqual(a, e, accuracy: 1e-12) }
        for (a, e) in zip(policyAdvantages(r, baseline: .leaveOneOut, scale: true), [-8 / (3 * s), -4 / (3 * s), 0, 4 / s]) { XCTAssertEqual(a, e, accuracy: 1e-12) }
        // equal rewards: no signal, and no division by zero when scaled
        XCTAssertEqual(policyAdvantages([2, 2, 2], baseline: .group, scale: true), [0, 0, 0])
        XCTAssertEqual(policyAdvantages([2, 2], baseline: .leaveOneOut, scale: true), [0, 0])
    }

    func testKLEstimatorsByHand() {
        // log pi = -1, log pi_ref = -1.5: d = ref - logp = -0.5
        XCTAssertEqual(KLEstimator.k1.value(logprob: -1, reference: -1.5), 0.5, accuracy: 1e-15)
        XCTAssertEqual(KLEstimator.k3.value(logprob: -1, reference: -1.5), exp(-0.5) - 1 + 0.5, accuracy: 1e-15)
        // the policy less likely than the reference: k1 negative, k3 still positive
        XCTAssertEqual(KLEstimator.k1.value(logprob: -2, reference: -1), -1, accuracy: 1e-15)
        XCTAssertEqual(KLEstimator.k3.value(logprob: -2, reference: -1), exp(1.0) - 2, accuracy: 1e-15)
        XCTAssertEqual(KLEstimator.k3.value(logprob: -0.7, reference: -0.7), 0)
    }

    /// The surrogate written out as its definition, in Double.
    private func naive(_ lp: [Double], _ old: [Double], _ adv: [Double], _ lengths: [Int], clip: Double, averaging: LossAveraging) -> Double {
        var terms: [[Double]] = []
        var t = 0
        for (i, n) in lengths.enumerated() {
            terms.append((t..<t + n).map { k in
                let rho = exp(lp[k] - old[k])
                return -min(rho * adv[i], min(max(rho, 1 - clip), 1 + clip) * adv[i])
            })
            t += n
        }
        switch averaging {
        case .token: return terms.flatMap { $0 }.reduce(0, +) / Double(lp.count)
        case .sequence: return terms.map { $0.reduce(0, +) / Double($0.count) }.reduce(0, +) / Double(terms.count)
        }
    }

    func testTheClippedSurrogateAndItsGradientAgainstTheDefinition() {
        var rng = SplitMix64(seed: 11)
        let lengths = [3, 1, 5, 2]
        let n = lengths.reduce(0, +)
        let old = (0..<n).map { _ in -3 * rng.uniform() - 0.1 }
        // ratios from 0.5 to 1.6: inside and outside [0.8, 1.2] on both sides
        let lp = old.map { $0 + log(0.5 + 1.1 * rng.uniform()) }
        let adv = [1.5, -0.7, 0.3, -2.0]
        for averaging in LossAveraging.allCases {
            let got = clippedSurrogate(logprobs: lp, old: old, advantages: adv, sampleTokens: lengths, clip: 0.2, averaging: averaging)
            XCTAssertEqual(got.loss, naive(lp, old, adv, lengths, clip: 0.2, averaging: averaging), accuracy: 1e-14, "\(averaging)")
            var zero = 0
            for k in 0..<n {
                var up = lp, down = lp
                up[k] += 1e-6
                down[k] -= 1e-6
                let numeric = (naive(up, old, adv, lengths, clip: 0.2, averaging: averaging) - naive(down, old, adv, lengths, clip: 0.2, averaging: averaging)) / 2e-6
                XCTAssertTrue(got.dLogprobs[k].isFinite && numeric.isFinite)
                XCTAssertEqual(got.dLogprobs[k], numeric, accuracy: 1e-7, "\(averaging) token \(k)")
                if got.dLogprobs[k] == 0 { zero += 1 }
            }
            XCTAssertEqual(zero, got.clipped, "a clipped token is exactly one with no gradient")
            XCTAssertGreaterThan(got.clipped, 0)
            XCTAssertLessThan(got.clipped, n)
        }
        // at the sampling weights (rho = 1) nothing is clipped and the gradient is -A / T per token
        let first = clippedSurrogate(logprobs: old, old: old, advantages: adv, sampleTokens: lengths, clip: 0.2, averaging: .token)
        XCTAssertEqual(first.clipped, 0)
        XCTAssertEqual(first.dLogprobs[0], -1.5 / Double(n), accuracy: 1e-15)
        XCTAssertEqual(first.dLogprobs[3], 0.7 / Double(n), accuracy: 1e-15)
    }

    func testTheWholeModelGradientOfAMiniBatchMatchesFiniteDifferences() {
        let model = LlamaModel(config: .tiny(dim: 32, ffnDim: 48), maxTokens: 256)
        model.initializeRandom(seed: 5, std: 0.2)
        func bytes(_ s: String) -> [Int32] { Array(s.utf8).map(Int32.init) }
        let pairs = [("Q: hi\nA:", " hello"), ("Q: hi\nA:", " hey"), ("Q: sky?\nA:", " blue"), ("Q: sky?\nA:", " grey")]
        var scratch = [Float](repeating: 0, count: 256)
        let settings = PolicyOptimization(reward: .length, clip: 0.2, lossAveraging: .sequence)
        // old log-probabilities: the current ones shifted, so that ratios fall inside and outside the clip range
        let current = pairs.map { p -> [Float] in
            let packed = LossOn.response.pack([([256] + bytes(p.0), bytes(p.1) + [257])])
            let lp = model.forward(packed.batch, training: false)
            return packed.weights.indices.filter { packed.weights[$0] != 0 }.map { lp[$0] }
        }
        var rng = SplitMix64(seed: 3)
        let sequences = zip(pairs, current).enumerated().map { i, e in
            ([256] + bytes(e.0.0), bytes(e.0.1) + [257], e.1.map { $0 - Float(log(0.6 + 0.9 * rng.uniform())) }, [1.2, -0.8, 0.5, -1.5][i])
        }
        model.zeroGradients()
        let result = Trainer.surrogate(model: model, sequences, settings, dLogprobs: &scratch)
        XCTAssertTrue(result.clipped > 0 && result.clipped < result.responseTokens, "\(result.clipped) of \(result.responseTokens) clipped")
        assertGradientMatchesFiniteDifferences(model) { Trainer.surrogate(model: model, sequences, settings, dLogprobs: &scratch, backward: false).loss }
    }
}
