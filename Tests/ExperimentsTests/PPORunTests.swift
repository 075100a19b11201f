import Base
import Probes
import Foundation
import RunStore
import XCTest
@testable import Experiments

/// Online policy optimisation (`objective.kind` "ppo") on the tiny preset: a rule reward is learned within a
/// few dozen steps, every sample is recorded, and the reward can be a reward-model run or a judge.
final class PPORunTests: XCTestCase {
    func spec(_ objective: String, steps: Int = 60, stages: String? = nil, categories: String = "{ chosen: \"chosen\", rejected: \"rejected\" }") -> String {
        """
        {
          name: "rl", model: { preset: "tiny", seed: 0 },
          data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl", categories: \(categories) } },
          train: { steps: \(steps), batch_size: 2, lr: 3e-3, max_length: 160, warmup: 0 },
          eval: { every: 30 },
          \(stages.map { "stages: \($0)," } ?? "objective: \(objective),")
        }
        """
    }

    func metric(_ store: RunStore, _ run: String, _ name: String) throws -> [Double] {
        try store.query("""
            SELECT m.value FROM train_metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = ? AND m.name = ? ORDER BY m.step
            """, [.text(run), .text(name)]).map { $0[0].double! }
    }

    /// A policy rewarded for a letter in its answer learns to write it: the mean reward of the last 15 steps is
    /// well above that of the first 15 (GRPO advantages, two epochs of two mini-batches, the default KL penalty), in
    /// at least two of three seeds and on average.
    /// Every sample of every step is in the store, its reward the rule applied to its recorded text.
    func testARuleRewardIsLearnedAndEverySampleIsRecorded() throws {
        let dir = try temporaryFolder("ppo-rule", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        try spec(#"{ kind: "ppo", reward: { rule: "contains", text: "e" }, samples_per_prompt: 4, max_tokens: 8, epochs: 2, mini_batches: 2, scale_advantages: true }"#)
            .write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        try RunExecutor.validateInputs(of: experiment)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let summary = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll()
        XCTAssertEqual(summary.finished, ["rl"], "\(summary.failed)")
        let reward = try metric(store, "rl", "reward")
        XCTAssertEqual(reward.count, 60)
        // Learning is judged over three seeds: one 60-step trajectory of a random tiny model is chaotic, and the products'
        // rounding decides it (seed 1 with oneDNN capped at AVX2 on a Xeon: 0.01 -> 0.06, while seeds 2-4 rise to 0.78-0.86
        // and every seed rises to 0.82-0.86 at AVX-512). At least two of three must rise by 0.3, and their mean too.
        var rises = [reward.suffix(15).reduce(0, +) / 15 - reward.prefix(15).reduce(0, +) / 15]
        for seed in [2, 3] {
            let text = spec(#"{ kind: "ppo", reward: { rule: "contains", text: "e" }, samples_per_prompt: 4, max_tokens: 8, epochs: 2, mini_batches: 2, scale_advantages: true }"#)
                .replacingOccurrences(of: "eval: { every: 30 },", with: "eval: { every: 30 }, seed: \(seed),")
            let r = try metric(try runTinySpec(text, run: "rl", prefix: "ppo-rule-\(seed)").store, "rl", "reward")
            rises.append(r.suffix(15).reduce(0, +) / 15 - r.prefix(15).reduce(0, +) / 15)
        }
        XCTAssertGreaterThanOrEqual(rises.filter { $0 > 0.3 }.count, 2, "mean reward rises over seeds 1-3: \(rises)")
        XCTAssertGreaterThan(rises.reduce(0, +) / 3, 0.3, "mean reward rises over seeds 1-3: \(rises)")
        for name in ["reward_std", "kl", "entropy", "clip_ratio", "completions/mean_length", "completions/eos_rate", "step_time",
                     "objective/rlhf_reward", "time/sampling", "time/scoring", "time/update", "loss", "grad_norm"] {
            let values = try metric(store, "rl", name)
            XCTAssertEqual(values.count, 60, name)
            XCTAssertTrue(values.allSatisfy(\.isFinite), name)
        }
        // the policy is its reference at the first sampling (up to the rounding of differently shaped passes)
        XCTAssertEqual(try metric(store, "rl", "kl").first!, 0, accuracy: 1e-4)
        XCTAssertGreaterThan(try metric(store, "rl", "kl").last!, 0)
        XCTAssertGreaterThan(try metric(store, "rl", "clip_ratio").max()!, 0, "later mini-batches are off-policy")
        // every sample: 60 steps x 2 prompts x 4 samples, its reward the rule on its text
        let rows = try store.samples(runID: try XCTUnwrap(store.run(name: "rl")).id)
        XCTAssertEqual(rows.count, 480)
        for (step, r) in rows {
            XCTAssertEqual(r.reward, r.text.contains("e") ? 1 : 0, "step \(step) line \(r.dataLine): \(r.text)")
            XCTAssertTrue(r.eos || r.tokens == 8, "a sample is cut only at max_tokens")
        }
        // per step, the rewards' mean is the recorded metric
        for step in [1, 30, 60] {
            let mean = rows.filter { $0.step == step }.reduce(0) { $0 + $1.record.reward } / 8
            XCTAssertEqual(mean, reward[step - 1], accuracy: 1e-12)
        }
        // analysis/samples.sql gives the same per-step numbers
        let sql = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../analysis/samples.sql"), encoding: .utf8)
        let perStep = try store.query(sql.replacingOccurrences(of: ":experiment", with: "'rl'"))
        XCTAssertEqual(perStep.count, 60)
        for row in perStep {
            let step = row[3].int!
            XCTAssertEqual(row[4].int, 8)
            XCTAssertEqual(row[5].double!, reward[step - 1], accuracy: 1e-12)
            XCTAssertEqual(row[6].double!, try metric(store, "rl", "completions/eos_rate")[step - 1], accuracy: 1e-12)
            XCTAssertEqual(row[7].double!, try metric(store, "rl", "completions/mean_length")[step - 1], accuracy: 1e-12)
            XCTAssertEqual(row[8].double!, try metric(store, "rl", "kl")[step - 1], accuracy: 1e-9)
            if reward[step - 1] > 0 { XCTAssertTrue(row[9].string!.contains("e")) }
        }
        XCTAssertEqual(try store.query(sql.replacingOccurrences(of: ":experiment", with: "'other'")).count, 0)
        // the probes were evaluated on schedule, as for every objective
        XCTAssertEqual(Set(try store.evaluationRowCounts(runID: try XCTUnwrap(store.run(name: "rl")).id).keys), [0, 30, 60])
    }

    /// SFT -> reward model -> ppo scored by the reward-model run (waiting for it), and ppo scored by a judge model.
    /// A reward run that is not a reward model is refused when the spec is read.
    func testRewardModelAndJudgeRewards() throws {
        let dir = try temporaryFolder("ppo-rm", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        let stages = """
            [
              { name: "sft", train: { steps: 2 } },
              { name: "rm", init_from: { run: "sft" }, objective: { kind: "reward" }, train: { steps: 4 } },
              { name: "ppo", init_from: { run: "sft" }, objective: { kind: "ppo", reward: { run: "rm" }, max_tokens: 6, advantages: "leave_one_out", kl_estimator: "k3" } },
              { name: "judged", init_from: { run: "sft" }, train: { steps: 2 },
                objective: { kind: "ppo", reward: { judge: "\(LabelStageTests.judgeFixture)" }, samples_per_prompt: 3, max_tokens: 4 } },
            ]
            """
        try spec("", steps: 3, stages: stages, categories: #"{ chosen: "chosen", rejected: "rejected", greedy: { greedy: { max_tokens: 6 } } }"#).write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        XCTAssertEqual(experiment.runs[2].config.inputRuns, ["rl/sft", "rl/rm"])
        try RunExecutor.validateInputs(of: experiment)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let summary = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll()
        XCTAssertEqual(summary.finished, ["rl/sft", "rl/rm", "rl/ppo", "rl/judged"], "\(summary.failed)")
        for run in ["rl/ppo", "rl/judged"] {
            let rows = try store.samples(runID: try XCTUnwrap(store.run(name: run)).id)
            XCTAssertEqual(rows.count, run == "rl/ppo" ? 3 * 2 * 4 : 2 * 2 * 3, run)
            XCTAssertGreaterThan(Set(rows.map(\.record.reward)).count, 2, "\(run): scores differ between samples")
            // leave-one-out advantages sum to zero over each prompt's samples (the KL penalty included)
            if run == "rl/ppo" {
                for step in 1...3 {
                    for line in Set(rows.map(\.record.dataLine)) {
                        let a = rows.filter { $0.step == step && $0.record.dataLine == line }.map(\.record.advantage)
                        if !a.isEmpty { XCTAssertEqual(a.reduce(0, +), 0, accuracy: 1e-9) }
                    }
                }
            }
        }
        // the reward comes from the rm run's final weights: scoring a recorded sample again gives its reward
        let rm = experiment.runs[1]
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
        let base = try ModelLoader.load(rm.config.model, experiment: experiment, capacity: 64, maxSequenceLength: 64, threads: 2)
        let model = base.model.withRewardHead(seed: 0)
        _ = try RunContext(executor: executor, run: experiment.runs[2], runID: 0).loadInitialWeights(.init(run: "rl/rm", step: nil), into: model)
        let examples = try loadExamples(path: dir.appendingPathComponent("tiny-train.jsonl").path)
        let first = try store.samples(runID: try XCTUnwrap(store.run(name: "rl/ppo")).id, steps: [1])[0].record
        let ex = try XCTUnwrap(examples.first { $0.line == first.dataLine })
        let again = RewardModelScorer(model: model, tokenizer: base.tokenizer, template: experiment.runs[2].config.template)
            .scores([(ex.promptSource, [first.text])])[0][0]
        XCTAssertEqual(again, first.reward, accuracy: 1e-4)
        // every evaluation records the reward model's reward of each greedy answer (the measure `reward`)
        let greedy = try store.query("""
            SELECT s.text, m.value, p.idx FROM measures m JOIN responses s ON s.id = m.response_id JOIN probes p ON p.id = s.probe_id
            WHERE m.run_id = ? AND m.name = 'reward' AND s.category = 'greedy' ORDER BY m.step, p.idx
            """, [.integer(try XCTUnwrap(store.run(name: "rl/ppo")).id)])
        XCTAssertEqual(greedy.count, 4 * 2, "4 probes x evaluations at steps 0 and 3")
        XCTAssertEqual(try store.query("SELECT count(*) FROM measures m JOIN responses s ON s.id = m.response_id WHERE m.name = 'reward' AND s.category != 'greedy' AND m.run_id = ?",
                                       [.integer(try XCTUnwrap(store.run(name: "rl/ppo")).id)])[0][0].int, 0)
        let probes = try loadExamples(path: dir.appendingPathComponent("tiny-probes.jsonl").path)
        for row in greedy {
            let probe = probes[row[2].int!]
            let r = RewardModelScorer(model: model, tokenizer: base.tokenizer, template: experiment.runs[2].config.template)
                .scores([(probe.promptSource, [row[0].string!])])[0][0]
            XCTAssertEqual(row[1].double!, r, accuracy: 1e-4)
        }

        // a reward run that is not a reward model
        try spec("", stages: #"[{ name: "sft" }, { name: "ppo", objective: { kind: "ppo", reward: { run: "sft" } } }]"#)
            .write(to: dir.appendingPathComponent("bad.json5"), atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try Experiment.load(path: dir.appendingPathComponent("bad.json5").path)) { error in
            XCTAssertTrue("\(error)".contains("stage ppo: objective.reward.run: expected the name of a reward-model run"), "\(error)")
        }
    }
}
