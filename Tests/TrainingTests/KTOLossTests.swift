import Foundation
import XCTest
@testable import Training

/// KTO's loss, KL estimate and gradient against a naive Double computation written from the definition;
/// the mismatched-pair rotation and the class-weight advice by hand.
final class KTOLossTests: XCTestCase {
    let policy = [-10.0, -12.5, -8.0, -20.0], reference = [-11.0, -12.0, -8.5, -18.0]
    let policyKL = [-30.0, -28.0, -25.0, -31.0], referenceKL = [-31.0, -29.5, -25.0, -31.5]
    let desirable = [true, false, true, false]
    let beta = 0.5, wD = 1.0, wU = 1.5

    /// The definition, term by term, in Double.
    func naive(_ p: [Double]) -> Double {
        let z = max(0, zip(policyKL, referenceKL).map { $0 - $1 }.reduce(0, +) / 4)
        var total = 0.0
        for i in 0..<4 {
            let r = p[i] - reference[i]
            let v = desirable[i] ? 1 / (1 + exp(-beta * (r - z))) : 1 / (1 + exp(-beta * (z - r)))
            total += (desirable[i] ? wD : wU) * (1 - v)
        }
        return total / 4
    }

    func testLossKLAndGradientAgainstTheDefinition() {
        let (r, d) = ktoLoss(policy: policy, reference: reference, policyMismatched: policyKL, referenceMismatched: referenceKL,
                             desirable: desirable, beta: beta, desirableWeight: wD, undesirableWeight: wU)
        XCTAssertEqual(r.loss, naive(policy), accuracy: 1e-14)
        XCTAssertEqual(r.metrics["kl"]!, (1 + 1.5 + 0 + 0.5) / 4, accuracy: 1e-14)  // mean of the mismatched log-ratios
        for i in 0..<4 {
            let h = 1e-6
            var up = policy, down = policy
            up[i] += h
            down[i] -= h
            XCTAssertEqual(d[i], (naive(up) - naive(down)) / (2 * h), accuracy: 1e-8, "example \(i)")
        }
        XCTAssertLessThan(d[0], 0, "raising a desirable completion lowers the loss")
        XCTAssertGreaterThan(d[1], 0, "raising an undesirable one raises it")
        XCTAssertEqual(r.metrics["rewards/chosen"]!, beta * ((-10 + 11) + (-8 + 8.5)) / 2, accuracy: 1e-14)
        XCTAssertEqual(r.metrics["rewards/rejected"]!, beta * ((-12.5 + 12) + (-20 + 18)) / 2, accuracy: 1e-14)
        XCTAssertEqual(r.metrics["logps/chosen"]!, -9, accuracy: 1e-14)
        XCTAssertEqual(r.metrics["logps/rejected"]!, -16.25, accuracy: 1e-14)
    }

    /// z is clamped at 0: a policy less likely than the reference on mismatched pairs gives no negative KL.
    func testTheKLEstimateIsClampedAtZero() {
        let (r, _) = ktoLoss(policy: policy, reference: reference, policyMismatched: referenceKL.map { $0 - 2 },
                             referenceMismatched: referenceKL, desirable: desirable, beta: beta, desirableWeight: wD, undesirableWeight: wU)
        XCTAssertEqual(r.metrics["kl"], 0)
    }

    /// Each example's completion for the KL estimate is the previous example's, the first taking the last's.
    func testTheMismatchedPairRotationByHand() {
        XCTAssertEqual((0..<4).map { ktoMismatchedIndex($0, count: 4) }, [3, 0, 1, 2])
        XCTAssertEqual((0..<2).map { ktoMismatchedIndex($0, count: 2) }, [1, 0])
        XCTAssertTrue((0..<5).allSatisfy { ktoMismatchedIndex($0, count: 5) != $0 }, "never an example's own completion")
    }

    func testTheClassWeightAdvice() {
        XCTAssertNil(ktoWeightWarning(desirable: 10, undesirable: 10, desirableWeight: 1, undesirableWeight: 1))
        XCTAssertNil(ktoWeightWarning(desirable: 12, undesirable: 10, desirableWeight: 1, undesirableWeight: 1))  // 1.2
        let low = ktoWeightWarning(desirable: 5, undesirable: 10, desirableWeight: 1, undesirableWeight: 1)  // 0.5
        XCTAssertTrue(low?.contains("0.500") == true && low?.contains("[1, 4/3]") == true, low ?? "nil")
        XCTAssertNotNil(ktoWeightWarning(desirable: 20, undesirable: 10, desirableWeight: 1, undesirableWeight: 1))  // 2
        XCTAssertNotNil(ktoWeightWarning(desirable: 0, undesirable: 10, desirableWeight: 1, undesirableWeight: 1))
    }
}

