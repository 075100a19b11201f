import Base
import Foundation
import Tokenizer
import Training
import XCTest
@testable import Experiments
import Probes

final class SpecTests: XCTestCase {
    static let base = """
    {
      name: "t",
      model: { preset: "tiny", seed: 0 },
      data: {
        train: { path: "train.jsonl" },
        probes: { path: "probes.jsonl", categories: { chosen: "chosen", rejected: "rejected" } },
      },
      train: { steps: 4 },
    }
    """

    func parse(_ text: String) throws -> Experiment {
        try Experiment.parse(text: text, file: "spec.json5", baseDirectory: URL(fileURLWithPath: "/tmp/x"))
    }

    /// Replaces `train: { steps: 4 },` in the base spec with other text.
    func spec(replacing old: String = "train: { steps: 4 },", with new: String) -> String {
        precondition(Self.base.contains(old))
        return Self.base.replacingOccurrences(of: old, with: new)
    }

    func testDefaultsAreFilledIn() throws {
        let e = try parse(Self.base)
        XCTAssertEqual(e.runs.count, 1)
        let c = e.runs[0].config
        XCTAssertEqual(e.runs[0].name, "t")
        XCTAssertEqual(c.train.batchSize, 4)
        XCTAssertEqual(c.train.lr, 2e-5)
        XCTAssertEqual(c.train.schedule, .cosine)
        XCTAssertEqual(c.train.maxLength, 256)
        XCTAssertEqual(c.eval.every, 10)
        XCTAssertTrue(c.eval.atStart)
        XCTAssertEqual(c.template, .chatml)
        XCTAssertEqual(c.objective, .sft(lossOn: .response, target: .chosen))
        XCTAssertEqual(c.model, .preset(name: "tiny", seed: 0))
        XCTAssertEqual(c.seed, 1)
        XCTAssertEqual(c.evalSteps, [0, 4])
        XCTAssertEqual(e.resolve("train.jsonl"), "/tmp/x/train.jsonl")
        XCTAssertEqual(e.runs[0].configSHA256.count, 64)
    }

    func testDesignSpecShapeWorksAsWritten() throws {
        let text = """
        {
          name: "sft-what",
          model: { gguf: "models/SmolLM2-135M-Instruct.Q4_1.gguf" },   // or { preset: "tiny-2l", seed: 0 }
          template: "chatml",
          data: {
            train: { path: "experiments/data/helpful-train.jsonl" },
            probes: {
              path: "experiments/data/helpful-probes.jsonl",
              categories: {
                chosen: "chosen", rejected: "rejected",
                paraphrased_rejected: "paraphrased_rejected", variant: "variant",
                random: { derive: "other_prompt", field: "chosen" },
                non_response: "non_response",
              },
            },
          },
          objective: { kind: "sft", loss_on: "response" },
          train: { steps: 60, batch_size: 4, lr: 2e-5, warmup: 5, schedule: "cosine", max_length: 256 },
          eval: { every: 10, at_start: true },
          seed: 1,
          sweep: { "train.lr": [1e-5, 3e-5], seed: [1, 2, 3] },
        }
        """
        let e = try parse(text)
        XCTAssertEqual(e.runs.count, 6)
        XCTAssertEqual(e.runs.map(\.name), [
            "sft-what/lr=1e-05,seed=1", "sft-what/lr=1e-05,seed=2", "sft-what/lr=1e-05,seed=3",
            "sft-what/lr=3e-05,seed=1", "sft-what/lr=3e-05,seed=2", "sft-what/lr=3e-05,seed=3",
        ])
        XCTAssertEqual(Set(e.runs.map(\.configSHA256)).count, 6)
        XCTAssertEqual(e.runs[0].config.data.probes.categories.count, 6)
        XCTAssertEqual(e.runs[0].config.evalSteps, [0, 10, 20, 30, 40, 50, 60])
    }

    func testSweepNamesAndOrder() throws {
        let e = try parse(spec(with: "train: { steps: 4 }, sweep: { seed: [2, 1], \"train.lr\": [1e-5, 3e-5] },"))
        XCTAssertEqual(e.runs.map(\.name), ["t/lr=1e-05,seed=2", "t/lr=1e-05,seed=1", "t/lr=3e-05,seed=2", "t/lr=3e-05,seed=1"])
        XCTAssertEqual(e.runs[2].config.train.lr, 3e-5)
        XCTAssertEqual(e.runs[1].config.seed, 1)
    }

