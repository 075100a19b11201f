import Foundation
import RunStore
import Training
import XCTest
@testable import Experiments

/// Issue 36: each new preference loss trains a tiny-preset model on its pairs and learns them (the margin it
/// optimises grows), recording TRL's metrics.
final class LossFamilyTests: XCTestCase {
    /// Runs one objective for `steps` steps on the tiny fixtures; returns its `rewards/margins` per step.
    /// With `metric`, also checks that every step recorded that metric, finite and positive.
    func margins(objective: String, steps: Int = 12, lr: String = "3e-3", metric: String? = nil) throws -> [Int: Double] {
        let store = try runTinySpec("""
            { name: "lf", model: { preset: "tiny", seed: 0 }, template: "hh", objective: \(objective),
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: \(steps), batch_size: 2, lr: \(lr), max_length: 160 }, eval: { every: \(steps) } }
            """, run: "lf", prefix: "loss-family").store
        var out: [Int: Double] = [:]
        for row in try store.query("SELECT step, value FROM train_metrics WHERE name = 'rewards/margins'") { out[row[0].int!] = row[1].double! }
        let names = Set(try store.query("SELECT DISTINCT name FROM train_metrics").map { $0[0].string! })
        for metric in ["rewards/chosen", "rewards/rejected", "rewards/accuracy", "logps/chosen", "logps/rejected"] {
            XCTAssertTrue(names.contains(metric), "\(objective) lacks \(metric)")
        }
        if let metric {
            let values = try store.query("SELECT value FROM train_metrics WHERE name = '\(metric)'").map { $0[0].double! }
            XCTAssertEqual(values.count, steps, metric)
            for v in values { XCTAssertTrue(v.isFinite && v > 0, "\(metric) \(v)") }
        }
        return out
    }

    /// The mean margin of the last three steps exceeds that of the first three (batches differ step to step).
    func assertLearns(_ m: [Int: Double], _ what: String, steps: Int = 12) {
        let first = (1...3).compactMap { m[$0] }.reduce(0, +) / 3, last = (steps - 2...steps).compactMap { m[$0] }.reduce(0, +) / 3
        XCTAssertGreaterThan(last, first, "\(what): margins \(m.sorted { $0.key < $1.key }.map(\.value))")
    }

