import Base
import Foundation
import XCTest
import Model
@testable import Training

/// The reward model (`Objective.reward`): the Bradley-Terry loss against a naive Double computation, the
/// scalar head's gradient through the whole model, and a tiny model learning a separable preference.
final class RewardModelTests: XCTestCase {
    private func bytes(_ s: String) -> [Int32] { Array(s.utf8).map(Int32.init) }

    /// Loss, metrics and gradients by hand: -log sigmoid(r+ - r- - m) averaged, plus c mean (r+ + r-)^2.
    func testBradleyTerryLossByHand() {
        let chosen: [Float] = [1.5, -0.25, 0.75], rejected: [Float] = [0.5, 0.5, 0.75], margins = [0.25, 0, -1]
        let c = 0.1
        let (r, dc, dr) = bradleyTerryLoss(chosen: chosen, rejected: rejected, margins: margins, center: c)
        func naive(_ ch: [Double], _ rj: [Double]) -> Double {
            var total = 0.0
            for i in ch.indices {
                let z = ch[i] - rj[i] - margins[i]
                total += -log(1 / (1 + exp(-z))) + c * (ch[i] + rj[i]) * (ch[i] + rj[i])
            }
            return total / Double(ch.count)
        }
        let ch = chosen.map(Double.init), rj = rejected.map(Double.init)
        XCTAssertEqual(r.loss, naive(ch, rj), accuracy: 1e-12)
        // gradients against central differences of the naive loss
        for i in ch.indices {
            let h = 1e-6
            var up = ch, down = ch
            up[i] += h
            down[i] -= h
            XCTAssertEqual(Double(dc[i]), (naive(up, rj) - naive(down, rj)) / (2 * h), accuracy: 1e-6, "chosen \(i)")
            var upR = rj, downR = rj
            upR[i] += h
            downR[i] -= h
            XCTAssertEqual(Double(dr[i]), (naive(ch, upR) - naive(ch, downR)) / (2 * h), accuracy: 1e-6, "rejected \(i)")
        }
        // pair 2 is a tie: not counted as right
        XCTAssertEqual(r.metrics["accuracy"], 1.0 / 3)
        XCTAssertEqual(r.metrics["margin"]!, (1.0 - 0.75 + 0) / 3, accuracy: 1e-12)
        XCTAssertEqual(r.metrics["mean_reward"]!, (1.5 - 0.25 + 0.75 + 0.5 + 0.5 + 0.75) / 6, accuracy: 1e-12)
        XCTAssertEqual(r.metrics["min_reward"], -0.25)
        XCTAssertEqual(r.metrics["max_reward"], 1.5)
        // far-out margins stay finite (softplus, not log of a sigmoid that underflows)
        let far = bradleyTerryLoss(chosen: [-60], rejected: [60], margins: [0], center: 0)
        XCTAssertEqual(far.result.loss, 120, accuracy: 1e-9)
        XCTAssertEqual(far.dChosen[0], -1, accuracy: 1e-12)
    }

