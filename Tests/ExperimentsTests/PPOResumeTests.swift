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
        let spec = "ppo-crash.json5"
        try write("""
            {
              name: "rl", model: { preset: "tiny", seed: 0 },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 64, batch_size: 2, lr: 3e-3, max_length: 160, warmup: 0 },
              eval: { every: 16 }, checkpoint: { every: 1 },
              objective: { kind: "ppo", reward: { rule: "contains", text: "e" }, samples_per_prompt: 4, max_tokens: 24, epochs: 4, mini_batches: 4, top_p: 0.95 },
            }
            """, to: spec)
        let started = Date()
        let ref = try run(["run", spec, "--db", path("ref.sqlite"), "--checkpoints", path("ck-ref"), "--quiet"])
        XCTAssertEqual(ref.status, 0, ref.stderr)
        let duration = Date().timeIntervalSince(started)
        let reference = try snapshot(path("ref.sqlite"))
        XCTAssertEqual(reference["samples"]?.count, 64 * 2 * 4)

        let db = path("crash.sqlite")
        let args = ["run", spec, "--db", db, "--checkpoints", path("ck-crash"), "--quiet"]
        let (kills, killedAt) = try killRepeatedly(args, db: db, delays: (duration * 0.04)...(duration * 0.12), seed: 4, kills: 10, attempts: 40)
        XCTAssertGreaterThanOrEqual(kills, 5, "only \(kills) kills landed: \(killedAt)")
        let last = try run(args)
        XCTAssertEqual(last.status, 0, last.stderr)
        try assertSameRows(db, as: reference, tables: ["runs", "logprobs", "train_metrics", "samples"], after: killedAt)
    }
}

extension ReliabilityTests {
    /// A TR-DPO run killed (SIGKILL at seeded random moments) and started again records what an uninterrupted run records,
    /// bit for bit: its checkpoint holds the moved reference's weights beside AdamW's moments, so the reference after a
    /// resume is the one the killed run had (a reference rebuilt from the starting weights would differ after a sync).
    func testATRDPORunKilledMidRunResumesToTheRowsOfAnUninterruptedRun() throws {
        let spec = "trdpo-crash.json5"
        try write("""
            {
              name: "tr", model: { preset: "tiny", seed: 0 }, template: "hh",
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 48, batch_size: 2, lr: 3e-3, max_length: 160, warmup: 0 },
              eval: { every: 12 }, checkpoint: { every: 1 },
              objective: { kind: "dpo", beta: 0.5, sync_ref_model: true, ref_model_mixup_alpha: 0.5, ref_model_sync_steps: 5 },
            }
            """, to: spec)
        let started = Date()
        let ref = try run(["run", spec, "--db", path("trref.sqlite"), "--checkpoints", path("ck-trref"), "--quiet"])
        XCTAssertEqual(ref.status, 0, ref.stderr)
        let duration = Date().timeIntervalSince(started)
        let reference = try snapshot(path("trref.sqlite"))

        let db = path("trcrash.sqlite")
        let args = ["run", spec, "--db", db, "--checkpoints", path("ck-trcrash"), "--quiet"]
        let (kills, killedAt) = try killRepeatedly(args, db: db, delays: (duration * 0.1)...(duration * 0.3), seed: 7, kills: 6, attempts: 30)
        XCTAssertGreaterThanOrEqual(kills, 3, "only \(kills) kills landed: \(killedAt)")
        // at least one kill after the first sync (step 5) and before the end: the resume then needs the moved reference
        let steps = killedAt.compactMap { $0.split(separator: "@").last.flatMap { Int($0) } }
        XCTAssertTrue(steps.contains { $0 >= 5 && $0 < 48 }, "no kill between a sync and the end: \(killedAt)")
        let last = try run(args)
        XCTAssertEqual(last.status, 0, last.stderr)
        try assertSameRows(db, as: reference, tables: ["runs", "logprobs", "train_metrics"], after: killedAt)
    }
}

extension ReliabilityTests {
    /// A LoRA run (with dropout) killed (SIGKILL at seeded random moments) and started again records what an uninterrupted
    /// run records, bit for bit: its checkpoint holds the adapters and their AdamW moments after the merged weights, the
    /// resume keeps the base weights it loaded, and the dropout masks are a function of the step.
    func testALoRARunKilledMidRunResumesToTheRowsOfAnUninterruptedRun() throws {
        let spec = "lora-crash.json5"
        try write("""
            {
              name: "lo", model: { preset: "tiny", seed: 0 },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 48, batch_size: 2, lr: 3e-3, max_length: 160, warmup: 0, lora: { rank: 4, dropout: 0.1 } },
              eval: { every: 12 }, checkpoint: { every: 1 },
            }
            """, to: spec)
        let started = Date()
        let ref = try run(["run", spec, "--db", path("loref.sqlite"), "--checkpoints", path("ck-loref"), "--quiet"])
        XCTAssertEqual(ref.status, 0, ref.stderr)
        let duration = Date().timeIntervalSince(started)
        let reference = try snapshot(path("loref.sqlite"))

        let db = path("locrash.sqlite")
        let args = ["run", spec, "--db", db, "--checkpoints", path("ck-locrash"), "--quiet"]
        let (kills, killedAt) = try killRepeatedly(args, db: db, delays: (duration * 0.1)...(duration * 0.3), seed: 9, kills: 6, attempts: 30)
        XCTAssertGreaterThanOrEqual(kills, 3, "only \(kills) kills landed: \(killedAt)")
        let last = try run(args)
        XCTAssertEqual(last.status, 0, last.stderr)
        try assertSameRows(db, as: reference, tables: ["runs", "logprobs", "train_metrics"], after: killedAt)
    }
}
