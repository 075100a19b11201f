import Base
import Kernels
@testable import Model
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
            let optimizer = AdamW(parameterCount: model.parameterCount, config: AdamWConfig())
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

    /// Inside `withRoundedWeights` the block products read the model's bf16 copy of the weights instead of
    /// rounding each matrix themselves: the same values, so a forward gives the same log-probabilities bit
    /// for bit (a copy read at a wrong offset, or rounded another way, would not). The copy exists only
    /// inside the scope, nested scopes share it, and an fp32 scope makes none.
    func testRoundedWeightsCopyGivesTheSameLogprobs() {
        let model = LlamaModel(config: .tiny(), maxTokens: 64)
        model.initializeRandom(seed: 3, std: 0.2)
        model.precision = .bf16
        let batch = batch()
        let staged = Array(model.forward(batch, training: false))
        XCTAssertNil(model.roundedStorage)
        let copied: [Float] = model.withRoundedWeights(.bf16) {
            XCTAssertNotNil(model.roundedWeight(model.pBlocks[1].wDown))
            let outer = model.roundedStorage?.baseAddress
            return model.withRoundedWeights(.bf16) {
                XCTAssertEqual(model.roundedStorage?.baseAddress, outer, "a nested scope reuses the copy")
                return Array(model.forward(batch, training: false))
            }
        }
        XCTAssertNil(model.roundedStorage, "the copy is freed when the outermost scope ends")
        XCTAssertEqual(copied.map(\.bitPattern), staged.map(\.bitPattern))
        model.precision = .fp32
        let fp32 = Array(model.forward(batch, training: false))
        XCTAssertNotEqual(fp32, staged, "the bf16 forward really rounded")
        model.withRoundedWeights(.fp32) { XCTAssertNil(model.roundedWeight(model.pBlocks[0].wq)) }
    }

    /// A `BatchSession` in bf16 (which scores inside one `withRoundedWeights` scope per call, the output head
    /// reading the copy too) gives the log-probabilities the training model's bf16 forward gives for the same
    /// sequences, up to summation order (1e-4), and not fp32's.
    func testBatchSessionBF16ScoringMatchesTheModelsBF16Forward() {
        let model = LlamaModel(config: .tiny(), maxTokens: 64)
        model.initializeRandom(seed: 4, std: 0.2)
        let prompt: [Int32] = [256, 72, 101, 108], responses: [[Int32]] = [[108, 111, 32, 119], [65, 66, 257]]
        let session = BatchSession(model: model, slots: 64, rows: 16, context: 32)
        session.precision = .bf16
        let scored = session.scoreResponses([(prompt, responses)])[0]
        session.precision = .fp32
        let scored32 = session.scoreResponses([(prompt, responses)])[0]
        model.precision = .bf16
        var largestFromFP32: Float = 0
        for (r, response) in responses.enumerated() {
            let tokens = prompt + response
            let targets = tokens.indices.map { $0 + 1 < tokens.count && $0 + 1 >= prompt.count ? tokens[$0 + 1] : -1 }
            let lp = model.forward(TokenBatch(tokens: tokens, targets: targets, sequenceStarts: [0]), training: false)
            for (i, got) in scored[r].enumerated() {
                XCTAssertEqual(got, lp[prompt.count - 1 + i], accuracy: 1e-4, "response \(r) token \(i)")
                largestFromFP32 = max(largestFromFP32, abs(scored32[r][i] - got))
            }
        }
        XCTAssertGreaterThan(largestFromFP32, 1e-4, "bf16 scoring must differ from fp32's")
    }
}
