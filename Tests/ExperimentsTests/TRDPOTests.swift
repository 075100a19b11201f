import Foundation
import RunStore
import Training
import XCTest
@testable import Experiments

/// Issue 36: TR-DPO (`sync_ref_model`), the reference moved towards the policy during training.
final class TRDPOTests: XCTestCase {
    /// Runs one DPO objective for `steps` steps on the tiny fixtures (checkpoint at the end); returns the folder and store.
    func train(_ objective: String, steps: Int = 6) throws -> (dir: URL, store: RunStore) {
        try runTinySpec("""
            { name: "tr", model: { preset: "tiny", seed: 0 }, template: "hh", objective: \(objective),
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: \(steps), batch_size: 2, lr: 3e-3, max_length: 160, warmup: 0 }, eval: { every: \(steps) } }
            """, run: "tr", prefix: "trdpo")
    }

    func metric(_ store: RunStore, _ name: String) throws -> [Double] {
        try store.query("SELECT value FROM train_metrics WHERE name = '\(name)' ORDER BY step").map { $0[0].double! }
    }

    /// Until its first sync TR-DPO's reference is the starting weights, read from the same cache: a run whose sync
    /// never comes records DPO's losses and log-probabilities bit for bit (the same arithmetic in the same order).
    func testATRDPORunThatNeverSyncsTrainsAsDPO() throws {
        let dpo = try train(#"{ kind: "dpo", beta: 0.5 }"#)
        let tr = try train(#"{ kind: "dpo", beta: 0.5, sync_ref_model: true, ref_model_sync_steps: 100 }"#)
        XCTAssertEqual(try metric(tr.store, "loss"), try metric(dpo.store, "loss"))
        XCTAssertEqual(try metric(tr.store, "rewards/margins"), try metric(dpo.store, "rewards/margins"))
        XCTAssertEqual(try metric(tr.store, "ref_model/version"), [0, 0, 0, 0, 0, 0])
        let lp = "SELECT step, response_id, logprob FROM logprobs ORDER BY step, response_id"
        XCTAssertEqual(try tr.store.query(lp).map { $0.map(\.double) }, try dpo.store.query(lp).map { $0.map(\.double) })
    }

    /// With alpha 1 a sync makes the reference the policy itself: the step after it starts with every log-ratio 0 (margin
    /// 0, loss log 2), while the step before it had learned a margin. The training forward and the reference's forward
    /// compute the same sums in different kernels (and, with oneDNN capped at AVX2, orders), so 0 within 1e-4.
    func testASyncWithAlphaOneMakesTheReferenceThePolicy() throws {
        let tr = try train(#"{ kind: "dpo", beta: 0.5, sync_ref_model: true, ref_model_mixup_alpha: 1, ref_model_sync_steps: 3 }"#)
        XCTAssertEqual(try metric(tr.store, "ref_model/version"), [0, 0, 0, 1, 1, 1])
        let margins = try metric(tr.store, "rewards/margins"), losses = try metric(tr.store, "loss")
        XCTAssertGreaterThan(abs(margins[2]), 1e-3, "step 3 learned a margin: \(margins)")
        XCTAssertEqual(margins[3], 0, accuracy: 1e-4, "step 4: the reference is the policy of step 3: \(margins)")
        XCTAssertEqual(losses[3], log(2), accuracy: 1e-4)
        XCTAssertGreaterThan(abs(margins[4]), 1e-3, "step 5 moved away again: \(margins)")
    }

    /// The reference's weights after a sync are alpha theta + (1 - alpha) theta_0, the checkpoint's fourth tensor (after
    /// the weights and AdamW's moments), computed here from the preset's starting weights and the run's final weights.
    func testTheCheckpointHoldsTheMixedReference() throws {
        let tr = try train(#"{ kind: "dpo", beta: 0.5, sync_ref_model: true, ref_model_mixup_alpha: 0.25, ref_model_sync_steps: 3 }"#, steps: 3)
        let start = try ModelLoader.load(.preset(name: "tiny", seed: 0), experiment: nil, capacity: 64, maxSequenceLength: 64, threads: 1).model
        let n = start.parameterCount
        let buffers = (0..<4).map { _ in UnsafeMutableBufferPointer<Float>.allocate(capacity: n) }
        defer { buffers.forEach { $0.deallocate() } }
        let header = try Checkpoint.read(RunExecutor.checkpointURL(root: tr.dir, experiment: "tr", runName: "tr"), into: buffers)
        XCTAssertEqual(header.step, 3)
        let theta = buffers[0], ref = buffers[3]
        var moved = 0
        for i in 0..<n {
            XCTAssertEqual(ref[i], Float(0.75) * start.parameters[i] + Float(0.25) * theta[i], "parameter \(i)")
            if theta[i] != start.parameters[i] { moved += 1 }
        }
        XCTAssertGreaterThan(moved, n / 2, "the policy trained")
    }

    /// Bad TR-DPO settings are one line at plan time naming the key.
    func testBadTRDPOSettingsAreRefused() throws {
        let refusal = try objectiveRefusals("trdpo-bad")
        XCTAssertTrue(refusal(#"{ kind: "dpo", ref_model_sync_steps: 4 }"#).contains("objective.ref_model_sync_steps: expected no value without sync_ref_model"))
        XCTAssertTrue(refusal(#"{ kind: "dpo", sync_ref_model: true, ref_model_mixup_alpha: 0 }"#).contains("objective.ref_model_mixup_alpha"))
        XCTAssertTrue(refusal(#"{ kind: "dpo", sync_ref_model: true, ref_model_sync_steps: 0 }"#).contains("objective.ref_model_sync_steps"))
        let reference = refusal(#"{ kind: "dpo", sync_ref_model: true, reference: { preset: "tiny", seed: 1 } }"#)
        XCTAssertTrue(reference.contains("objective.reference: expected no reference with sync_ref_model"), reference)
        XCTAssertTrue(refusal(#"{ kind: "ipo", sync_ref_model: true }"#).contains("objective.sync_ref_model"))
        XCTAssertEqual(refusal(#"{ kind: "dpo", sync_ref_model: true }"#), "accepted")
    }
}