    func testIdentityIsStableUnderKeyOrder() throws {
        let a = try parse(spec(with: "train: { steps: 4, lr: 1e-4, batch_size: 2 }, sweep: { \"train.lr\": [1e-5, 3e-5], seed: [1, 2] },"))
        let b = try parse("""
        { sweep: { seed: [1, 2], "train.lr": [1e-5, 3e-5] }, train: { batch_size: 2, lr: 1e-4, steps: 4 },
          data: { probes: { categories: { rejected: "rejected", chosen: "chosen" }, path: "probes.jsonl" }, train: { path: "train.jsonl" } },
          model: { seed: 0, preset: "tiny" }, name: "t" }
        """)
        XCTAssertEqual(a.runs.map(\.configSHA256).sorted(), b.runs.map(\.configSHA256).sorted())
        XCTAssertEqual(Set(a.runs.map(\.name)), Set(b.runs.map(\.name)))
        // A default written out explicitly does not change the identity either.
        let c = try parse(spec(with: "train: { steps: 4, batch_size: 4 },"))
        XCTAssertEqual(c.runs[0].configSHA256, try parse(Self.base).runs[0].configSHA256)
    }

    func testBadSpecsGiveExactErrors() {
        var cases: [(String, String)] = [
            (spec(with: "train: { steps: 4, lrr: 1 },"),
             "spec.json5: train.lrr: unknown key (allowed here: steps, batch_size, lr, warmup, schedule, min_lr_ratio, max_length, weight_decay, grad_clip, grad_accum, beta1, beta2, precision, checkpoint_activations, lora)"),
            (spec(with: "train: { steps: 4, lr: -1 },"), "spec.json5: train.lr: expected a number in (0, 1], found -1"),
            (spec(with: "train: { steps: 4, lr: \"fast\" },"), "spec.json5: train.lr: expected a number in (0, 1], found \"fast\""),
            (spec(with: "train: { steps: 0 },"), "spec.json5: train.steps: expected an integer in [1, 1000000], found 0"),
            (spec(with: "train: { steps: 2.5 },"), "spec.json5: train.steps: expected an integer in [1, 1000000], found 2.5"),
            (spec(with: "train: { },"), "spec.json5: train.steps: missing; expected an integer in [1, 1000000]"),
            (spec(with: "train: { steps: 4, schedule: \"cos\" },"), "spec.json5: train.schedule: expected one of \"constant\", \"linear\", \"cosine\", found \"cos\""),
            (spec(with: "train: { steps: 4, precision: \"fp16\" },"), "spec.json5: train.precision: expected one of \"fp32\", \"bf16\", found \"fp16\""),
            (spec(with: "train: { steps: 4 }, eval: { precision: 16 },"), "spec.json5: eval.precision: expected one of \"fp32\", \"bf16\", found 16"),
            (spec(with: "train: { steps: 4, warmup: 5 },"), "spec.json5: train.warmup: expected an integer <= train.steps (4), found 5"),
            (spec(with: "train: { steps: 4 }, eval: { every: 0 },"), "spec.json5: eval.every: expected an integer >= 1, found 0"),
            (spec(with: "train: { steps: 4 }, eval: { at_start: 1 },"), "spec.json5: eval.at_start: expected true or false, found 1"),
            (spec(with: "train: { steps: 4 }, objective: { kind: \"ppx\" },"), "spec.json5: objective.kind: expected one of \"sft\", \"dpo\", \"ipo\", \"hinge\", \"simpo\", \"cpo\", \"orpo\", \"coh\", \"reward\", \"kto\", \"spin\", \"ppo\", found \"ppx\""),
            (spec(with: "train: { steps: 4 }, objective: { kind: \"ppo\" },"),
             "spec.json5: objective.reward: missing; expected { run: NAME } (a reward-model run), { judge: MODEL, template?: FILE }, { rule: \"length\" } or { rule: \"contains\", text: TEXT }"),
            (spec(with: "train: { steps: 4 }, objective: { kind: \"ppo\", reward: { rule: \"contains\" } },"),
             "spec.json5: objective.reward: expected { run: NAME } (a reward-model run), { judge: MODEL, template?: FILE }, { rule: \"length\" } or { rule: \"contains\", text: TEXT }, found an object"),
            (spec(with: "train: { steps: 4 }, objective: { kind: \"ppo\", reward: { rule: \"length\" }, samples_per_prompt: 1 },"),
             "spec.json5: objective.samples_per_prompt: expected an integer in [2, 64], found 1"),
            (spec(with: "train: { steps: 4, max_length: 64 }, objective: { kind: \"ppo\", reward: { rule: \"length\" }, max_tokens: 64 },"),
             "spec.json5: objective.max_tokens: expected a token count < train.max_length (64), so the prompt keeps a token, found 64"),
            (spec(with: "train: { steps: 4, grad_accum: 2 }, objective: { kind: \"ppo\", reward: { rule: \"length\" } },"),
             "spec.json5: train.grad_accum: expected 1 for objective ppo (a step's prompts are train.batch_size; split its updates with objective.mini_batches), found 2"),
            (spec(with: "train: { steps: 4, batch_size: 2 }, objective: { kind: \"ppo\", reward: { rule: \"length\" }, mini_batches: 9 },"),
             "spec.json5: objective.mini_batches: expected at most the samples of a step (train.batch_size x samples_per_prompt = 8), found 9"),
            (spec(with: "train: { steps: 4 }, objective: { kind: \"ppo\", reward: { rule: \"length\" }, beta: 0.1 },"),
             "spec.json5: objective.beta: unknown key (allowed here: kind, reward, samples_per_prompt, epochs, mini_batches, temperature, top_p, max_tokens, kl_coef, kl_estimator, advantages, scale_advantages, clip, loss_averaging, missing_eos_penalty, reference)"),
            (spec(with: "train: { steps: 4 }, template: \"alpaca\","), "spec.json5: template: expected one of \"chatml\", \"hh\", \"raw\", found \"alpaca\""),
            (spec(with: "train: { steps: 4 }, colour: 1,"),
             "spec.json5: colour: unknown key (allowed here: name, description, model, template, data, objective, train, eval, checkpoint, seed, threads, init_from, label, sweep, stages, system)"),
            (spec(with: "train: { steps: 4 }, sweep: { \"train.lr\": [] },"), "spec.json5: sweep.train.lr: expected a non-empty list of values, found an array"),
            (spec(with: "train: { steps: 4 }, sweep: { \"train.lr\": [1e-5, -2] },"), "spec.json5: train.lr: expected a number in (0, 1], found -2"),
            (spec(with: "train: { steps: 4 }, sweep: { \"trian.lr\": [1] },"), "spec.json5: sweep.trian.lr: expected a key path into the spec such as train.lr or seed, found \"trian.lr\""),
            (spec(with: "train: { steps: 4 }, sweep: { \"train.lrr\": [1] },"),
             "spec.json5: train.lrr: unknown key (allowed here: steps, batch_size, lr, warmup, schedule, min_lr_ratio, max_length, weight_decay, grad_clip, grad_accum, beta1, beta2, precision, checkpoint_activations, lora)"),
            (spec(replacing: "model: { preset: \"tiny\", seed: 0 },", with: "model: { preset: \"huge\" },"),
             "spec.json5: model.preset: expected one of \"tiny\", \"tiny-2l\", found \"huge\""),
            (spec(replacing: "model: { preset: \"tiny\", seed: 0 },", with: "model: { },"),
             "spec.json5: model.gguf: missing; expected a GGUF path, model.hf (a Hugging Face model directory), or model.preset (one of tiny, tiny-2l)"),
            (spec(replacing: "model: { preset: \"tiny\", seed: 0 },", with: ""), "spec.json5: model: missing; expected an object with keys gguf, preset, seed"),
            (spec(replacing: "name: \"t\",", with: "name: \"a b\","), "spec.json5: name: expected a name of 1-128 bytes without '/', spaces or control characters, not starting with '.' (it names the results folder), found \"a b\""),
            (spec(replacing: "train: { path: \"train.jsonl\" },", with: "train: { path: 3 },"), "spec.json5: data.train.path: expected a string, found 3"),
            ("[1, 2]", "spec.json5: (top level): expected an object, found an array"),
            // A number that ends the text made Foundation read past its buffer and trap (FuzzSpec).
            ("5", "spec.json5: (top level): expected an object, found a number"),
            ("-1.5e3", "spec.json5: (top level): expected an object, found a number"),
            ("{ name: \"x\", model: { preset: tiny } }", "spec.json5:1:31: unexpected word 'tiny' (strings need quotes)"),
            ("{\n  name: \"x\",\n  train: { steps: 4 \n}", "spec.json5:4:2: expected ',' or '}', found 'end of file'"),
            ("{ name: \"x\" ", "spec.json5:1:13: expected ',' or '}', found 'end of file'"),
            // Foundation's JSON5 decoder traps on an exponent without digits (FuzzSpec); it must be an error.
            ("{ name: \"x\", train: { lr: 5e- } }", "spec.json5:1:30: expected a digit in the exponent of a number, found ' '"),
            ("[1E+]", "spec.json5:1:5: expected a digit in the exponent of a number, found ']'"),
            // Even after text the validating scanner would stop at (a string across lines, found by FuzzSpec).
            ("{ d: \"a\nb\", lr: 5e-\n}", "spec.json5:2:12: expected a digit in the exponent of a number, found end of line"),
        ]
        // Issue 15: what Foundation accepted silently or reported without a place.
        cases += [
            ("{ name: \"x\", seed: 1, seed: 2 }", "spec.json5:1:23: duplicate key \"seed\" in this object (each key may appear once)"),
            ("{ name: \"x\", train: { 'lr': 1, lr: 2 } }", "spec.json5:1:32: duplicate key \"lr\" in this object (each key may appear once)"),
            ("{ name: \"x\", lr: 1e400 }", "spec.json5:1:18: number 1e400 is out of range (larger than about 1.8e308)"),
            ("{ name: \"a\u{01}b\" }", "spec.json5:1:11: control character U+0001 inside a string (write it escaped, e.g. \\n or \\t)"),
            (spec(with: "train: { steps: 4, beta2: 1 },"), "spec.json5: train.beta2: expected a number in [0, 1), found 1"),
            (spec(replacing: "name: \"t\",", with: "name: \"..\","), "spec.json5: name: expected a name of 1-128 bytes without '/', spaces or control characters, not starting with '.' (it names the results folder), found \"..\""),
            (spec(with: "train: { steps: 4, max_length: 64 },").replacingOccurrences(of: "categories: { chosen: \"chosen\", rejected: \"rejected\" }", with: "categories: { g: { greedy: { max_tokens: 64 } } }"),
             "spec.json5: data.probes.categories.g.greedy.max_tokens: expected a token count < train.max_length (64), so the prompt keeps a token, found 64"),
            (spec(replacing: "categories: { chosen: \"chosen\", rejected: \"rejected\" }", with: "categories: { r: { derive: \"othr_prompt\", field: \"chosen\" } }"),
             "spec.json5: data.probes.categories.r.derive: expected \"other_prompt\", \"shuffled_words\" or \"random_tokens\", found \"othr_prompt\""),
            (spec(with: "train: { steps: 4 }, sweep: { seed: \(Array(0..<100)), \"train.lr\": \((1...101).map { Double($0) / 1000 }) },"),
             "spec.json5: sweep: expected at most 10000 runs in one experiment, found 10100 runs"),
        ]
        // Nesting deeper than the decoder and the locator accept (a recursion that overflowed the stack; FuzzSpec).
        cases.append((String(repeating: "[", count: 100_000), "spec.json5:1:513: more than 512 nested arrays or objects"))
        for (text, expected) in cases {
            XCTAssertThrowsError(try parse(text), expected) { error in
                XCTAssertEqual("\(error)", expected)
            }
        }
    }

