import Foundation
import XCTest
import Model
@testable import Training

/// Preference objectives through the tiny model: the reference pass, DPO training, and the whole-model
/// gradient of the DPO loss.
final class PreferenceTrainingTests: XCTestCase {
    private func bytes(_ s: String) -> [Int32] { Array(s.utf8).map(Int32.init) }

    private lazy var pairs: [PreferencePair] = [
        PreferencePair(prompt: [256] + bytes("Q: hi\nA:"), chosen: bytes(" hello") + [257], rejected: bytes(" go away") + [257]),
        PreferencePair(prompt: [256] + bytes("Q: 2+2\nA:"), chosen: bytes(" four") + [257], rejected: bytes(" five") + [257]),
        PreferencePair(prompt: [256] + bytes("Q: sky?\nA:"), chosen: bytes(" blue") + [257], rejected: bytes(" no") + [257]),
    ]

    /// Loss, metrics and dLoss/dlogprob of `objective` on `pairs` at the model's current weights.
    private func evaluate(_ model: LlamaModel, _ objective: Objective, _ pairs: [PreferencePair], reference: [Double],
                          training: Bool) -> (result: ObjectiveResult, grad: [Float]) {
        let (batch, weights, spans) = PreferencePair.pack(pairs)
        let lp = model.forward(batch, training: training)
        var d = [Float](repeating: 0, count: batch.count)
        let r = weights.withUnsafeBufferPointer { wb in
            d.withUnsafeMutableBufferPointer {
                objective.evaluate(logprobs: lp, weights: wb, spans: spans, referenceLogprobs: reference, dLogprobs: $0)
            }
        }
        return (r, d)
    }

    /// Reference sums equal the KV-cache scorer's log p(response | prompt), whatever the batching
    /// (3 pairs per forward, 1 per forward, or as many as fit in a small maxTokens).
    func testReferenceLogprobsMatchIndependentScoring() {
        let model = LlamaModel(config: .tiny(), maxTokens: 128)  // the 3 pairs pack into 98 tokens
        model.initializeRandom(seed: 11, std: 0.1)
        let all = referenceLogprobs(model: model, pairs: pairs, batchSize: 3)
        XCTAssertEqual(all.count, 6)
        let session = InferenceSession(model: model, capacity: 64)
        var expected: [Double] = []
        for p in pairs {
            for response in [p.chosen, p.rejected] {
                session.reset()
                _ = session.append(p.prompt)
                expected.append(session.score(response).reduce(0) { $0 + Double($1) })
            }
        }
        for i in all.indices { XCTAssertEqual(all[i], expected[i], accuracy: 1e-3, "sequence \(i)") }
        XCTAssertLessThan(all.max()!, -5, "random weights: responses of 5+ tokens are unlikely")
        let single = referenceLogprobs(model: model, pairs: pairs, batchSize: 1)
        for i in all.indices { XCTAssertEqual(single[i], all[i], accuracy: 1e-4) }
        let small = LlamaModel(config: .tiny(), maxTokens: 40)  // 34 + 32 > 40: one pair per forward
        small.initializeRandom(seed: 11, std: 0.1)
        let split = referenceLogprobs(model: small, pairs: pairs, batchSize: 3)
        for i in all.indices { XCTAssertEqual(split[i], all[i], accuracy: 1e-4) }
    }

    /// AdamW steps of DPO on one fixed pair raise the margin (pi_c - pi_r) - (ref_c - ref_r) from 0, and the
    /// logged margin is beta times it.
    func testDPOStepsIncreaseTheMargin() {
        let model = LlamaModel(config: .tiny(), maxTokens: 64)
        model.initializeRandom(seed: 5)
        let pair = [pairs[0]]
        let reference = referenceLogprobs(model: model, pairs: pair, batchSize: 1)
        let objective = Objective.dpo(beta: 0.1, labelSmoothing: 0)
        let opt = AdamW(parameterCount: model.parameterCount, config: AdamWConfig())
        var margins: [Double] = []
        for step in 0..<6 {
            model.zeroGradients()
            let (r, d) = evaluate(model, objective, pair, reference: reference, training: true)
            if step == 0 {
                XCTAssertEqual(r.loss, log(2), accuracy: 1e-6, "policy == reference: loss log 2")
                XCTAssertEqual(r.metrics["rewards/margins"]!, 0, accuracy: 1e-6)
            }
            margins.append(r.metrics["rewards/margins"]! / 0.1)
            d.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
            opt.step(params: model.parameters, grads: model.gradients, lr: 3e-3)
        }
        let (final, _) = evaluate(model, objective, pair, reference: reference, training: false)
        let h = final.metrics["rewards/margins"]! / 0.1
        XCTAssertGreaterThan(h, 1, "margins per step: \(margins + [h])")
        for i in 1..<margins.count { XCTAssertGreaterThan(margins[i], margins[i - 1], "margins: \(margins)") }
        XCTAssertLessThan(final.loss, log(2) - 0.04)
        XCTAssertEqual(final.metrics["rewards/accuracy"], 1)
    }

