import Base
import Foundation
import RunStore
import XCTest

extension ReliabilityTests {
    /// A ppo run killed (SIGKILL, at seeded random moments: mostly inside a step's sampling or its 4 x 4 updates,
    /// which are nearly all of a step's time) and started again resumes from its last checkpoint and records what
    /// an uninterrupted run records, bit for bit: metrics, evaluations and every sample. The sampling state is the
    /// checkpoint's step (each step's samples are seeded by run seed, step, prompt and sample index).
    func testAPPORunKilledMidStepResumesToTheRowsOfAnUninterruptedRun() throws {
        try assertKilledRunResumes("""
            {
              name: "rl", model: { preset: "tiny", seed: 0 },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 64, batch_size: 2, lr: 3e-3, max_length: 160, warmup: 0 },
              eval: { every: 16 }, checkpoint: { every: 1 },
              objective: { kind: "ppo", reward: { rule: "contains", text: "e" }, samples_per_prompt: 4, max_tokens: 24, epochs: 4, mini_batches: 4, top_p: 0.95 },
            }
            """, spec: "ppo-crash.json5", tag: "", delays: 0.04...0.12, seed: 4, kills: 10, attempts: 40, atLeast: 5,
            tables: ["runs", "logprobs", "train_metrics", "samples"]) { reference in
            XCTAssertEqual(reference["samples"]?.count, 64 * 2 * 4)
        }
    }
}

extension ReliabilityTests {
    /// A TR-DPO run killed (SIGKILL at seeded random moments) and started again records what an uninterrupted run records,
    /// bit for bit: its checkpoint holds the moved reference's weights beside AdamW's moments, so the reference after a
    /// resume is the one the killed run had (a reference rebuilt from the starting weights would differ after a sync).
    func testATRDPORunKilledMidRunResumesToTheRowsOfAnUninterruptedRun() throws {
        let killedAt = try assertKilledRunResumes("""
            {
              name: "tr", model: { preset: "tiny", seed: 0 }, template: "hh",
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 48, batch_size: 2, lr: 3e-3, max_length: 160, warmup: 0 },
              eval: { every: 12 }, checkpoint: { every: 1 },
              objective: { kind: "dpo", beta: 0.5, sync_ref_model: true, ref_model_mixup_alpha: 0.5, ref_model_sync_steps: 5 },
            }
            """, spec: "trdpo-crash.json5", tag: "tr", delays: 0.1...0.3, seed: 7, kills: 6, attempts: 30, atLeast: 3)
        // at least one kill after the first sync (step 5) and before the end: the resume then needs the moved reference
        let steps = killedAt.compactMap { $0.split(separator: "@").last.flatMap { Int($0) } }
        XCTAssertTrue(steps.contains { $0 >= 5 && $0 < 48 }, "no kill between a sync and the end: \(killedAt)")
    }
}

extension ReliabilityTests {
    /// A LoRA run (with dropout) killed (SIGKILL at seeded random moments) and started again records what an uninterrupted
    /// run records, bit for bit: its checkpoint holds the adapters and their AdamW moments after the merged weights, the
    /// resume keeps the base weights it loaded, and the dropout masks are a function of the step.
    func testALoRARunKilledMidRunResumesToTheRowsOfAnUninterruptedRun() throws {
        try assertKilledRunResumes("""
            {
              name: "lo", model: { preset: "tiny", seed: 0 },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 48, batch_size: 2, lr: 3e-3, max_length: 160, warmup: 0, lora: { rank: 4, dropout: 0.1 } },
              eval: { every: 12 }, checkpoint: { every: 1 },
            }
            """, spec: "lora-crash.json5", tag: "lo", delays: 0.1...0.3, seed: 9, kills: 6, attempts: 30, atLeast: 3)
    }
}

extension ReliabilityTests {
    /// Runs the spec `text` (file `spec`) once uninterrupted into a store, then again into another store under repeated
    /// SIGKILLs at seeded random moments (`delays` as fractions of the uninterrupted run's duration), then to its end, and
    /// asserts that the second store holds the first's rows of `tables` bit for bit. Returns where the kills landed.
    @discardableResult
    func assertKilledRunResumes(_ text: String, spec: String, tag: String, delays: ClosedRange<Double>, seed: UInt64, kills: Int, attempts: Int,
                                atLeast: Int, tables: [String] = ["runs", "logprobs", "train_metrics"],
                                check: ([String: [[SQLiteValue]]]) -> Void = { _ in }) throws -> [String] {
        try write(text, to: spec)
        let started = Date()
        let ref = try run(["run", spec, "--db", path("\(tag)ref.sqlite"), "--checkpoints", path("ck-\(tag)ref"), "--quiet"])
        XCTAssertEqual(ref.status, 0, ref.stderr)
        let duration = Date().timeIntervalSince(started)
        let reference = try snapshot(path("\(tag)ref.sqlite"))
        check(reference)
        let db = path("\(tag)crash.sqlite")
        let args = ["run", spec, "--db", db, "--checkpoints", path("ck-\(tag)crash"), "--quiet"]
        let (landed, killedAt) = try killRepeatedly(args, db: db, delays: (duration * delays.lowerBound)...(duration * delays.upperBound),
                                                    seed: seed, kills: kills, attempts: attempts)
        XCTAssertGreaterThanOrEqual(landed, atLeast, "only \(landed) kills landed: \(killedAt)")
        let last = try run(args)
        XCTAssertEqual(last.status, 0, last.stderr)
        try assertSameRows(db, as: reference, tables: tables, after: killedAt)
        return killedAt
    }
}
