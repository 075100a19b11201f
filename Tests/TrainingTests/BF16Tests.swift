import Base
import Kernels
import Model
import Training
import XCTest

/// `precision: "bf16"` (matrix-product inputs rounded to bf16, float32 accumulation, everything else
/// float32) against float32, on the tiny preset. Skipped on CPUs without native bf16, where the spec
/// refuses bf16.
final class BF16Tests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(Products.bf16Supported, "no native bf16 on this CPU (oneDNN: \(Products.isaName))")
    }

    /// Two sequences with next-token targets (the first two positions of the first masked, as a prompt).
    private func batch() -> TokenBatch {
        let a: [Int32] = [256, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 257]
        let b: [Int32] = [256, 65, 66, 67, 68, 69, 70, 257]
        var targets: [Int32] = []
        for i in a.indices { targets.append(i + 1 < a.count && i >= 2 ? a[i + 1] : -1) }
        for i in b.indices { targets.append(i + 1 < b.count ? b[i + 1] : -1) }
        return TokenBatch(tokens: a + b, targets: targets, sequenceStarts: [0, a.count])
    }

    /// Mean negative log-likelihood over the targets, and its gradient with respect to each log-probability.
    private func lossAndGradients(_ model: LlamaModel, _ batch: TokenBatch) -> Double {
        model.zeroGradients()
        let lp = model.forward(batch, training: true)
        let targeted = batch.targets.filter { $0 >= 0 }.count
        var loss = 0.0
        var dlp = [Float](repeating: 0, count: batch.count)
        for t in 0..<batch.count where batch.targets[t] >= 0 {
            loss -= Double(lp[t]) / Double(targeted)
            dlp[t] = -1 / Float(targeted)
        }
        dlp.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
        return loss
    }

    /// The bf16 step's loss and every parameter tensor's gradient against the fp32 step's. bf16 keeps 8
    /// significant bits (relative rounding 2^-9 = 0.2% per input); through the tiny model's two layers
    /// the gradients must stay within 5% in relative L2 norm per tensor, every value finite. They must
    /// also differ from fp32's (the bf16 path really ran).
    func testBF16GradientsAgreeWithFP32() {
        let model = LlamaModel(config: .tiny(), maxTokens: 64)
        model.initializeRandom(seed: 11, std: 0.2)
        let batch = batch()
        model.precision = .fp32
        let loss32 = lossAndGradients(model, batch)
        let grads32 = Array(model.gradients)
        model.precision = .bf16
        let loss16 = lossAndGradients(model, batch)
        let grads16 = Array(model.gradients)
        XCTAssertTrue(loss16.isFinite)
        XCTAssertEqual(loss16, loss32, accuracy: 1e-2 * abs(loss32))
        XCTAssertNotEqual(loss16, loss32, "bf16 inputs must change the loss in its last digits")
        var offset = 0
        for (name, shape) in model.parameterTable {
            let count = shape.reduce(1, *)
            var diff = 0.0, norm = 0.0
            for i in offset..<(offset + count) {
                XCTAssertTrue(grads16[i].isFinite, "\(name)[\(i - offset)] is \(grads16[i])")
                diff += Double(grads16[i] - grads32[i]) * Double(grads16[i] - grads32[i])
                norm += Double(grads32[i]) * Double(grads32[i])
            }
            let relative = (diff / norm).squareRoot()
            XCTAssertLessThan(relative, 0.05, "\(name): relative L2 difference \(relative)")
            offset += count
        }
        XCTAssertNotEqual(grads16, grads32)
    }

    /// A tiny-preset model trained in bf16 learns: 60 AdamW steps on one batch take its loss below a third
    /// of the start, as the fp32 run's does, and the two runs' final losses are within 25% of each other.
    func testBF16TrainingLearnsLikeFP32() {
        var finals: [Precision: Double] = [:]
        for precision in Precision.allCases {
            let model = LlamaModel(config: .tiny(), maxTokens: 64)
            model.initializeRandom(seed: 5, std: 0.05)
            model.precision = precision
            let optimizer = AdamW(parameterCount: model.parameterCount, config: AdamWConfig(lr: 3e-3))
            let batch = batch()
            let first = lossAndGradients(model, batch)
            var last = first
            for _ in 0..<60 {
                optimizer.step(params: model.parameters, grads: model.gradients, lr: 3e-3)
                last = lossAndGradients(model, batch)
            }
            XCTAssertTrue(last.isFinite, "\(precision)")
            XCTAssertLessThan(last, first / 3, "\(precision): loss \(first) -> \(last)")
            finals[precision] = last
        }
        XCTAssertEqual(finals[.bf16]!, finals[.fp32]!, accuracy: 0.25 * finals[.fp32]!)
    }
}