    /// The analytic whole-model gradient of the DPO loss (objective gradient through `backward`) against central
    /// finite differences of the loss in single parameters: the largest-gradient entry and one random entry
    /// of every tensor. The reference is shifted so that the pairs sit at beta h = -1, 0.5 and 1.5, where
    /// sigmoid is far from linear. Tolerance as in the model's own check (fp32 forward, step 1e-2).
    func testDPOWholeModelGradientMatchesFiniteDifferences() {
        let loss = checkWholeModelGradient(.dpo(beta: 0.5, labelSmoothing: 0.1))
        // The shifts place the pairs where intended: mean of 0.9 softplus(-x) + 0.1 softplus(x) at x = -1, 0.5, 1.5.
        let expected = [-1.0, 0.5, 1.5].map { 0.9 * log(1 + exp(-$0)) + 0.1 * log(1 + exp($0)) }.reduce(0, +) / 3
        XCTAssertEqual(loss, expected, accuracy: 1e-5)
    }

    /// The analytic whole-model gradient of `objective` against central finite differences of its loss in single
    /// parameters (the largest-gradient entry and one random entry of every tensor), the reference shifted so that the
    /// pairs sit off the losses' linear parts. Returns the loss at the starting point.
    @discardableResult
    private func checkWholeModelGradient(_ objective: Objective, file: StaticString = #filePath, line: UInt = #line) -> Double {
        let model = LlamaModel(config: .tiny(dim: 32, ffnDim: 48), maxTokens: 128)
        model.initializeRandom(seed: 7, std: 0.2)
        var reference = referenceLogprobs(model: model, pairs: pairs, batchSize: 3)
        for (i, shift) in [1.0, -1.0, -0.5, 0.5, -1.5, 1.5].enumerated() { reference[i] += shift }
        model.zeroGradients()
        let (r0, d) = evaluate(model, objective, pairs, reference: reference, training: true)
        XCTAssertTrue(r0.loss.isFinite, "\(objective)", file: file, line: line)
        d.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
        var visible = 0
        for (k, (name, _)) in model.parameterTable.enumerated() {
            let p = model.parameter(name), g = model.gradient(name)
            for i in [g.indices.max { abs(g[$0]) < abs(g[$1]) }!, (7919 * (k + 1)) % p.count] {
                let keep = p[i], step: Float = 1e-2
                p[i] = keep + step
                let up = evaluate(model, objective, pairs, reference: reference, training: false).result.loss
                p[i] = keep - step
                let down = evaluate(model, objective, pairs, reference: reference, training: false).result.loss
                p[i] = keep
                let numeric = (up - down) / Double(2 * step)
                XCTAssertEqual(Double(g[i]), numeric, accuracy: 1e-3 + 0.03 * abs(numeric), "\(objective) \(name)[\(i)]", file: file, line: line)
                if abs(numeric) > 1e-3 { visible += 1 }
            }
        }
        XCTAssertGreaterThan(visible, model.parameterTable.count / 2, "\(objective): most checked entries must have a visible gradient", file: file, line: line)
        return r0.loss
    }

    /// The same whole-model check for losses of issue 36: a weighted pair of DPO loss types (APO-zero, which reads the
    /// log-ratios, and the length-normalised sigmoid) and SimPO (reference-free, per-token averages).
    func testLossFamilyWholeModelGradientsMatchFiniteDifferences() {
        checkWholeModelGradient(.pair(DPO(beta: 0.5, lossTypes: [.apoZero, .sigmoidNorm], lossWeights: [1, 0.5])))
        checkWholeModelGradient(.pair(SimPO(beta: 2, gamma: 0.5)))
    }
}