    func testSimPOLearnsItsPairs() throws {
        assertLearns(try margins(objective: #"{ kind: "simpo", beta: 2, simpo_gamma: 0.5 }"#), "simpo")
    }

    /// CPO's loss types (AlphaPO too) and ORPO widen the (reference-free) margin between their chosen and rejected
    /// log-probabilities; the margin starts wherever the model puts it, so the last steps are compared with the first.
    func testCPOAndORPOLearnTheirPairs() throws {
        for objective in [#"{ kind: "cpo" }"#, #"{ kind: "cpo", loss_type: "hinge", beta: 0.5 }"#, #"{ kind: "cpo", loss_type: "ipo" }"#,
                          #"{ kind: "cpo", loss_type: "alphapo", beta: 2, alpha: 0.2 }"#, #"{ kind: "orpo", beta: 0.5 }"#] {
            assertLearns(try margins(objective: objective), objective)
        }
    }

    /// Every per-pair DPO loss type (and a weighted list) trains a tiny model and widens its margin over the reference:
    /// the policy starts as the reference (margin 0 at step 1), and the mean margin of the last three steps is positive.
    /// (A smaller rate than the SimPO run's: AdamW's first steps move every weight by about the rate whatever the
    /// gradient's size, and on the tiny model 3e-3 overshoots the saturating losses.)
    func testEveryDPOLossTypeLearnsItsPairs() throws {
        for type in ["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "apo_zero", "apo_down",
                     "discopop", "sigmoid_norm", "aot", "aot_unpaired"] {
            let smoothing = ["exo_pair", "robust"].contains(type) ? ", label_smoothing: 0.1" : ""
            let m = try margins(objective: #"{ kind: "dpo", beta: 0.5, loss_type: "\#(type)"\#(smoothing) }"#, lr: "3e-4")
            // the policy starts as its reference; the training pass and the reference pass compute the same sums in
            // different kernels (and, with oneDNN capped at AVX2, different reduction orders), so equal to float rounding
            XCTAssertEqual(try XCTUnwrap(m[1]), 0, accuracy: 1e-4, "\(type): the policy starts as its reference")
            XCTAssertGreaterThan((10...12).compactMap { m[$0] }.reduce(0, +) / 3, 0, "\(type): margins \(m.sorted { $0.key < $1.key }.map(\.value))")
        }
        for (objective, what) in [(#"{ kind: "dpo", loss_type: ["sigmoid", "apo_zero"], loss_weights: [1, 0.5], f_divergence_type: "js_divergence" }"#, "sigmoid + apo_zero, js"),
                                  (#"{ kind: "dpo", loss_type: ["sigmoid", "sft"] }"#, "RPO"),
                                  (#"{ kind: "dpo", ld_alpha: 0.5 }"#, "LD-DPO"),
                                  (#"{ kind: "dpo", use_weighting: true }"#, "WPO"),
                                  (#"{ kind: "dpo", sync_ref_model: true, ref_model_mixup_alpha: 0.5, ref_model_sync_steps: 4 }"#, "TR-DPO")] {
            let m = try margins(objective: objective, lr: "3e-4", metric: what == "WPO" ? "wpo/weight" : nil)
            XCTAssertGreaterThan((10...12).compactMap { m[$0] }.reduce(0, +) / 3, 0, "\(what): \(m)")
        }
    }

    /// Bad combinations are one line at plan time naming the key.
    func testBadLossSettingsAreRefusedAtPlanTime() throws {
        let refusal = try objectiveRefusals("loss-family-bad")
        let unknown = refusal(#"{ kind: "dpo", loss_type: "kto_pair" }"#)
        XCTAssertTrue(unknown.contains("objective.loss_type: expected one of \"sigmoid\", \"hinge\""), unknown)
        XCTAssertTrue(unknown.contains("\"sigmoid_norm\""), unknown)
        let batch = refusal(#"{ kind: "dpo", loss_type: ["sigmoid", "kto_pair"] }"#)
        XCTAssertTrue(batch.contains("objective.loss_type"), batch)
        XCTAssertEqual(refusal(#"{ kind: "dpo", loss_type: ["sigmoid", "sft"] }"#), "accepted", "RPO")
        XCTAssertTrue(refusal(#"{ kind: "dpo", loss_type: ["sigmoid", "ipo"], loss_weights: [1] }"#).contains("objective.loss_weights: expected a list of 2 numbers"))
        XCTAssertTrue(refusal(#"{ kind: "dpo", label_smoothing: 0.5 }"#).contains("objective.label_smoothing: expected a number in [0, 0.5)"))
        XCTAssertTrue(refusal(#"{ kind: "dpo", loss_type: "exo_pair" }"#).contains("objective.label_smoothing"))
        XCTAssertTrue(refusal(#"{ kind: "dpo", f_divergence_type: "kl" }"#).contains("objective.f_divergence_type"))
        XCTAssertTrue(refusal(#"{ kind: "simpo", tau: 1 }"#).contains("objective.tau"))
        XCTAssertTrue(refusal(#"{ kind: "dpo", loss_type: "aot", use_weighting: true }"#).contains("objective.use_weighting"))
        for line in [unknown, batch] { XCTAssertFalse(line.contains("\n"), line) }
    }
}

/// Issue 36: any reference model. A DPO run whose policy starts from the preset while its reference is another run's
/// weights records, at step 1 (policy = its starting weights), implicit rewards beta (pi_0 - pi_ref) computed here with
/// each model scoring the pairs on its own.
final class ReferenceModelTests: XCTestCase {
    func testAReferenceFromAnotherRunGivesTheImpliedRewardsAtStepOne() throws {
        let dir = try temporaryFolder("reference", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        let text = """
            { name: "ref", model: { preset: "tiny", seed: 0 }, template: "hh",
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 3, batch_size: 6, lr: 3e-3, max_length: 160 }, eval: { every: 3 },
              stages: [ { name: "sft" },
                        { name: "dpo", objective: { kind: "dpo", beta: 0.5, reference: { run: "sft" } } },
                        { name: "kto", objective: { kind: "kto", reference: { preset: "tiny", seed: 5 } } } ] }
            """
        try text.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        XCTAssertEqual(experiment.runs[1].config.reference, .run(.init(run: "ref/sft", step: nil)))
        XCTAssertEqual(experiment.runs[1].config.inputRuns, ["ref/sft"], "the dpo run waits for its reference run")
        XCTAssertTrue(experiment.runs[1].configJSON.contains(#""reference":{"run":"ref/sft","step":"final"}"#), experiment.runs[1].configJSON)
        XCTAssertFalse(experiment.runs[0].configJSON.contains("reference"), "no reference: the identity is as before")
        try RunExecutor.validateInputs(of: experiment)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
        XCTAssertEqual(try executor.runAll().finished, ["ref/sft", "ref/dpo", "ref/kto"])

        // every pair of the data is in step 1's batch (6 lines, batch 6): the mean is over all of them
        let config = experiment.runs[1].config
        let policy = try ModelLoader.load(config.model, experiment: experiment, capacity: 4096, maxSequenceLength: 320, threads: 2)
        let reference = try ModelLoader.load(config.model, experiment: experiment, capacity: 4096, maxSequenceLength: 320, threads: 2)
        _ = try RunContext(executor: executor, run: experiment.runs[1], runID: 0).loadInitialWeights(.init(run: "ref/sft", step: nil), into: reference.model)
        let (path, examples) = try PairEncoder.trainingExamples(of: config, path: executor.trainPath(config))
        guard case .pairs(let pairs) = try PairEncoder.training(examples, objective: config.objective, tokenizer: policy.tokenizer,
                                                                 template: config.template, maxLength: 160, file: path) else { return XCTFail("pairs") }
        let p0 = referenceLogprobs(model: policy.model, pairs: pairs, batchSize: 6), pr = referenceLogprobs(model: reference.model, pairs: pairs, batchSize: 6)
        var chosen = 0.0, rejected = 0.0
        for i in pairs.indices {
            chosen += 0.5 * (p0[2 * i] - pr[2 * i]) / Double(pairs.count)
            rejected += 0.5 * (p0[2 * i + 1] - pr[2 * i + 1]) / Double(pairs.count)
        }
        func metric(_ name: String) throws -> Double {
            try XCTUnwrap(store.query("""
                SELECT m.value FROM train_metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = 'ref/dpo' AND m.step = 1 AND m.name = ?
                """, [.text(name)]).first?[0].double)
        }
        XCTAssertGreaterThan(abs(chosen), 0.1, "the two models must differ for the check to mean anything")
        // the training pass and this scoring pass sum the same float log-probabilities packed differently
        XCTAssertEqual(try metric("rewards/chosen"), chosen, accuracy: 1e-3 * max(1, abs(chosen)))
        XCTAssertEqual(try metric("rewards/rejected"), rejected, accuracy: 1e-3 * max(1, abs(rejected)))
    }

    /// ppo's KL penalty reads `objective.reference` too: against a different model the first step's KL is far larger
    /// than against the starting weights (where it is 0 up to the sampling and scoring passes' rounding).
    func testPPOMeasuresItsKLAgainstTheNamedReference() throws {
        var kl: [Double] = []
        for reference in ["", ", reference: { preset: \"tiny\", seed: 3 }"] {
            let dir = try temporaryFolder("ppo-reference", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
            let text = """
                { name: "pr", model: { preset: "tiny", seed: 0 }, template: "hh",
                  objective: { kind: "ppo", reward: { rule: "length" }, samples_per_prompt: 2, max_tokens: 4\(reference) },
                  data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
                  train: { steps: 1, batch_size: 2, max_length: 160 }, eval: { every: 1, at_start: false } }
                """
            try text.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
            let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
            try RunExecutor.validateInputs(of: experiment)
            let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
            XCTAssertEqual(try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll().finished, ["pr"])
            kl.append(try XCTUnwrap(store.query("SELECT value FROM train_metrics WHERE name = 'kl' AND step = 1").first?[0].double))
        }
        XCTAssertLessThan(abs(kl[0]), 1e-3, "against its own starting weights")
        XCTAssertGreaterThan(abs(kl[1]), 100 * max(abs(kl[0]), 1e-4), "against another model: \(kl)")
    }

    func testAReferenceMustShareTheTokenizerAndAReferenceFreeObjectiveTakesNone() throws {
        let dir = try temporaryFolder("reference-bad", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        func plan(_ objective: String) -> String {
            let text = """
                { name: "rb", model: { preset: "tiny", seed: 0 }, template: "hh", objective: \(objective),
                  data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } }, train: { steps: 2, max_length: 160 } }
                """
            try? text.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
            do {
                try RunExecutor.validateInputs(of: try Experiment.load(path: dir.appendingPathComponent("spec.json5").path))
                return "accepted"
            } catch { return "\(error)" }
        }
        let other = plan(#"{ kind: "dpo", reference: { gguf: "\#(hfFixture("qwen2-tiny.gguf"))" } }"#)
        XCTAssertTrue(other.contains("objective.reference: expected a model with the policy's tokenizer"), other)
        XCTAssertTrue(plan(#"{ kind: "simpo", reference: { preset: "tiny", seed: 1 } }"#).contains("objective.reference: expected no reference: objective simpo reads no reference model"))
        XCTAssertTrue(plan(#"{ kind: "dpo", reference: { run: "nope" } }"#).contains("objective.reference.run"))
        XCTAssertTrue(plan(#"{ kind: "dpo", reference: { preset: "tiny", seed: 1, run: "x" } }"#).contains("either a model"))
        XCTAssertEqual(plan(#"{ kind: "dpo", reference: { preset: "tiny", seed: 1 } }"#), "accepted")
    }
}
