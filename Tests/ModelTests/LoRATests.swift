import Base
import XCTest
@testable import Model

/// LoRA adapters (`LoRAAdapters`, `LlamaModel.attachLoRA`): the adapted model at initialisation is the base, the
/// adapters' gradients through the whole model match finite differences, frozen weights get no gradient, and merging
/// the adapters into the weights scores as the adapters do.
final class LoRATests: XCTestCase {
    static let configs: [(String, LlamaConfig)] = [
        ("llama", .tiny(dim: 32, ffnDim: 48)),
        ("qwen2 (q/k/v bias, untied)", .tiny(dim: 32, ffnDim: 48, tiedEmbedding: false, qkvBias: true)),
        ("neox parallel", .tinyNeoX(dim: 32, ffnDim: 48, rotaryDims: 4)),
        ("neox sequential", .tinyNeoX(dim: 32, ffnDim: 48, parallelResidual: false, rotaryDims: 6)),
    ]

    static func model(_ cfg: LlamaConfig, seed: UInt64 = 7) -> LlamaModel {
        let model = LlamaModel(config: cfg, maxTokens: 32)
        model.initializeRandom(seed: seed, std: 0.2)
        return model
    }

    /// B is zero at initialisation (PEFT's), so every forward, training (with dropout) or not, and a scoring
    /// session's, gives the base model's log-probabilities bit for bit: the adapters add exact zeros.
    func testAnAdaptedModelScoresAsItsBaseAtInitialisation() {
        for (label, cfg) in Self.configs {
            let base = Self.model(cfg), adapted = Self.model(cfg)
            let lora = adapted.attachLoRA(LoRASettings(rank: 4, alpha: 8, dropout: 0.1, targets: LoRATarget.available(for: cfg.block), seed: 3))
            XCTAssertTrue(lora.parameters.contains { $0 != 0 }, "A is random")
            let batch = sampleBatch()
            for training in [false, true] {
                let a = Array(base.forward(batch, training: training)), b = Array(adapted.forward(batch, training: training))
                XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(label), training \(training)")
            }
            let s1 = BatchSession(model: base, slots: 32, rows: 16, context: 32)
            let s2 = BatchSession(model: adapted, slots: 32, rows: 16, context: 32)
            let items = [(prompt: Array(batch.tokens[0..<4]), responses: [Array(batch.tokens[4..<9]), Array(batch.tokens[10..<14])])]
            let x = s1.scoreResponses(items), y = s2.scoreResponses(items)
            XCTAssertEqual(x.flatMap { $0.flatMap { $0.map(\.bitPattern) } }, y.flatMap { $0.flatMap { $0.map(\.bitPattern) } }, "\(label): scoring session")
        }
    }

    /// dLoss/dA and dLoss/dB of every adapter (sampled entries: the largest gradient and random ones) against central
    /// finite differences, with B random so that A's gradient is not zero, on llama, Qwen2 and GPT-NeoX blocks (both
    /// residual orders), without and with dropout (the masks are a function of `dropoutKey`, so the perturbed
    /// forwards draw the same ones). Tolerance as the whole-model check's (`ModelGradientTests`): 1e-3 + 3%.
    /// The frozen weights' gradients stay exactly zero.
    func testAdapterGradientsMatchFiniteDifferences() {
        for (label, cfg) in Self.configs {
            for dropout in [0.0, 0.25] {
                let model = Self.model(cfg)
                let lora = model.attachLoRA(LoRASettings(rank: 3, alpha: 6, dropout: dropout,
                                                         targets: LoRATarget.available(for: cfg.block), seed: 5))
                var rng = SplitMix64(seed: 11)
                for (name, _) in lora.table where name.hasSuffix("lora_b") {
                    let b = lora.parameter(name)
                    for i in 0..<b.count { b[i] = Float(rng.normal()) * 0.3 }
                }
                lora.dropoutKey = 42
                let batch = sampleBatch()
                model.zeroGradients()
                let (_, dlp) = batchLoss(model, batch, training: true)
                model.backward(dlp)
                XCTAssertTrue(model.gradients.allSatisfy { $0 == 0 }, "\(label): frozen weights get no gradient")
                for (name, _) in lora.table {
                    let p = lora.parameter(name), g = lora.gradient(name)
                    var picks = [g.indices.max { abs(g[$0]) < abs(g[$1]) }!]
                    for _ in 0..<2 { picks.append(Int(rng.next() % UInt64(p.count))) }
                    var nonzero = false
                    for i in picks {
                        let numeric = centralDifference(p, i) { batchLoss(model, batch, training: true).loss }
                        XCTAssertTrue(g[i].isFinite && numeric.isFinite, "\(label): \(name)[\(i)]")
                        XCTAssertEqual(Double(g[i]), numeric, accuracy: 1e-3 + 0.03 * abs(numeric), "\(label), dropout \(dropout): \(name)[\(i)]")
                        nonzero = nonzero || abs(numeric) > 1e-3
                    }
                    XCTAssertTrue(nonzero, "\(label): \(name) should get a visible gradient")
                }
            }
        }
    }

