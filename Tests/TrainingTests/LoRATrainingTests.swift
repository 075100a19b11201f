import Base
import Kernels
import XCTest
@testable import Model
@testable import Training

/// LoRA at full rank against full fine-tuning of the same projections (q, k, v, o, gate, up, down; the embedding, norms
/// and head frozen in both), from the same random tiny model on the same batch, with AdamW at the same rate.
final class LoRATrainingTests: XCTestCase {
    /// Two sequences of bytes with a repeated pattern (learnable), every position a target.
    static func batch() -> TokenBatch {
        let a: [Int32] = [256] + Array("the cat sat on the mat and the cat sat again".utf8).map(Int32.init)
        let b: [Int32] = [256] + Array("a dog ran to a log and a dog ran away".utf8).map(Int32.init)
        var targets: [Int32] = []
        for s in [a, b] { for i in s.indices { targets.append(i + 1 < s.count ? s[i + 1] : -1) } }
        return TokenBatch(tokens: a + b, targets: targets, sequenceStarts: [0, a.count])
    }

    /// Mean next-token loss, its dLoss/dlogprob.
    static func loss(_ model: LlamaModel, _ batch: TokenBatch, training: Bool) -> (Double, [Float]) {
        let lp = model.forward(batch, training: training)
        let n = batch.targets.filter { $0 >= 0 }.count
        var loss = 0.0, d = [Float](repeating: 0, count: batch.count)
        for t in 0..<batch.count where batch.targets[t] >= 0 {
            loss -= Double(lp[t]) / Double(n)
            d[t] = -1 / Float(n)
        }
        return (loss, d)
    }

    /// Losses of `steps` AdamW steps; `lora`: adapters at that alpha, else every projection trains as a full matrix.
    static func train(alpha: Double?, steps: Int, lr: Double) -> [Double] {
        let model = LlamaModel(config: .tiny(), maxTokens: 128)
        model.initializeRandom(seed: 5)
        if let alpha { model.attachLoRA(LoRASettings(rank: 64, alpha: alpha, targets: LoRATarget.available(for: .llama), seed: 2)) }
        let projections = Set((0..<model.config.nLayers).flatMap { l in
            ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"].map { "blk.\(l).\($0).weight" }
        })
        let optimizer = AdamW(parameterCount: model.trainableCount, config: AdamWConfig())
        let batch = batch()
        var losses: [Double] = []
        for _ in 0..<steps {
            model.zeroGradients()
            let (l, d) = loss(model, batch, training: true)
            losses.append(l)
            d.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
            if alpha == nil {  // full fine-tuning of the projections only
                for (name, _) in model.parameterTable where !projections.contains(name) { model.gradient(name).update(repeating: 0) }
            }
            optimizer.step(segments: model.trainable, lr: lr)
        }
        return losses
    }

    /// Measured (Zen 4 and Sapphire Rapids alike: the arithmetic is the same): full 5.575 -> 4.733 over 30 steps at lr 1e-3;
    /// LoRA r=64 at alpha 64: -> 4.833, 128: -> 4.701, 512: -> 4.521. At alpha 128 (scale 2) the loss falls within a
    /// third of full fine-tuning's fall. The first loss is the same bits: B = 0 at the start.
    func testFullRankLoRALearnsLikeFullFineTuningOfTheSameProjections() {
        let full = Self.train(alpha: nil, steps: 30, lr: 1e-3)
        let lora = Self.train(alpha: 128, steps: 30, lr: 1e-3)
        XCTAssertEqual(full[0].bitPattern, lora[0].bitPattern)
        let fullDrop = full[0] - full.last!, loraDrop = lora[0] - lora.last!
        XCTAssertGreaterThan(fullDrop, 0.5, "full fine-tuning of the projections learns: \(full)")
        XCTAssertGreaterThan(loraDrop, 0.75 * fullDrop, "LoRA \(lora) against full \(full)")
        XCTAssertLessThan(loraDrop, 1.33 * fullDrop, "LoRA \(lora) against full \(full)")
        XCTAssertTrue(lora.allSatisfy(\.isFinite))
    }
}
