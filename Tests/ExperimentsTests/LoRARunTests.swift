import Base
import Foundation
import HFModels
import Model
import RunStore
import Training
import XCTest
@testable import Experiments

/// `train.lora` in runs: what the spec refuses (one line naming the key), the plan line, the metrics of what
/// trains, a run whose base weights stay as they were, and LoRA at full rank learning the data as full
/// fine-tuning does.
final class LoRARunTests: XCTestCase {
    func spec(_ name: String, lora: String?, objective: String = "{ kind: \"sft\" }", steps: Int = 12, lr: String = "1e-3") -> String {
        """
        { name: "\(name)", model: { preset: "tiny", seed: 0 }, objective: \(objective),
          data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
          train: { steps: \(steps), batch_size: 4, lr: \(lr), warmup: 0, schedule: "constant", max_length: 160\(lora.map { ", lora: \($0)" } ?? "") },
          eval: { every: \(steps) } }
        """
    }

    /// Bad LoRA settings stop at the spec or the plan with one line naming the key.
    func testBadLoRASettingsAreRefusedNamingTheKey() throws {
        let dir = try temporaryFolder("lora-bad", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        func refusal(_ lora: String, objective: String = "{ kind: \"sft\" }") -> String {
            let path = dir.appendingPathComponent("spec.json5")
            try? spec("bad", lora: lora, objective: objective).write(to: path, atomically: false, encoding: .utf8)
            do {
                try RunExecutor.validateInputs(of: try Experiment.load(path: path.path))
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(refusal("{ rank: 0 }").contains("train.lora.rank"), refusal("{ rank: 0 }"))
        XCTAssertTrue(refusal("{ rank: 4, alpha: 0 }").contains("train.lora.alpha"))
        XCTAssertTrue(refusal("{ rank: 4, alpha: -1 }").contains("train.lora.alpha"))
        XCTAssertTrue(refusal("{ rank: 4, dropout: 1 }").contains("train.lora.dropout"))
        XCTAssertTrue(refusal("{ rank: 4, targets: [\"q\", \"wq\"] }").contains("train.lora.targets"))
        XCTAssertTrue(refusal("{ rank: 4, targets: [] }").contains("train.lora.targets"))
        XCTAssertTrue(refusal("{ rank: 4, bias: true }").contains("train.lora.bias"))
        // the preset is a llama block: GPT-NeoX's fused projection is not one of its targets (checked at plan time)
        let neox = refusal("{ rank: 4, targets: [\"qkv\"] }")
        XCTAssertTrue(neox.contains("train.lora.targets") && neox.contains("\"q\", \"k\", \"v\", \"o\", \"gate\", \"up\", \"down\""), neox)
        XCTAssertTrue(refusal("{ rank: 4 }", objective: "{ kind: \"dpo\", sync_ref_model: true }").contains("train.lora"))
        XCTAssertEqual(refusal("{ rank: 4, targets: [\"q\", \"v\"], dropout: 0.1, seed: 3 }"), "accepted")
        for text in [refusal("{ rank: 0 }"), neox] { XCTAssertFalse(text.contains("\n"), "one line: \(text)") }
    }

    /// The plan line says how much trains: rank x (in + out) per target and block, of the model's parameters.
    func testThePlanLineSaysWhatTrains() throws {
        let dir = try temporaryFolder("lora-plan", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        let path = dir.appendingPathComponent("spec.json5")
        try spec("plan", lora: "{ rank: 8 }").write(to: path, atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: path.path)
        let text = RunExecutor.loraPlanText(experiment.runs[0].config, experiment: experiment)
        // tiny: dim 64, kv 32, ffn 128, 2 blocks: 8 x (128 + 96 + 96 + 128 + 192 + 192 + 192) x 2 = 16,384
        let cfg = LlamaConfig.tiny()
        let total = LlamaModel.parameterTable(for: cfg).reduce(0) { $0 + $1.shape.reduce(1, *) }
        XCTAssertEqual(text, "LoRA r=8 on 7 projections: 16.4 K of \(String(format: "%.1f K", Double(total) / 1e3)) parameters trained")
        var plain = experiment.runs[0].config
        plain.train.lora = nil
        XCTAssertNil(RunExecutor.loraPlanText(plain, experiment: experiment))
    }

    /// A LoRA run records what trains at step 1, leaves its checkpoint's weights merged (so export and init_from read it as
    /// any run's), and moves the probes; without LoRA the same spec's identity is unchanged by the new key.
    func testALoRARunTrainsTheAdaptersOnly() throws {
        let (dir, store) = try runTinySpec(spec("lora", lora: "{ rank: 4, targets: [\"q\", \"v\", \"down\"], dropout: 0.1 }"), run: "lora", prefix: "lora-run")
        let metrics = Dictionary(uniqueKeysWithValues: try store.query("SELECT name, value FROM train_metrics WHERE step = 1").map { ($0[0].string!, $0[1].double!) })
        let cfg = LlamaConfig.tiny()
        let adapters = LoRASettings(rank: 4, alpha: 8, targets: [.q, .v, .down], seed: 1).parameterCount(cfg)
        XCTAssertEqual(metrics["trainable_params"], Double(adapters))
        XCTAssertEqual(metrics["total_params"], Double(LlamaModel.parameterTable(for: cfg).reduce(0) { $0 + $1.shape.reduce(1, *) }))
        // the checkpoint: merged weights, then the adapters and their two moments
        let url = RunExecutor.checkpointURL(root: dir, experiment: "lora", runName: "lora")
        let header = try XCTUnwrap(try Checkpoint.readHeader(url))
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        XCTAssertEqual(size, header.headerBytes + 4 * (header.parameterCount + 3 * adapters))
        // the probes moved: the last evaluation differs from the first
        func scores(_ step: Int) throws -> [Double] { try store.query("SELECT logprob FROM logprobs WHERE step = \(step) ORDER BY response_id").map { $0[0].double! } }
        let first = try scores(0), last = try scores(12)
        XCTAssertEqual(first.count, last.count)
        XCTAssertGreaterThan(zip(first, last).map { abs($0 - $1) }.max() ?? 0, 1e-3)
    }

    /// `export --format peft` of a LoRA run on a Hugging Face base (llama and GPT-NeoX fixtures): PEFT's files, which our
    /// PEFT reader (checked against PEFT itself, `WatchTests`) applies onto the base to give the run's merged weights
    /// (`export --format hf`'s) within 1e-6 (the same sums B A in Double there, in float here); a full run is refused.
    func testPEFTExportRoundTripsThroughThePEFTReader() throws {
        for (fixture, template, targets) in [("llama-tiny", "chatml", "[\"q\", \"k\", \"v\", \"o\", \"gate\", \"up\", \"down\"]"),
                                             ("gpt-neox-tiny", "hh", "[\"qkv\", \"o\", \"up\", \"down\"]")] {
            let text = """
                { name: "peft", model: { hf: "\(hfFixture(fixture))" }, template: "\(template)",
                  data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl", categories: { chosen: "chosen" } } },
                  train: { steps: 3, batch_size: 2, lr: 1e-2, max_length: 160, lora: { rank: 4, alpha: 8, targets: \(targets) } },
                  eval: { every: 3 } }
                """
            let (dir, store) = try runTinySpec(text, run: "peft", prefix: "lora-peft")
            let adapter = dir.appendingPathComponent("adapter").path, merged = dir.appendingPathComponent("merged").path
            _ = try RunExport.export(store: store, run: "peft", step: nil, checkpointRoot: dir, out: adapter, f16: false, format: .peft)
            _ = try RunExport.export(store: store, run: "peft", step: nil, checkpointRoot: dir, out: merged, f16: false, format: .hf)
            let config = try JSONValue.parseJSON5(try Data(contentsOf: URL(fileURLWithPath: adapter + "/adapter_config.json")), file: "adapter_config.json")
            XCTAssertEqual(config.value(at: ["peft_type"]), .string("LORA"))
            XCTAssertEqual(config.value(at: ["r"]), .number(4))
            XCTAssertEqual(config.value(at: ["lora_alpha"]), .number(8))
            let base = try HFModelDirectory(path: hfFixture(fixture))
            let model = try base.load(maxTokens: 8)
            let peft = try PEFTAdapter(path: adapter, config: model.config)
            XCTAssertEqual(peft.parameters.count, model.config.nLayers * (fixture == "llama-tiny" ? 7 : 4))
            let before = Array(model.parameters)
            try peft.apply(to: model)
            let expected = try HFModelDirectory(path: merged).load(maxTokens: 8)
            var worst: Float = 0, moved: Float = 0
            for i in 0..<model.parameterCount {
                worst = max(worst, abs(model.parameters[i] - expected.parameters[i]))
                moved = max(moved, abs(model.parameters[i] - before[i]))
            }
            XCTAssertLessThan(worst, 1e-6, fixture)
            XCTAssertGreaterThan(moved, 1e-4, "\(fixture): the adapters must have moved for the check to mean anything")
        }
        // a run that trained every weight has no adapters to write
        let (dir, store) = try runTinySpec(spec("full", lora: nil, steps: 2), run: "full", prefix: "lora-peft-full")
        XCTAssertThrowsError(try RunExport.export(store: store, run: "full", step: nil, checkpointRoot: dir,
                                                  out: dir.appendingPathComponent("a").path, f16: false, format: .peft)) { error in
            XCTAssertTrue("\(error)".contains("train.lora"), "\(error)")
        }
    }

    /// Every objective that may train adapters does (sft, coh, the DPO family, KTO, SPIN, PPO): each run finishes with
    /// finite losses, records the adapters as what trains, and moves its probes.
    func testEveryObjectiveTrainsAdapters() throws {
        let objectives = [
            "{ kind: \"coh\" }", "{ kind: \"dpo\", beta: 0.5 }", "{ kind: \"ipo\", tau: 0.5 }", "{ kind: \"kto\" }",
            "{ kind: \"spin\", iterations: 1, max_tokens: 8 }", "{ kind: \"ppo\", reward: { rule: \"contains\", text: \"e\" }, samples_per_prompt: 2, max_tokens: 8 }",
        ]
        for objective in objectives {
            let (_, store) = try runTinySpec(spec("obj", lora: "{ rank: 4, targets: [\"q\", \"v\", \"up\"] }", objective: objective, steps: 4, lr: "1e-2"),
                                             run: objective.contains("spin") ? "obj/iter=1" : "obj", prefix: "lora-objectives")
            let trainable = try store.query("SELECT value FROM train_metrics WHERE step = 1 AND name = 'trainable_params'")
            XCTAssertEqual(trainable.first?[0].double, Double(LoRASettings(rank: 4, alpha: 8, targets: [.q, .v, .up], seed: 1).parameterCount(.tiny())), objective)
            let losses = try store.query("SELECT value FROM train_metrics WHERE name = 'loss'").map { $0[0].double! }
            XCTAssertEqual(losses.count, 4, objective)
            XCTAssertTrue(losses.allSatisfy(\.isFinite), objective)
            let moved = try store.query("""
                SELECT max(abs(e.logprob - s.logprob)) FROM logprobs e JOIN logprobs s ON s.response_id = e.response_id AND s.step = 0 AND s.run_id = e.run_id
                WHERE e.step = 4
                """)[0][0].double ?? 0
            XCTAssertGreaterThan(moved, 1e-4, objective)
        }
    }

    /// A stage that starts from a LoRA run reads its merged weights (the checkpoint's first tensor): its first evaluation
    /// scores as the LoRA run's last did, up to the float rounding of W + s B A against W x + s B (A x) (1e-4).
    func testAStageStartsFromALoRARunsMergedWeights() throws {
        let text = """
            { name: "two", model: { preset: "tiny", seed: 0 },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 4, batch_size: 2, lr: 1e-2, max_length: 160, lora: { rank: 4 } }, eval: { every: 4 },
              stages: [ { name: "sft" }, { name: "dpo", init_from: { stage: "sft" }, objective: { kind: "dpo", beta: 0.5 } } ] }
            """
        let (_, store) = try runTinySpec(text, runs: ["two/sft", "two/dpo"], prefix: "lora-stages")
        func scores(_ run: String, _ step: Int) throws -> [Double] {
            try store.query("SELECT l.logprob FROM logprobs l JOIN runs r ON r.id = l.run_id WHERE r.name = ? AND l.step = ? ORDER BY l.response_id",
                            [.text(run), .integer(Int64(step))]).map { $0[0].double! }
        }
        let end = try scores("two/sft", 4), start = try scores("two/dpo", 0), base = try scores("two/sft", 0)
        XCTAssertEqual(end.count, start.count)
        XCTAssertFalse(end.isEmpty)
        for (a, b) in zip(end, start) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        XCTAssertGreaterThan(zip(end, base).map { abs($0 - $1) }.max()!, 1e-2, "the SFT stage moved the scores")
    }

    /// A reward model with LoRA trains its adapters and its head (fully, as PEFT's `modules_to_save` would): both move,
    /// and `trainable_params` counts both.
    func testARewardModelTrainsItsAdaptersAndItsHead() throws {
        let (dir, store) = try runTinySpec(spec("rm", lora: "{ rank: 4, targets: [\"q\", \"v\"] }", objective: "{ kind: \"reward\" }", steps: 6, lr: "1e-2"),
                                           run: "rm", prefix: "lora-reward")
        let cfg = LlamaConfig.tiny()
        let adapters = LoRASettings(rank: 4, alpha: 8, targets: [.q, .v], seed: 1).parameterCount(cfg)
        XCTAssertEqual(try store.query("SELECT value FROM train_metrics WHERE step = 1 AND name = 'trainable_params'").first?[0].double,
                       Double(adapters + cfg.dim))
        // the checkpoint: merged weights (the head among them, last), then the adapters, the head, and the moments of both
        let url = RunExecutor.checkpointURL(root: dir, experiment: "rm", runName: "rm")
        let header = try XCTUnwrap(try Checkpoint.readHeader(url))
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        XCTAssertEqual(size, header.headerBytes + 4 * (header.parameterCount + 3 * (adapters + cfg.dim)))
        var withHead = cfg
        withHead.rewardHead = true
        let merged = LlamaModel(config: withHead, maxTokens: 1)
        let state = UnsafeMutableBufferPointer<Float>.allocate(capacity: adapters + cfg.dim)
        defer { state.deallocate() }
        _ = try Checkpoint.read(url, into: [merged.parameters, state])
        let headInWeights = Array(merged.parameter("reward_head.weight")), headInState = Array(state[adapters...])
        XCTAssertEqual(headInWeights, headInState)
        XCTAssertTrue(state[0..<adapters].contains { $0 != 0 })
        let losses = try store.query("SELECT value FROM train_metrics WHERE name = 'loss' ORDER BY step").map { $0[0].double! }
        XCTAssertTrue(losses.allSatisfy(\.isFinite) && losses.count == 6)
    }
}