    /// Dropout changes a training forward once B is not zero, and never an evaluation forward; the same key draws the
    /// same masks.
    func testDropoutAppliesOnlyInTrainingAndFollowsItsKey() {
        let model = Self.model(.tiny(dim: 32, ffnDim: 48))
        let lora = model.attachLoRA(LoRASettings(rank: 2, alpha: 4, dropout: 0.5, targets: [.q, .v, .down], seed: 1))
        for i in 0..<lora.parameters.count { lora.parameters[i] = 0.1 * Float(i % 7) - 0.3 }
        let batch = sampleBatch()
        lora.dropoutKey = 1
        let t1 = Array(model.forward(batch, training: true)), t1b = Array(model.forward(batch, training: true))
        lora.dropoutKey = 2
        let t2 = Array(model.forward(batch, training: true))
        let e1 = Array(model.forward(batch, training: false))
        lora.dropoutKey = 1
        let e2 = Array(model.forward(batch, training: false))
        // the masks keep 1 - p of the entries: 200,000 draws at p = 0.5 (binomial sd 0.0011) within 0.005
        let stream = LoRAAdapters.stream(index: 3, key: 7, seed: 1)
        let kept = (0..<200_000).filter { LoRAAdapters.keeps($0, stream: stream, threshold: lora.dropThreshold) }.count
        XCTAssertEqual(Double(kept) / 200_000, 0.5, accuracy: 0.005)
        XCTAssertEqual(t1, t1b)
        XCTAssertNotEqual(t1, t2)
        XCTAssertNotEqual(t1, e1)
        XCTAssertEqual(e1, e2)
    }

    /// Merging W += (alpha / rank) B A gives the adapted model's log-probabilities within 1e-5 (the same sums in
    /// another order: float rounding of terms near 1e-6 each) on every block kind.
    func testMergingScoresAsTheAdapters() {
        for (label, cfg) in Self.configs {
            let model = Self.model(cfg)
            let lora = model.attachLoRA(LoRASettings(rank: 4, alpha: 16, targets: LoRATarget.available(for: cfg.block), seed: 9))
            var rng = SplitMix64(seed: 2)
            for (name, _) in lora.table where name.hasSuffix("lora_b") {
                let b = lora.parameter(name)
                for i in 0..<b.count { b[i] = Float(rng.normal()) * 0.1 }
            }
            let batch = sampleBatch()
            let base = Self.model(cfg)
            let before = Array(base.forward(batch, training: false))
            let adapted = Array(model.forward(batch, training: false))
            model.mergeLoRA()
            XCTAssertNil(model.lora)
            let merged = Array(model.forward(batch, training: false))
            var moved = 0.0
            for t in 0..<batch.count where batch.targets[t] >= 0 {
                XCTAssertEqual(merged[t], adapted[t], accuracy: 1e-5, "\(label) position \(t)")
                moved = max(moved, Double(abs(adapted[t] - before[t])))
            }
            XCTAssertGreaterThan(moved, 1e-2, "\(label): the adapters must change the scores for the check to mean anything")
        }
    }

    /// Switching the adapters off scores as the base (the reference of a LoRA run, without a second copy).
    func testAdaptersOffScoreAsTheBase() {
        let cfg = LlamaConfig.tiny(dim: 32, ffnDim: 48)
        let model = Self.model(cfg), base = Self.model(cfg)
        let lora = model.attachLoRA(LoRASettings(rank: 2, alpha: 2, targets: [.q, .k, .v, .o], seed: 4))
        for i in 0..<lora.parameters.count { lora.parameters[i] = 0.05 }
        let batch = sampleBatch()
        let on = Array(model.forward(batch, training: false))
        lora.enabled = false
        let off = Array(model.forward(batch, training: false))
        XCTAssertEqual(off.map(\.bitPattern), Array(base.forward(batch, training: false)).map(\.bitPattern))
        XCTAssertNotEqual(on, off)
        // a scoring session made without the adapters (a LoRA run's PPO reference) scores as the base too
        lora.enabled = true
        let items = [(prompt: Array(batch.tokens[0..<4]), responses: [Array(batch.tokens[4..<9])])]
        let withoutAdapters = BatchSession(model: model, slots: 32, rows: 16, context: 32, adapters: false).scoreResponses(items)
        let ofBase = BatchSession(model: base, slots: 32, rows: 16, context: 32).scoreResponses(items)
        let withAdapters = BatchSession(model: model, slots: 32, rows: 16, context: 32).scoreResponses(items)
        XCTAssertEqual(withoutAdapters.flatMap { $0.flatMap { $0.map(\.bitPattern) } }, ofBase.flatMap { $0.flatMap { $0.map(\.bitPattern) } })
        XCTAssertNotEqual(withAdapters.flatMap { $0.flatMap { $0 } }, ofBase.flatMap { $0.flatMap { $0 } })
    }

    /// With activation checkpointing (each block recomputed in backward, dropout masks drawn again from their key) the
    /// adapters' gradients are bit for bit those without it.
    func testCheckpointedActivationsGiveTheSameAdapterGradients() {
        for cfg in [LlamaConfig.tiny(dim: 32, nLayers: 3, ffnDim: 48), .tinyNeoX(dim: 32, nLayers: 3, ffnDim: 48)] {
            var results: [[Float]] = []
            for checkpointed in [false, true] {
                let model = LlamaModel(config: cfg, maxTokens: 32, checkpointActivations: checkpointed)
                model.initializeRandom(seed: 11, std: 0.2)
                let lora = model.attachLoRA(LoRASettings(rank: 2, alpha: 4, dropout: 0.2, targets: LoRATarget.available(for: cfg.block), seed: 8))
                for (name, _) in lora.table where name.hasSuffix("lora_b") { lora.parameter(name).update(repeating: 0.05) }
                lora.dropoutKey = 3
                model.zeroGradients()
                let (_, dlp) = batchLoss(model, sampleBatch(), training: true)
                model.backward(dlp)
                results.append(Array(lora.gradients))
            }
            XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern))
            XCTAssertTrue(results[0].contains { $0 != 0 } && results[0].allSatisfy(\.isFinite))
        }
    }
}
