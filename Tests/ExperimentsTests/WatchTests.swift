import Base
import Foundation
import RunStore
import XCTest
@testable import Experiments

/// Issue 37: a run trained elsewhere, evaluated at each of its checkpoints. The fixtures are real `transformers.Trainer`
/// output folders (scripts/make-trainer-fixtures.py: a tiny llama and a tiny GPT-NeoX of our own, a few AdamW steps on
/// our own texts) with transformers' log-probabilities of every probe response at every checkpoint.
final class WatchTests: XCTestCase {
    struct Reference: Decodable {
        struct Score: Decodable { var logprob: Double; var n_tokens: Int }
        struct Entry: Decodable { var folder: String; var scores: [String: Score] }
        var llama: [String: Entry]
        var neox: [String: Entry]
        var lora: [String: Entry]
    }

    /// A copy of the fixture folders (the tests change them) and a spec watching `model`'s run.
    func setUp(_ model: String, base: Bool = true, extra: String = "") throws -> (dir: URL, spec: String) {
        let dir = try temporaryFolder("watch", copying: ["trainer-runs"])
        let text = """
            { name: "watch", model: { checkpoints: "trainer-runs/\(model)/run"\(base ? ", base: \"trainer-runs/\(model)/base\"" : "") },
              template: "raw", data: { probes: { path: "trainer-runs/probes.jsonl",
                categories: { chosen: "chosen", rejected: "rejected", non_response: "non_response" } } }\(extra) }
            """
        let spec = dir.appendingPathComponent("watch.json5").path
        try text.write(toFile: spec, atomically: false, encoding: .utf8)
        return (dir, spec)
    }

    func reference() throws -> Reference {
        let url = Bundle.module.url(forResource: "Fixtures/trainer-runs/reference", withExtension: "json")!
        return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }

    /// Runs the spec once in `dir`'s store; returns the summary and the events.
    @discardableResult
    func run(_ spec: String, _ dir: URL, follow: Double? = nil) throws -> (RunExecutor.Summary, [ProgressEvent]) {
        try Self.run(spec, dir, follow: follow)
    }

    static func run(_ spec: String, _ dir: URL, follow: Double? = nil) throws -> (RunExecutor.Summary, [ProgressEvent]) {
        let experiment = try Experiment.load(path: spec)
        try RunExecutor.validateInputs(of: experiment)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
        executor.followSeconds = follow
        let events = EventLog()
        executor.progress = { e in
            events.append(e)
            return .more
        }
        return (try executor.runAll(), events.all)
    }

    final class EventLog: @unchecked Sendable {
        private var events: [ProgressEvent] = []
        private let lock = NSLock()
        func append(_ e: ProgressEvent) { lock.withLock { events.append(e) } }
        var all: [ProgressEvent] { lock.withLock { events } }
    }