    func testNumbersWithExponentsStillParse() throws {
        let text = "{ a: 1e-5, b: 2E+2, c: .5e3, d: -1e2, e: 0x1F, f: [3e0, +1, 7] }"
        let v = try JSONValue.parseJSON5(Data(text.utf8), file: "x.json5")
        XCTAssertEqual(v.value(at: ["a"]), .number(1e-5))
        XCTAssertEqual(v.value(at: ["b"]), .number(200))
        XCTAssertEqual(v.value(at: ["c"]), .number(500))
        XCTAssertEqual(v.value(at: ["d"]), .number(-100))
        // JSON5's Infinity and NaN are no values a spec takes (issue 33): refused with their place
        for word in ["-Infinity", "NaN", "+Infinity"] {
            XCTAssertThrowsError(try JSONValue.parseJSON5(Data("{ a: 1,\n b: \(word) }".utf8), file: "x.json5")) { error in
                XCTAssertTrue("\(error)".hasPrefix("x.json5:2:5: ") && "\(error)".contains("finite"), "\(error)")
            }
        }
        XCTAssertEqual(v.value(at: ["e"]), .number(31))
        XCTAssertEqual(v.value(at: ["f"]), .array([.number(3), .number(1), .number(7)]))
        // The same characters inside strings and comments are text, not numbers.
        let quoted = try JSONValue.parseJSON5(Data("{ s: \"5e- and 1E+\", t: '2e-', // 3e-\n /* 4E+ */ u: 1 }".utf8), file: "x.json5")
        XCTAssertEqual(quoted.value(at: ["s"]), .string("5e- and 1E+"))
        XCTAssertEqual(quoted.value(at: ["t"]), .string("2e-"))
        XCTAssertEqual(quoted.value(at: ["u"]), .number(1))
    }

    func testMissingFile() {
        XCTAssertThrowsError(try Experiment.load(path: "/nonexistent/spec.json5")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/spec.json5: cannot read: no such file")
        }
    }

}
