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
        let got = try snapshot(db)
        for table in ["runs", "logprobs", "train_metrics", "samples"] {
            XCTAssertEqual(got[table]?.count, reference[table]?.count, "\(table) row count after kills \(killedAt)")
            XCTAssertEqual(got[table], reference[table], "\(table) differs from the uninterrupted run after kills \(killedAt)")
        }
        XCTAssertEqual(try integrity(db), "ok")
    }
}
