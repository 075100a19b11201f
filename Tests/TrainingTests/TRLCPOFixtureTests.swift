import Foundation
import XCTest
@testable import Training

/// Issue 36: CPO (its loss types and AlphaPO) and ORPO against TRL's own `CPOTrainer.cpo_loss` and
/// `ORPOTrainer.odds_ratio_loss` on the same per-sequence inputs (`scripts/make-loss-fixtures.py`; the NLL term is the
/// cross-entropy of the chosen tokens). CPO at 1e-9 (TRL computes in the inputs' float64); ORPO at 1e-6, since TRL's
/// odds_ratio_loss casts its inputs to float32. Also: `kind: "simpo"` is CPO's simpo with cpo_alpha 0, number for number.
final class TRLCPOFixtureTests: XCTestCase {
    struct Inputs: Decodable {
        struct Pair: Decodable {
            var policy_chosen, policy_rejected, reference_chosen, reference_rejected, chosen_tokens, rejected_tokens: Double
        }
        var pairs: [Pair]
    }
    struct Fixture: Decodable {
        struct Case: Decodable {
            var kind: String
            var loss_type: String?
            var alpha: Double?
            var cpo_alpha: Double?
            var beta: Double
            var simpo_gamma: Double?
            var label_smoothing: Double?
            var loss: Double
            var d_chosen: [Double]
            var d_rejected: [Double]
            var nll_loss: Double
            var log_odds_ratio: Double?
            var log_odds_chosen: Double?
            var dtype: String
        }
        var cases: [Case]
    }

    func testCPOAndORPOMatchTRL() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let inputs = try JSONDecoder().decode(Inputs.self, from: Data(contentsOf: folder.appendingPathComponent("trl-dpo-losses.json")))
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: folder.appendingPathComponent("trl-cpo-orpo-losses.json")))
        let pairs = inputs.pairs.map {
            PairQuantities(policyChosen: $0.policy_chosen, policyRejected: $0.policy_rejected, referenceChosen: $0.reference_chosen,
                           referenceRejected: $0.reference_rejected, chosenTokens: $0.chosen_tokens, rejectedTokens: $0.rejected_tokens)
        }
        XCTAssertEqual(fixture.cases.count, 10)
        for c in fixture.cases {
            let objective: any PairObjective = c.kind == "orpo" ? ORPO(beta: c.beta)
                : CPO(lossType: try XCTUnwrap(CPO.LossType(rawValue: c.loss_type ?? "")), beta: c.beta, cpoAlpha: c.cpo_alpha ?? 1,
                      gamma: c.simpo_gamma ?? 0.5, labelSmoothing: c.label_smoothing ?? 0, alpha: c.alpha ?? 0)
            let tolerance = c.dtype == "float64" ? 1e-9 : 1e-6
            let what = "\(c.kind) \(c.loss_type ?? "") alpha \(c.alpha ?? 0) beta \(c.beta)"
            let (loss, dc, dr) = objective.batchLoss(pairs)
            XCTAssertEqual(loss, c.loss, accuracy: tolerance * max(1, abs(c.loss)), what)
            for i in pairs.indices {
                XCTAssertEqual(dc[i], c.d_chosen[i], accuracy: tolerance * max(1, abs(c.d_chosen[i])), "\(what) pair \(i)")
                XCTAssertEqual(dr[i], c.d_rejected[i], accuracy: tolerance * max(1, abs(c.d_rejected[i])), "\(what) pair \(i)")
            }
            let metrics = objective.metrics(pairs)
            XCTAssertEqual(try XCTUnwrap(metrics["nll_loss"]), c.nll_loss, accuracy: 1e-9, what)
            if let ratio = c.log_odds_ratio { XCTAssertEqual(try XCTUnwrap(metrics["log_odds_ratio"]), ratio, accuracy: 1e-6, what) }
            if let odds = c.log_odds_chosen { XCTAssertEqual(try XCTUnwrap(metrics["log_odds_chosen"]), odds, accuracy: 1e-6, what) }
        }
        // SimPO is CPO's simpo without the NLL term
        let simpo = SimPO(beta: 2, gamma: 1, labelSmoothing: 0.1).batchLoss(pairs)
        let cpo = CPO(lossType: .simpo, beta: 2, cpoAlpha: 0, gamma: 1, labelSmoothing: 0.1).batchLoss(pairs)
        XCTAssertEqual(simpo.loss, cpo.loss, accuracy: 1e-12)
        for i in pairs.indices { XCTAssertEqual(simpo.dChosen[i], cpo.dChosen[i], accuracy: 1e-12) }
    }
}