import Base
import Model

/// The Trainer's KTO step through the whole model: its gradient (lr 1e-30, below any weight's last bit, no clipping, so a step leaves the
/// weights as they are and its gradients in place) against central finite differences of the step's loss,
/// with the reference shifted so that the examples sit away from the sigmoid's linear middle (beta r from -2
/// to 1.5).
final class KTOTrainingGradientTests: XCTestCase {
    private func bytes(_ s: String) -> [Int32] { Array(s.utf8).map(Int32.init) }

    func testTheKTOStepGradientMatchesFiniteDifferences() throws {
        let model = LlamaModel(config: .tiny(dim: 32, ffnDim: 48), maxTokens: 256)
        model.initializeRandom(seed: 7, std: 0.2)
        let pairs = [("Q: hi\nA:", " hello"), ("Q: 2+2\nA:", " five"), ("Q: sky?\nA:", " blue"), ("Q: cat?\nA:", " no")].map {
            EncodedPair(prompt: [256] + bytes($0.0), response: bytes($0.1) + [257], promptCut: 0)
        }
        let train = try JSONDecoder().decode(TrainSettings.self, from: Data(#"{"steps": 1, "batch_size": 4, "lr": 1e-30, "warmup": 0, "grad_clip": 0, "weight_decay": 0}"#.utf8))
        var reference = Trainer.ktoReferenceLogprobs(model: model, pairs: pairs, train: train, seed: 3)
        XCTAssertEqual(reference.count, 8)
        for (i, shift) in [3.0, -2.0, 1.0, -4.0, 6.0, 5.0, 4.0, 6.0].enumerated() { reference[i] += shift }
        let trainer = Trainer(model: model, train: train, objective: .kto(beta: 0.5, desirableWeight: 1, undesirableWeight: 1.3), seed: 3,
                              data: .unpaired(pairs, desirable: [true, false, true, false], reference: reference))
        let first = trainer.step(1)
        // z is detached (no gradient flows through it, as in TRL), so the loss's finite differences equal the
        // analytic gradient only where z does not move: here the mismatched pairs sit 5.25 nats below the
        // reference, z = max(0, -5.25) = 0 (ktoLoss's own test covers z > 0 in Double).
        XCTAssertEqual(first.metrics["kl"], 0)
        assertGradientMatchesFiniteDifferences(model) { trainer.step(1).loss }
    }
}

/// The model's gradients (as they stand) against central finite differences (h = 0.01) of `loss` at two coordinates
/// of every parameter tensor: its largest gradient and one more; both finite (a NaN fails), within 1e-3 + 3%; and a
/// visible (> 1e-3) slope in more than half of the tensors, so that the check cannot pass on zeros.
func assertGradientMatchesFiniteDifferences(_ model: LlamaModel, file: StaticString = #filePath, line: UInt = #line, loss: () -> Double) {
    let g = Array(model.gradients), p = model.parameters
    var visible = 0
    for (k, (name, _)) in model.parameterTable.enumerated() {
        let offset = model.parameter(name).baseAddress! - p.baseAddress!
        let grad = Array(g[offset..<offset + model.parameter(name).count])
        for i in [grad.indices.max { abs(grad[$0]) < abs(grad[$1]) }!, (7919 * (k + 1)) % grad.count] {
            let keep = p[offset + i], h: Float = 1e-2
            p[offset + i] = keep + h
            let up = loss()
            p[offset + i] = keep - h
            let down = loss()
            p[offset + i] = keep
            let numeric = (up - down) / Double(2 * h)
            XCTAssertTrue(grad[i].isFinite && numeric.isFinite, "\(name)[\(i)]", file: file, line: line)
            XCTAssertEqual(Double(grad[i]), numeric, accuracy: 1e-3 + 0.03 * abs(numeric), "\(name)[\(i)]", file: file, line: line)
            if abs(numeric) > 1e-3 { visible += 1 }
        }
    }
    XCTAssertGreaterThan(visible, model.parameterTable.count / 2, file: file, line: line)
}
