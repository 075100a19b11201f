import Foundation
import XCTest
@testable import Experiments

/// `alignscope slurm`'s plan: waves by what each run reads, each array after the waves it depends on, the sbatch
/// settings as given, finished runs left out. (The scripts run under a real Slurm in scripts/test-slurm.sh.)
final class SlurmPlanTests: XCTestCase {
    func testWavesFollowWhatEachRunReads() throws {
        let dir = try temporaryFolder("slurm-plan", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        try """
            {
              name: "c", model: { preset: "tiny", seed: 0 },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 2, batch_size: 2, max_length: 160 },
              stages: [
                { name: "sft", sweep: { seed: [1, 2] } },
                { name: "rm", init_from: { run: "sft/seed=1" }, objective: { kind: "reward" } },
                { name: "dpo", init_from: { run: "sft/seed=2" }, objective: { kind: "dpo" } },
                { name: "ppo", init_from: { run: "sft/seed=1" }, objective: { kind: "ppo", reward: { run: "rm" } } },
              ],
            }
            """.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        let settings = SlurmPlan.Settings(partition: "cpu", time: "01:00:00", cpus: 2, mem: "8G", maxParallel: 3, extra: ["--qos=short"])
        let all = SlurmPlan(experiment: experiment, unfinished: Set(experiment.runs.map(\.name)), settings: settings,
                            binary: "/opt/bin/alignscope", spec: "/work/spec.json5", results: "/shared/results")
        XCTAssertEqual(all.waves.map(\.runs), [["c/sft/seed=1", "c/sft/seed=2"], ["c/rm", "c/dpo"], ["c/ppo"]])
        XCTAssertEqual(all.waves.map(\.after), [[], [0], [0, 1]])
        let script = all.waves[1].script
        for line in ["#SBATCH --array=0-1%3", "#SBATCH --partition=cpu", "#SBATCH --time=01:00:00", "#SBATCH --cpus-per-task=2",
                     "#SBATCH --mem=8G", "#SBATCH --qos=short", "#SBATCH --requeue", "#SBATCH --job-name=alignscope-c-w1",
                     "#SBATCH --output=/shared/results/c/slurm/logs/%x-%A_%a.out",
                     "RUNS=('c/rm' 'c/dpo')", "FOLDERS=('rm' 'dpo')", "INPUTS_0=('sft_seed=1')", "INPUTS_1=('sft_seed=2')",
                     "ALIGNSCOPE='/opt/bin/alignscope'", "SPEC='/work/spec.json5'", "SHARED='/shared/results/c'"] {
            XCTAssertTrue(script.split(separator: "\n").contains { $0 == line }, "missing \(line) in\n\(script)")
        }
        XCTAssertTrue(all.waves[2].script.contains("INPUTS_0=('sft_seed=1' 'rm')"), all.waves[2].script)
        // finished runs are not submitted; a run whose inputs all finished goes in the first wave
        let rest = SlurmPlan(experiment: experiment, unfinished: ["c/ppo", "c/dpo"], settings: .init(), binary: "/b", spec: "/s", results: "/r")
        XCTAssertEqual(rest.waves.map(\.runs), [["c/dpo", "c/ppo"]])
        XCTAssertEqual(rest.waves.map(\.after), [[]])
        XCTAssertTrue(rest.waves[0].script.contains("#SBATCH --array=0-1\n"), rest.waves[0].script)
        // a value with a quote is one bash word
        XCTAssertEqual(SlurmPlan.quoted("it's"), #"'it'\''s'"#)
    }
}