    /// step -> "probeIdx:category" -> (logprob, n_tokens), as recorded.
    func recorded(_ dir: URL) throws -> [Int: [String: (Double, Int)]] {
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path, readOnly: true)
        var out: [Int: [String: (Double, Int)]] = [:]
        for row in try store.query("""
            SELECT l.step, p.idx, s.category, l.logprob, l.n_tokens FROM logprobs l JOIN responses s ON s.id = l.response_id
            JOIN probes p ON p.id = s.probe_id
            """) {
            out[row[0].int!, default: [:]]["\(row[1].int!):\(row[2].string!)"] = (row[3].double!, row[4].int!)
        }
        return out
    }

    func compare(_ got: [Int: [String: (Double, Int)]], _ want: [String: Reference.Entry], steps: [Int], _ what: String) {
        XCTAssertEqual(Set(got.keys), Set(steps), what)
        for step in steps {
            guard let entry = want[String(step)] else { return XCTFail("\(what): no reference for step \(step)") }
            XCTAssertEqual(got[step]?.count, entry.scores.count, "\(what) step \(step)")
            for (key, score) in entry.scores {
                guard let (lp, n) = got[step]?[key] else {
                    XCTFail("\(what) step \(step): \(key) not recorded")
                    continue
                }
                // float32 forward passes of different code (ours, PyTorch's), summed over ~10-25 tokens: 1e-4
                XCTAssertEqual(lp, score.logprob, accuracy: 1e-4, "\(what) step \(step) \(key)")
                XCTAssertEqual(n, score.n_tokens, "\(what) step \(step) \(key)")
            }
        }
    }

    /// Every checkpoint of a llama run (tokenizer in the output folder only) and the base as step 0, within 1e-4 of
    /// transformers; the final model saved into the folder at the last checkpoint's step is read once; the trainer's
    /// log_history is imported exactly; running again evaluates nothing.
    func testALlamaRunsCheckpointsAgreeWithTransformers() throws {
        let (dir, spec) = try setUp("llama")
        let (summary, events) = try run(spec, dir)
        XCTAssertEqual(summary.finished, ["watch"], "\(summary.failed)")
        compare(try recorded(dir), try reference().llama, steps: [0, 2, 4], "llama")
        // the log history, exactly as trainer_state.json has it, once
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path, readOnly: true)
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("trainer-runs/llama/run/checkpoint-4/trainer_state.json"))) as! [String: Any]
        var want: [String: Double] = [:]
        for entry in state["log_history"] as! [[String: Any]] {
            let step = entry["step"] as! Int
            for (k, v) in entry where k != "step" { want["\(step) \(k)"] = (v as! NSNumber).doubleValue }
        }
        var got: [String: Double] = [:]
        for row in try store.query("SELECT step, name, value FROM train_metrics") { got["\(row[0].int!) \(row[1].string!)"] = row[2].double! }
        XCTAssertEqual(got, want)
        XCTAssertEqual(want["3 loss"].map { $0 > 0 }, true)
        XCTAssertEqual(events.filter { if case .evaluated = $0 { return true } else { return false } }.count, 3)
        // again: nothing new, nothing evaluated twice
        let (again, events2) = try run(spec, dir)
        XCTAssertEqual(again.finished, ["watch"])
        XCTAssertEqual(events2.filter { if case .evaluated = $0 { return true } else { return false } }.count, 0)
        compare(try recorded(dir), try reference().llama, steps: [0, 2, 4], "llama, run again")
    }

    /// GPT-NeoX with its tokenizer in each checkpoint, no base: the steps are the checkpoints'; with the last checkpoint
    /// deleted, the final model in the folder itself is evaluated at its trainer_state.json's step.
    func testAGPTNeoXRunAndItsFinalModel() throws {
        let (dir, spec) = try setUp("neox", base: false)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("trainer-runs/neox/run/checkpoint-5"))
        let (summary, _) = try run(spec, dir)
        XCTAssertEqual(summary.finished, ["watch"], "\(summary.failed)")
        compare(try recorded(dir), try reference().neox, steps: [2, 4, 5], "neox")
    }

    /// Dynamic categories and per-token rows work as for our own runs: a greedy answer and the teacher-forced argmax of
    /// the chosen response are made by each checkpoint's weights at its step, and every response has its token rows.
    func testGreedyArgmaxAndTokenRowsAtEveryCheckpoint() throws {
        let dir = try temporaryFolder("watch-dyn", copying: ["trainer-runs"])
        let spec = dir.appendingPathComponent("watch.json5").path
        try """
            { name: "watch", model: { checkpoints: "trainer-runs/llama/run", base: "trainer-runs/llama/base" }, template: "raw",
              eval: { tokens: true },
              data: { probes: { path: "trainer-runs/probes.jsonl", categories: { chosen: "chosen", rejected: "rejected",
                greedy: { greedy: { max_tokens: 6 } }, argmax: { argmax: { field: "chosen" } } } } } }
            """.write(toFile: spec, atomically: false, encoding: .utf8)
        let (summary, _) = try run(spec, dir)
        XCTAssertEqual(summary.finished, ["watch"], "\(summary.failed)")
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path, readOnly: true)
        let origins = try store.query("SELECT DISTINCT s.origin FROM logprobs l JOIN responses s ON s.id = l.response_id WHERE s.category IN ('greedy', 'argmax') ORDER BY 1").map { $0[0].string! }
        for step in [0, 2, 4] {
            XCTAssertTrue(origins.contains { $0.hasPrefix("greedy:") && $0.hasSuffix("step=\(step)") }, "\(origins)")
            XCTAssertTrue(origins.contains { $0.hasPrefix("argmax:chosen") && $0.hasSuffix("step=\(step)") }, "\(origins)")
        }
        // every scored response of every step has as many token rows as tokens
        let missing = try store.query("""
            SELECT l.step, l.response_id, l.n_tokens, (SELECT count(*) FROM token_logprobs t WHERE t.run_id = l.run_id AND t.step = l.step
              AND t.response_id = l.response_id) FROM logprobs l
            """).filter { $0[2].int! != $0[3].int! }
        XCTAssertEqual(missing.count, 0, "\(missing.prefix(3))")
        XCTAssertEqual(try store.query("SELECT count(DISTINCT step) FROM token_logprobs")[0][0].int, 3)
    }

    /// PEFT LoRA checkpoints (adapter_config.json, adapter_model.safetensors) applied onto model.base agree with PEFT's
    /// own forward within 1e-4; without model.base, the local directory the adapter names is the base (no step 0).
    func testPEFTAdapterCheckpointsAgreeWithPEFT() throws {
        let (dir, spec) = try setUp("lora")
        let (summary, _) = try run(spec, dir)
        XCTAssertEqual(summary.finished, ["watch"], "\(summary.failed)")
        compare(try recorded(dir), try reference().lora, steps: [0, 2, 4], "lora")

        let (dir2, spec2) = try setUp("lora", base: false)
        for step in [2, 4] {
            let file = dir2.appendingPathComponent("trainer-runs/lora/run/checkpoint-\(step)/adapter_config.json")
            var config = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
            config["base_model_name_or_path"] = dir2.appendingPathComponent("trainer-runs/lora/base").path
            try JSONSerialization.data(withJSONObject: config).write(to: file)
        }
        let (implicit, _) = try run(spec2, dir2)
        XCTAssertEqual(implicit.finished, ["watch"], "\(implicit.failed)")
        compare(try recorded(dir2), try reference().lora, steps: [2, 4], "lora, base named by the adapter")
    }

    /// An adapter setting this reader does not apply (DoRA) fails the run with one line naming the file and key.
    func testAnAdapterSettingNotReadIsRefused() throws {
        let (dir, spec) = try setUp("lora")
        let file = dir.appendingPathComponent("trainer-runs/lora/run/checkpoint-2/adapter_config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
        config["use_dora"] = true
        try JSONSerialization.data(withJSONObject: config).write(to: file)
        let (summary, _) = try run(spec, dir)
        let message = summary.failed.first?.error ?? ""
        XCTAssertTrue(message.contains("checkpoint-2/adapter_config.json") && message.contains("use_dora"), message)
    }

    /// A recorded checkpoint whose files changed is refused with one line naming it; the rows stay as they were.
    func testACheckpointChangedAfterItWasRecordedIsRefused() throws {
        let (dir, spec) = try setUp("llama", base: false)
        try run(spec, dir)
        let config = dir.appendingPathComponent("trainer-runs/llama/run/checkpoint-2/config.json")
        try (String(contentsOf: config, encoding: .utf8) + "\n").write(to: config, atomically: false, encoding: .utf8)
        let (summary, _) = try run(spec, dir)
        XCTAssertEqual(summary.failed.count, 1)
        let message = summary.failed.first?.error ?? ""
        XCTAssertTrue(message.contains("checkpoint-2") && message.contains("changed since it was evaluated as step 2"), message)
        XCTAssertFalse(message.contains("\n"))
        compare(try recorded(dir), try reference().llama, steps: [2, 4], "rows kept")
    }

    /// Bad watch specs are one line at plan time: a training section, stages, an empty folder without a base.
    func testBadWatchSpecsAreRefused() throws {
        let (dir, _) = try setUp("llama")
        func refusal(_ text: String) -> String {
            let path = dir.appendingPathComponent("bad.json5").path
            try? text.write(toFile: path, atomically: false, encoding: .utf8)
            do {
                try RunExecutor.validateInputs(of: try Experiment.load(path: path))
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let probes = #"data: { probes: { path: "trainer-runs/probes.jsonl", categories: { chosen: "chosen" } } }, template: "raw""#
        XCTAssertTrue(refusal(#"{ name: "w", model: { checkpoints: "trainer-runs/llama/run" }, \#(probes), objective: { kind: "dpo" } }"#).contains("objective: expected no objective"))
        XCTAssertTrue(refusal(#"{ name: "w", model: { checkpoints: "trainer-runs/llama/run" }, \#(probes), train: { steps: 3 } }"#).contains("train: expected no train"))
        XCTAssertTrue(refusal(#"{ name: "w", model: { checkpoints: "trainer-runs/llama/run" }, \#(probes), sweep: { seed: [1, 2] } }"#).contains("sweep"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("empty"), withIntermediateDirectories: true)
        XCTAssertTrue(refusal(#"{ name: "w", model: { checkpoints: "empty" }, \#(probes) }"#).contains("no complete checkpoint yet"))
        XCTAssertTrue(refusal(#"{ name: "w", model: { checkpoints: "nowhere" }, \#(probes) }"#).contains("no such directory"))
        XCTAssertTrue(refusal(#"{ name: "w", model: { gguf: "x.gguf", base: "y" }, \#(probes) }"#).contains("model.base"))
        XCTAssertEqual(refusal(#"{ name: "w", model: { checkpoints: "trainer-runs/llama/run" }, \#(probes) }"#), "accepted")
    }

    /// `--follow`: a checkpoint added while the run watches is evaluated once complete; one whose weights are there but
    /// whose trainer_state.json is not yet written is not read until it is; the run ends once nothing new has come for
    /// the follow time.
    func testFollowEvaluatesANewCheckpointOnlyOnceComplete() throws {
        let (dir, spec) = try setUp("llama")
        let run = dir.appendingPathComponent("trainer-runs/llama/run")
        let held = dir.appendingPathComponent("held-checkpoint-4")
        try FileManager.default.moveItem(at: run.appendingPathComponent("checkpoint-4"), to: held)
        for name in ["model.safetensors", "config.json", "generation_config.json", "trainer_state.json"] {
            try FileManager.default.removeItem(at: run.appendingPathComponent(name))  // the final model comes at the end
        }
        let db = dir.appendingPathComponent("runs.sqlite").path
        func steps() -> Set<Int> {
            guard let store = try? RunStore(path: db, readOnly: true),
                  let rows = try? store.query("SELECT DISTINCT step FROM logprobs") else { return [] }
            return Set(rows.compactMap { $0[0].int })
        }
        func waitUntil(_ what: String, timeout: Double = 60, _ condition: () -> Bool) {
            let deadline = Date().addingTimeInterval(timeout)
            while !condition() && Date() < deadline { usleep(100_000) }
            XCTAssertTrue(condition(), what)
        }
        final class Outcome: @unchecked Sendable {
            var summary: RunExecutor.Summary?
            var events: [ProgressEvent] = []
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        let thread = Thread {
            if let (summary, events) = try? WatchTests.run(spec, dir, follow: 6) { (outcome.summary, outcome.events) = (summary, events) }
            outcome.done.signal()
        }
        thread.start()
        waitUntil("steps 0 and 2 evaluated") { steps() == [0, 2] }
        // checkpoint-4 appears half-written: weights and config, no trainer_state.json
        let target = run.appendingPathComponent("checkpoint-4")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for name in ["config.json", "generation_config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: held.appendingPathComponent(name), to: target.appendingPathComponent(name))
        }
        Thread.sleep(forTimeInterval: 3)
        XCTAssertEqual(steps(), [0, 2], "a checkpoint without trainer_state.json is not read")
        try FileManager.default.copyItem(at: held.appendingPathComponent("trainer_state.json"), to: target.appendingPathComponent("trainer_state.json"))
        waitUntil("step 4 evaluated once complete") { steps() == [0, 2, 4] }
        // a checkpoint that appears and is deleted (save_total_limit) before it was complete: reported, not an error
        let doomed = run.appendingPathComponent("checkpoint-6")
        try FileManager.default.createDirectory(at: doomed, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: held.appendingPathComponent("config.json"), to: doomed.appendingPathComponent("config.json"))
        Thread.sleep(forTimeInterval: 2.5)
        try FileManager.default.removeItem(at: doomed)
        XCTAssertEqual(outcome.done.wait(timeout: .now() + 60), .success, "the watching run ends")
        XCTAssertEqual(outcome.summary?.finished, ["watch"])
        let warnings = outcome.events.compactMap { e -> String? in if case .warning(_, let m) = e { return m } else { return nil } }
        XCTAssertTrue(warnings.contains { $0.contains("checkpoint-6 was deleted before it was evaluated") }, "\(warnings)")
        compare(try recorded(dir), try reference().llama, steps: [0, 2, 4], "followed")
    }
}
