import Base
import Foundation
import RunStore
import Tokenizer
import XCTest

/// Issue 32 against the real executable (helpers and fixtures of `ReliabilityTests`): the learning-dynamics probe
/// file's every field scored as written, SFT on TRL's prompt-completion and language-modelling lines, one spec per
/// experiment name, and `plan` refusing what `run` refuses.
extension ReliabilityTests {
    /// A conformance fixture of ProbesTests (ours, in the shape of the field's files).
    func conformanceFixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ProbesTests/Fixtures/conformance/\(name)").path
    }

    /// A tiny-preset spec (hh template) training on `train` and probing `probes` with `categories` (JSON5 text).
    func trustSpec(name: String, train: String, probes: String = "tiny-probes.jsonl", objective: String = "{}",
                   categories: String = #"{ chosen: "chosen", rejected: "rejected" }"#, steps: Int = 2, maxLength: Int = 160) -> String {
        """
        { name: "\(name)", model: { preset: "tiny", seed: 0 }, template: "hh",
          data: { train: { path: "\(train)" }, probes: { path: "\(probes)", categories: \(categories) } },
          objective: \(objective),
          train: { steps: \(steps), batch_size: 2, lr: 1e-3, warmup: 1, max_length: \(maxLength) }, eval: { every: \(steps) }, seed: 1 }
        """
    }

    func testTheLearningDynamicsProbeFileScoresEveryFieldAsWritten() throws {
        try FileManager.default.copyItem(atPath: conformanceFixture("ld-hh-formal-prob.jsonl"), toPath: path("ld.jsonl"))
        let fields = ["chosen", "chosen_initial", "chosen_selfr", "chosen_gptsemantic", "chosen_gptformat", "rejected", "reject_gptsemantic",
                      "reject_gptformat", "irr_train", "irr_test", "random_permute", "random_nonhum"]
        // the paper's non-response category, which was refused as "no text field" before
        let categories = "{ " + fields.map { "\($0): \"\($0)\"" }.joined(separator: ", ") + #", non_response: "irr_hum" }"#
        try write(trustSpec(name: "ld", train: "ld.jsonl", probes: "ld.jsonl", categories: categories, maxLength: 400), to: "ld.json5")
        let result = try run(["run", "ld.json5", "--db", path("ld.sqlite"), "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = try RunStore(path: path("ld.sqlite"), readOnly: true).query("""
            SELECT p.idx, s.category, l.n_tokens FROM logprobs l JOIN responses s ON s.id = l.response_id
            JOIN probes p ON p.id = s.probe_id WHERE l.step = 0 ORDER BY 1, 2
            """)
        XCTAssertEqual(rows.count, 2 * 13)
        // every response is scored as its authors wrote it after "Assistant:": with the byte tokenizer, its tokens are
        // its bytes (the leading space counted where the file has one, not added where it has none)
        let author = try String(contentsOfFile: path("ld.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: String]
        }
        for row in rows {
            let idx = row[0].int!, category = row[1].string!
            let text = author[idx][category == "non_response" ? "irr_hum" : category]!
            // (the second line's empty chosen_initial has no token: log p = 0, n_tokens = 0; `probes audit` flags it)
            XCTAssertEqual(row[2].int, ByteTokenizer().encode(text).count, "probe \(idx) \(category)")
        }
        let shown = try run(["probes", "show", "ld.jsonl", "--line", "1", "--template", "hh"])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        for field in fields + ["irr_hum"] { XCTAssertTrue(shown.stdout.contains("\n  \(field) "), "\(field) missing from:\n\(shown.stdout)") }
        XCTAssertTrue(shown.stdout.contains("irr_hum             \"The lighthouse keeper"), shown.stdout)
    }

    func testSFTTrainsOnPromptCompletionAndTextLines() throws {
        try write(#"{"prompt": "The sky is", "completion": " blue."}"# + "\n" + #"{"prompt": "Grass is", "completion": " green."}"# + "\n", to: "pc.jsonl")
        try write(#"{"text": "The sky is blue."}"# + "\n" + #"{"text": "Grass is green."}"# + "\n", to: "lm.jsonl")
        try write(trustSpec(name: "pc", train: "pc.jsonl", objective: #"{ kind: "sft", target: "completion" }"#), to: "pc.json5")
        try write(trustSpec(name: "lm", train: "lm.jsonl", objective: #"{ kind: "sft", target: "text", loss_on: "all" }"#), to: "lm.json5")
        for name in ["pc", "lm"] {
            let result = try run(["run", "\(name).json5", "--db", path("\(name).sqlite"), "--quiet"])
            XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
            let loss = try RunStore(path: path("\(name).sqlite"), readOnly: true).query("SELECT value FROM train_metrics WHERE name = 'loss'")
            XCTAssertEqual(loss.count, 2, name)
            XCTAssertTrue(loss.allSatisfy { ($0[0].double ?? .nan).isFinite }, name)
        }
        // refused with one line naming the file, line and the way on; nothing written
        let refusals: [(String, String, String)] = [
            ("pc.jsonl", "{}", #"pc.jsonl:1: no "chosen" response (objective.target is "chosen"); this is a prompt-completion line: set objective.target to "completion""#),
            ("lm.jsonl", #"{ kind: "sft", target: "text" }"#, #"lm.jsonl:1: a language-modelling line {"text"} has no prompt to mask: set objective.loss_on to "all""#),
            ("lm.jsonl", "{}", #"lm.jsonl:1: a language-modelling line {"text"}: set objective.target to "text" (and loss_on to "all")"#),
            ("lm.jsonl", #"{ kind: "dpo" }"#, #"lm.jsonl:1: a language-modelling line {"text"} has no prompt, which dpo needs; only sft trains on text lines (objective.target "text", loss_on "all")"#),
        ]
        for (k, (train, objective, message)) in refusals.enumerated() {
            try write(trustSpec(name: "bad\(k)", train: train, objective: objective), to: "bad\(k).json5")
            for verb in ["plan", "run"] {
                let result = try run([verb, "bad\(k).json5"] + (verb == "run" ? ["--db", path("bad.sqlite")] : []))
                XCTAssertEqual(result.status, 2, "\(verb) \(k): \(result.stderr)")
                XCTAssertEqual(result.stderr, "error: \(dir.path)/\(message)\n", "\(verb) \(k)")
            }
        }
        try write(trustSpec(name: "lmprobes", train: "tiny-train.jsonl", probes: "lm.jsonl", categories: #"{ text: "text" }"#), to: "lmprobes.json5")
        let probes = try run(["plan", "lmprobes.json5"])
        XCTAssertEqual(probes.status, 2)
        XCTAssertEqual(probes.stderr, "error: \(path("lm.jsonl")):1: a language-modelling line {\"text\"} has no prompt to score a response after; probe lines need a prompt\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad.sqlite")))
    }

    func testASecondSpecUnderAnExperimentNameIsRefusedOrRecordedAsANewVersion() throws {
        let db = path("names.sqlite")
        try write(trustSpec(name: "same", train: "tiny-train.jsonl"), to: "first.json5")
        try write(trustSpec(name: "same", train: "tiny-train.jsonl", steps: 4), to: "second.json5")
        XCTAssertEqual(try run(["run", "first.json5", "--db", db, "--quiet"]).status, 0)
        let store = { try RunStore(path: db, readOnly: true) }
        let before = try store().query("SELECT name, spec, spec_sha256 FROM experiments ORDER BY id")
        let snapshotBefore = try snapshot(db)
        let firstSHA = SHA256.hex(Array(try String(contentsOfFile: path("first.json5"), encoding: .utf8).utf8))
        let secondSHA = SHA256.hex(Array(try String(contentsOfFile: path("second.json5"), encoding: .utf8).utf8))

        let refused = try run(["run", "second.json5", "--db", db, "--quiet"])
        XCTAssertEqual(refused.status, 2)
        XCTAssertEqual(refused.stderr, "error: \(db): experiment \"same\" was recorded with another spec (sha256 \(firstSHA.prefix(12)) in the store, \(secondSHA.prefix(12)) in second.json5); a store keeps one spec per experiment name: give this spec another name, or run with --new-version to record it as a new experiment \"same.v2\" beside \"same\", keeping both specs\n")
        XCTAssertEqual(try snapshot(db), snapshotBefore)
        XCTAssertEqual(try store().query("SELECT name, spec, spec_sha256 FROM experiments ORDER BY id"), before)

        let versioned = try run(["run", "second.json5", "--db", db, "--quiet", "--new-version"])
        XCTAssertEqual(versioned.status, 0, versioned.stderr)
        let rows = try store().query("SELECT name, spec_sha256 FROM experiments ORDER BY id")
        XCTAssertEqual(rows.map { $0[0].string }, ["same", "same.v2"])
        XCTAssertEqual(rows.map { $0[1].string }, [firstSHA, secondSHA])
        XCTAssertEqual(try store().query("SELECT spec FROM experiments WHERE name = 'same'"), [[before[0][1]]], "the first spec is kept as it was")
        XCTAssertEqual(try store().query("SELECT name, status FROM runs ORDER BY id").map { $0.map(\.string) },
                       [["same", "finished"], ["same.v2", "finished"]])
        // again with the flag: the version that holds this spec, nothing new; without it: refused, naming that version
        XCTAssertEqual(try run(["run", "second.json5", "--db", db, "--quiet", "--new-version"]).status, 0)
        XCTAssertEqual(try store().query("SELECT count(*) FROM experiments")[0][0].int, 2)
        let again = try run(["run", "second.json5", "--db", db, "--quiet"])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.hasSuffix("or run with --new-version to go on with \"same.v2\", where this spec is recorded\n"), again.stderr)
        // the first spec itself still runs (finished: nothing to do)
        XCTAssertEqual(try run(["run", "first.json5", "--db", db, "--quiet"]).status, 0)
    }

    func testPlanChecksTheFilesRunChecks() throws {
        let cases: [(String, String)] = [
            (trustSpec(name: "p1", train: "missing.jsonl"), "missing.jsonl"),
            (trustSpec(name: "p2", train: "tiny-train.jsonl", probes: "nope.jsonl"), "nope.jsonl"),
            (trustSpec(name: "p3", train: "tiny-train.jsonl").replacingOccurrences(of: #"preset: "tiny", seed: 0"#, with: #"gguf: "absent.gguf""#), "absent.gguf"),
            (trustSpec(name: "p4", train: "tiny-train.jsonl", maxLength: 12), "train.max_length is 12"),
        ]
        for (k, (spec, needle)) in cases.enumerated() {
            try write(spec, to: "p\(k).json5")
            let plan = try run(["plan", "p\(k).json5"]), run_ = try run(["run", "p\(k).json5", "--db", path("p.sqlite")])
            XCTAssertEqual(plan.status, 2, "\(k): \(plan.stdout)")
            XCTAssertEqual(plan.stderr, run_.stderr, "\(k)")
            XCTAssertTrue(plan.stderr.contains(needle) && plan.stderr.hasPrefix("error: ") && plan.stderr.filter { $0 == "\n" }.count == 1, plan.stderr)
            XCTAssertEqual(plan.stdout, "")
            // --no-check expands the spec only
            XCTAssertEqual(try run(["plan", "p\(k).json5", "--no-check"]).status, 0)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("p.sqlite")))
    }
}
