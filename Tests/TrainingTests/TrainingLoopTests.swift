import XCTest
import Model
@testable import Training

final class TrainingLoopTests: XCTestCase {
    private let examples: [(prompt: [Int32], response: [Int32])] = [
        (prompt: [256] + Array("Q: hi\nA:".utf8).map(Int32.init), response: Array(" hello there".utf8).map(Int32.init) + [257]),
        (prompt: [256] + Array("Q: 2+2\nA:".utf8).map(Int32.init), response: Array(" four".utf8).map(Int32.init) + [257]),
    ]

    /// SFT steps on one batch; returns the losses.
    private func train(steps: Int, seed: UInt64, lr: Double) -> (losses: [Double], model: LlamaModel) {
        let model = LlamaModel(config: .tiny(), maxTokens: 64)
        model.initializeRandom(seed: seed)
        let opt = AdamW(parameterCount: model.parameterCount, config: AdamWConfig(weightDecay: 0.01))
        let (batch, weights, spans) = LossOn.response.pack(examples)
        var dlp = [Float](repeating: 0, count: batch.count)
        var losses: [Double] = []
        for step in 0..<steps {
            model.zeroGradients()
            let lp = model.forward(batch, training: true)
            let r = weights.withUnsafeBufferPointer { wb in
                dlp.withUnsafeMutableBufferPointer {
                    Objective.sft(lossOn: .response).evaluate(logprobs: lp, weights: wb, spans: spans, dLogprobs: $0)
                }
            }
            losses.append(r.loss)
            model.backward(dlp)
            clipGradients(model.gradients, maxNorm: 1)
            let rate = learningRate(step: step, totalSteps: steps, warmup: 5, peak: lr, schedule: .cosine, minRatio: 0.1)
            opt.step(params: model.parameters, grads: model.gradients, lr: rate)
        }
        return (losses, model)
    }

    func testTinyModelMemorisesOneBatch() {
        let (losses, _) = train(steps: 150, seed: 1, lr: 1e-2)
        XCTAssertGreaterThan(losses[0], 4, "starts near log(259)")
        XCTAssertLessThan(losses.last!, 0.05, "losses: \(losses.suffix(5))")
    }

    func testTrainingIsBitIdenticalAcrossRuns() {
        let a = train(steps: 6, seed: 2, lr: 1e-2), b = train(steps: 6, seed: 2, lr: 1e-2)
        XCTAssertEqual(a.losses, b.losses)
        XCTAssertTrue(a.model.parameters.elementsEqual(b.model.parameters))
        XCTAssertNotEqual(a.losses.first, a.losses.last)
    }

    /// A masked-out token's loss does not move the parameters: training with an extra weight-0 token whose
    /// target differs gives bit-identical parameters.
    func testMaskedTokenDoesNotMoveParameters() {
        func run(target: Int32) -> [Float] {
            let model = LlamaModel(config: .tiny(), maxTokens: 64)
            model.initializeRandom(seed: 4)
            let opt = AdamW(parameterCount: model.parameterCount, config: AdamWConfig())
            var (batch, weights, spans) = LossOn.response.pack(examples)
            batch.targets[1] = target  // a prompt position gets a target but weight 0
            weights[1] = 0
            var dlp = [Float](repeating: 0, count: batch.count)
            for _ in 0..<3 {
                model.zeroGradients()
                let lp = model.forward(batch, training: true)
                _ = weights.withUnsafeBufferPointer { wb in
                    dlp.withUnsafeMutableBufferPointer {
                        Objective.sft(lossOn: .response).evaluate(logprobs: lp, weights: wb, spans: spans, dLogprobs: $0)
                    }
                }
                model.backward(dlp)
                opt.step(params: model.parameters, grads: model.gradients, lr: 1e-2)
            }
            return Array(model.parameters)
        }
        XCTAssertEqual(run(target: 10), run(target: 200))
    }
}