    /// The scalar head and the trunk under it: central finite differences of the Bradley-Terry loss (with a
    /// margin and centering) against the analytic gradient through `backwardRewards`, for the head's entries
    /// and sampled entries of every other tensor, llama and GPT-NeoX blocks.
    func testRewardHeadGradientMatchesFiniteDifferences() {
        let pairs = [
            PreferencePair(prompt: [256] + bytes("Q: hi\nA:"), chosen: bytes(" hello") + [257], rejected: bytes(" go away") + [257]),
            PreferencePair(prompt: [256] + bytes("Q: 2+2\nA:"), chosen: bytes(" four") + [257], rejected: bytes(" five") + [257]),
        ]
        let margins = [0.5, -0.25]
        for cfg in [LlamaConfig.tiny(dim: 32, ffnDim: 48), .tinyNeoX(dim: 32, ffnDim: 48)] {
            let base = LlamaModel(config: cfg, maxTokens: 128)
            base.initializeRandom(seed: 7, std: 0.2)
            let model = base.withRewardHead(seed: 3)
            let head = model.parameter("reward_head.weight")
            for i in 0..<head.count { head[i] *= 20 }  // rewards of order 1, so that the loss is not flat
            let (batch, _, spans) = PreferencePair.pack(pairs)
            let rows = spans.map { $0.start + $0.count - 1 }
            func loss(training: Bool) -> (Double, [Float]) {
                let r = model.forwardRewards(batch, rows: rows, training: training)
                let (result, dc, dr) = bradleyTerryLoss(chosen: [r[0], r[2]], rejected: [r[1], r[3]], margins: margins, center: 0.05)
                return (result.loss, [dc[0], dr[0], dc[1], dr[1]])
            }
            model.zeroGradients()
            let (_, d) = loss(training: true)
            model.backwardRewards(d)
            var rng = SplitMix64(seed: 5)
            var visible = 0
            for (name, _) in model.parameterTable {
                let p = model.parameter(name), g = model.gradient(name)
                var picks = [g.indices.max { abs(g[$0]) < abs(g[$1]) }!, Int(rng.next() % UInt64(p.count))]
                if name == "reward_head.weight" { picks += [0, 5, 17] }
                for i in picks {
                    let keep = p[i], h: Float = 1e-2
                    p[i] = keep + h
                    let up = loss(training: false).0
                    p[i] = keep - h
                    let down = loss(training: false).0
                    p[i] = keep
                    let numeric = (up - down) / Double(2 * h)
                    XCTAssertTrue(g[i].isFinite && numeric.isFinite, "\(name)[\(i)]")
                    XCTAssertEqual(Double(g[i]), numeric, accuracy: 1e-3 + 0.03 * abs(numeric), "\(cfg.block) \(name)[\(i)]")
                    if abs(numeric) > 1e-3 { visible += 1 }
                }
            }
            XCTAssertGreaterThan(visible, model.parameterTable.count, "\(cfg.block): most checked entries must have a visible gradient")
            // the language-model weights are those of the model it was made from
            XCTAssertEqual(Array(model.parameters[0..<base.parameterCount]), Array(base.parameters))
            XCTAssertEqual(model.languageModelParameterCount, base.parameterCount)
        }
    }

    /// A tiny-preset reward model trained with the Trainer on a separable preference (answers that end in
    /// "yes" over answers that end in "no", on prompts it sees once per step) reaches accuracy 1.0, and its
    /// rewards separate on pairs it was not trained on.
    func testATinyRewardModelLearnsASeparablePreference() throws {
        let questions = ["is it blue", "can we go", "shall I", "is this ok", "do you agree", "will it rain", "is 2 even", "may I"]
        let pairs = questions.map { q in
            PreferencePair(prompt: [256] + bytes("Q: \(q)?\nA:"), chosen: bytes(" yes") + [257], rejected: bytes(" no") + [257])
        }
        let base = LlamaModel(config: .tiny(), maxTokens: 512)
        base.initializeRandom(seed: 1)
        let model = base.withRewardHead(seed: 0)
        let train = try JSONDecoder().decode(TrainSettings.self, from: Data(#"{"steps": 60, "batch_size": 4, "lr": 1e-3, "warmup": 0}"#.utf8))
        let objective = Objective.reward(margin: nil, centerRewards: 0.01, headSeed: 0)
        let trainer = Trainer(model: model, train: train, objective: objective, seed: 1,
                              data: .rewardPairs(Array(pairs.prefix(6)), margins: [Double](repeating: 0, count: 6)))
        var accuracy: [Double] = []
        for step in 1...train.steps {
            let r = trainer.step(step)
            XCTAssertTrue(r.loss.isFinite)
            accuracy.append(r.metrics["accuracy"]!)
            XCTAssertLessThanOrEqual(r.metrics["min_reward"]!, r.metrics["max_reward"]!)
        }
        XCTAssertEqual(accuracy.suffix(5), [1, 1, 1, 1, 1], "accuracy per step: \(accuracy)")
        XCTAssertLessThan(accuracy.first!, 1, "it had something to learn")
        // held out: the last two questions
        let (batch, _, spans) = PreferencePair.pack(Array(pairs.suffix(2)))
        let r = model.forwardRewards(batch, rows: spans.map { $0.start + $0.count - 1 }, training: false)
        XCTAssertGreaterThan(r[0], r[1])
        XCTAssertGreaterThan(r[2], r[3])
    }
}
