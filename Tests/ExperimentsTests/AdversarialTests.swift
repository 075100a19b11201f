import Base
import Foundation
import RunStore
import XCTest

/// Issue 33: the adversarial pass over export, label, slurm, merge, Hugging Face directories and SPIN, each case
/// against the real executable (helpers and fixtures of `ReliabilityTests`). Spec-level refusals are rows of
/// `issue33Cases` (run by `testBadInputExits2WithOneLineAndWritesNothing`); the rest need several commands.
extension ReliabilityTests {
    static func issue33Cases() -> [BadCase] {
        let cats = #"categories: { chosen: "chosen", rejected: "rejected" }"#
        func category(_ text: String) -> [(String, String)] { [(cats, #"categories: { chosen: "chosen", "# + text + " }")] }
        let seeds = "[" + (1...10_000).map(String.init).joined(separator: ",") + "]"
        return [
            BadCase(name: "NaN in a spec", spec: spec(replacing: [("warmup: 1", "warmup: NaN")]), needles: ["spec.json5:9:", "NaN"]),
            BadCase(name: "-Infinity in a spec", spec: spec(replacing: [("lr: 1e-3", "lr: -Infinity")]), needles: ["spec.json5:9:", "Infinity"]),
            BadCase(name: "an unterminated comment", spec: spec() + "\n/* never closed", needles: ["spec.json5:13:1", "/*"]),
            BadCase(name: "a \\u-escaped duplicate key", spec: spec(extra: #"seed: 1, "se\u0065d": 2,"#), needles: ["spec.json5:11:", "duplicate key"]),
            BadCase(name: "run folders that collide", spec: spec(extra: #"sweep: { "data.train.path": ["d/x.jsonl", "d_x.jsonl"] },"#),
                    files: ["d_x.jsonl": Data((#"{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go."}"# + "\n").utf8)],
                    needles: ["spec.json5", "both in folder"]),
            BadCase(name: "a stage named shards", spec: spec(extra: #"stages: [{ name: "shards" }],"#), needles: ["spec.json5", "shards"]),
            BadCase(name: "a stage named reference-cache", spec: spec(extra: #"stages: [{ name: "reference-cache" }],"#), needles: ["spec.json5", "reference-cache"]),
            BadCase(name: "SPIN max_tokens >= max_length - 1", spec: spec(extra: #"objective: { kind: "spin", max_tokens: 159 },"#),
                    needles: ["spec.json5", "objective.max_tokens"]),
            BadCase(name: "10,000 seeds x 16 SPIN iterations", spec: spec(extra: #"objective: { kind: "spin", iterations: 16 }, sweep: { seed: \#(seeds) },"#),
                    needles: ["spec.json5", "sweep", "10000"]),
            BadCase(name: "a right-to-left override in a name", spec: spec(replacing: [(#"name: "bad""#, "name: \"ba\u{202E}d\"")]), needles: ["spec.json5", "name"]),
            BadCase(name: "a zero-width space in a stage name", spec: spec(extra: "stages: [{ name: \"s\u{200B}\" }],"), needles: ["spec.json5", "stages[0].name"]),
            BadCase(name: "a generator program that does not exist",
                    spec: spec(replacing: category(#"p: { generate: { command: ["no-such-program-x"], template: "{text}", field: "chosen" } }"#)),
                    needles: ["spec.json5", "data.probes.categories.p.generate.command", "no-such-program-x"]),
            BadCase(name: "a generator that fails", spec: spec(replacing: category(#"p: { generate: { command: ["/bin/false"], template: "{text}", field: "chosen" } }"#)),
                    needles: ["/bin/false"]),
            BadCase(name: "a generator that writes no JSON",
                    spec: spec(replacing: category(#"p: { generate: { command: ["/bin/echo", "hello"], template: "{text}", field: "chosen" } }"#)),
                    needles: ["/bin/echo"]),
            BadCase(name: "a duplicate key in a probe line", spec: spec(probes: "dup.jsonl"),
                    files: ["dup.jsonl": Data((#"{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go.", "chosen": "Other."}"# + "\n").utf8)],
                    needles: ["dup.jsonl:1", "duplicate key \"chosen\""]),
            BadCase(name: "--checkpoints where no folder can be made", spec: spec(), needles: ["--checkpoints", "/sys"], extraArgs: ["--checkpoints", "/sys/alignscope-x"]),
        ]
    }

    // MARK: data loss

    func testExportNeverWritesOverAFile() throws {
        let db = path("e.sqlite")
        XCTAssertEqual(try run(["run", "reliability-crash.json5", "--db", db, "--quiet"]).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: db))
        for (out, needle) in [(db, "is the input"), (path("tiny-train.jsonl"), "exists and was not written")] {
            for format in ["gguf", "hf"] {
                let result = try run(["export", "--db", db, "--run", "1", "--out", out, "--format", format])
                XCTAssertEqual(result.status, 2, result.stderr)
                XCTAssertTrue(result.stderr.contains(needle), "\(format) \(out): \(result.stderr)")
            }
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: db)), before)
        XCTAssertEqual(try RunStore(path: db, readOnly: true).query("PRAGMA integrity_check")[0][0].string, "ok")
    }

    func testProbesBuildNeverWritesOverItsInputOrAForeignFile() throws {
        let probes = path("tiny-probes.jsonl")
        let before = try String(contentsOfFile: probes, encoding: .utf8)
        for (input, out) in [(probes, probes), ("reliability-crash.json5", "reliability-crash.json5"), (probes, "tiny-train.jsonl")] {
            let result = try run(["probes", "build", input, "--out", out])
            XCTAssertEqual(result.status, 2, "\(input) -> \(out): \(result.stderr)")
        }
        XCTAssertEqual(try String(contentsOfFile: probes, encoding: .utf8), before)
        // its own output it may write again
        XCTAssertEqual(try run(["probes", "build", probes, "--out", "built.jsonl"]).status, 0)
        XCTAssertEqual(try run(["probes", "build", probes, "--out", "built.jsonl"]).status, 0)
    }

    /// `label` resumes only an output it began with the same inputs; anything else is refused untouched.
    func testLabelResumesOnlyItsOwnOutputWithTheSameInputs() throws {
        let model = hfFixture("qwen2-tiny.gguf")
        let rm = path("rm.gguf")
        // a reward model to score with: the tiny GGUF's run exported with its head
        try write("""
            { name: "rm", model: { gguf: "\(model)" }, template: "chatml", objective: { kind: "reward" },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 1, batch_size: 2, lr: 1e-4, max_length: 64 }, eval: { every: 1 } }
            """, to: "rm.json5")
        let trained = try run(["run", "rm.json5", "--db", path("rm.sqlite"), "--quiet"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        XCTAssertEqual(try run(["export", "--db", path("rm.sqlite"), "--run", "1", "--out", rm]).status, 0)
        func label(_ out: String, _ extra: [String] = []) throws -> Outcome {
            try run(["label", "--data", "tiny-train.jsonl", "--policy", model, "--reward-model", rm, "--out", out, "--samples", "2",
                     "--max-tokens", "4", "--limit", "2"] + extra)
        }
        // unrelated files, with and without a final newline, are refused and kept byte for byte
        for (name, bytes) in [("notes.txt", Data("my notes".utf8)), ("lines.txt", Data("a\nb\n".utf8)), ("blob.bin", Data((0..<4096).map { UInt8($0 % 251) }))] {
            try bytes.write(to: URL(fileURLWithPath: path(name)))
            let result = try label(path(name))
            XCTAssertEqual(result.status, 2, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("was not written by alignscope label"), result.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path(name))), bytes, name)
        }
        let out = path("pairs.jsonl")
        XCTAssertEqual(try label(out).status, 0)
        let first = try String(contentsOfFile: out, encoding: .utf8)
        XCTAssertEqual(try label(out).status, 0, "the same inputs resume (nothing to add)")
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), first)
        // another data file, sample count, seed or policy is refused, naming what differs
        try write(#"{"prompt": "Another?", "chosen": "Yes.", "rejected": "No."}"# + "\n" + #"{"prompt": "More?", "chosen": "Yes.", "rejected": "No."}"# + "\n", to: "other.jsonl")
        let cases: [([String], String)] = [
            (["--seed", "9"], "seed 0 then, 9 now"), (["--samples", "3"], "samples 2 then, 3 now"),
            (["--policy", rm], "policy"),
        ]
        for (extra, needle) in cases {
            let result = try label(out, extra)
            XCTAssertEqual(result.status, 2, "\(extra): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(needle) && result.stderr.contains("give a new --out"), "\(extra): \(result.stderr)")
        }
        let otherData = try run(["label", "--data", "other.jsonl", "--policy", model, "--reward-model", rm, "--out", out, "--samples", "2", "--max-tokens", "4", "--limit", "2"])
        XCTAssertEqual(otherData.status, 2)
        XCTAssertTrue(otherData.stderr.contains("data_sha256"), otherData.stderr)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), first)
        // bounds: samples at most 64, max_tokens within the policy's context
        XCTAssertEqual(try label(path("n.jsonl"), ["--samples", "9223372036854775807"]).status, 2)
        XCTAssertEqual(try label(path("n.jsonl"), ["--samples", "100000"]).status, 2)
        let context = try label(path("m.jsonl"), ["--max-tokens", "4096"])
        XCTAssertEqual(context.status, 2, context.stderr)
        XCTAssertTrue(context.stderr.contains("context"), context.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("n.jsonl")))
    }

    /// A label stage whose train file changed after it was interrupted is refused, not resumed into one mixed file.
    func testALabelStageRefusesToResumeFromAnEditedTrainFile() throws {
        let model = hfFixture("qwen2-tiny.gguf")
        try write("""
            { name: "ls", model: { gguf: "\(model)" }, template: "chatml",
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 1, batch_size: 2, lr: 1e-4, max_length: 64 }, eval: { every: 1 },
              stages: [ { name: "rm", objective: { kind: "reward" } },
                        { name: "label", label: { scorer: { run: "rm" }, samples: 2, max_tokens: 4 } } ] }
            """, to: "ls.json5")
        let db = path("ls.sqlite")
        XCTAssertEqual(try run(["run", "ls.json5", "--db", db, "--quiet", "--only", "ls/rm"]).status, 0)
        // a label output begun from the file as it was (as an interrupted stage leaves it)
        let labels = dir.appendingPathComponent("ls/label/labels.jsonl")
        XCTAssertEqual(try run(["run", "ls.json5", "--db", db, "--quiet", "--only", "ls/label"]).status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: labels.path), labels.path)
        try FileManager.default.removeItem(at: labels)  // as if stopped before its first line
        _ = try RunStore(path: db).query("UPDATE runs SET status = 'interrupted' WHERE name = 'ls/label'")
        var train = try String(contentsOfFile: path("tiny-train.jsonl"), encoding: .utf8)
        train = train.replacingOccurrences(of: "boil an egg", with: "poach an egg")
        try write(train, to: "tiny-train.jsonl")
        let resumed = try run(["run", "ls.json5", "--db", db, "--quiet", "--only", "ls/label"])
        XCTAssertNotEqual(resumed.status, 0)
        XCTAssertTrue(resumed.stderr.contains("data_sha256") && resumed.stderr.contains("delete"), resumed.stderr)
    }

    // MARK: security

    func testAnExperimentNameIsNeverShellCode() throws {
        let spec = try String(contentsOf: dir.appendingPathComponent("reliability-crash.json5"), encoding: .utf8)
            .replacingOccurrences(of: #"name: "reliability-crash""#, with: #"name: "x$(touch${IFS}PWNED)'q""#)
            .replacingOccurrences(of: "steps: 40", with: "steps: 2")
        try write(spec, to: "inj.json5")
        let db = path("inj.sqlite")
        let dry = try run(["slurm", "inj.json5", "--db", db, "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        let script = dir.appendingPathComponent("x$(touch${IFS}PWNED)'q/slurm/wave-0.sbatch").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: script), dry.stdout)
        // the task script run as a task would be: it trains the run and writes its shard, and runs no name as code
        let task = Process()
        task.executableURL = URL(fileURLWithPath: "/bin/bash")
        task.arguments = [script]
        task.currentDirectoryURL = dir
        task.environment = ProcessInfo.processInfo.environment.merging(["SLURM_ARRAY_TASK_ID": "0", "SLURM_TMPDIR": dir.path]) { $1 }
        task.standardOutput = FileHandle.nullDevice
        task.standardError = FileHandle.nullDevice
        try task.run()
        task.waitUntilExit()
        XCTAssertEqual(task.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("PWNED")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x$(touch${IFS}PWNED)'q/shards/run.sqlite").path))
        // an #SBATCH value with a line break would be a line of code
        for (flag, value) in [("--partition", "cpu\ntouch X"), ("--mem", "8G\rX"), ("--sbatch-arg", "--qos=a\ntouch X")] {
            let result = try run(["slurm", "inj.json5", "--db", db, "--dry-run", flag, value])
            XCTAssertEqual(result.status, 2, "\(flag): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(flag), result.stderr)
        }
    }

    /// `slurm` started through $PATH writes the executable's own path into the task script, not $PWD/alignscope.
    func testSlurmThroughPATHNamesItsRealBinary() throws {
        let binary = try Self.binary()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["alignscope", "slurm", "reliability-crash.json5", "--db", path("p.sqlite"), "--dry-run"]
        p.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = binary.deletingLastPathComponent().path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let line = text.split(separator: "\n").first { $0.hasPrefix("ALIGNSCOPE=") }
        XCTAssertEqual(line.map(String.init), "ALIGNSCOPE='\(binary.resolvingSymlinksInPath().path)'", text)
    }

    /// `score` refuses a pair past the model's context with one line instead of running off its end.
    func testScorePastTheContextIsRefused() throws {
        let model = hfFixture("qwen2-tiny.gguf")
        let result = try run(["score", "--model", model, "--prompt", "a", "--response", String(repeating: "word ", count: 5000)])
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("past the model's context"), result.stderr)
    }

    func testMergeTakesOnlyNamesRunWouldWrite() throws {
        let shard = path("evil.sqlite")
        XCTAssertEqual(try run(["run", "reliability-crash.json5", "--db", shard, "--quiet"]).status, 0)
        for (sql, needle) in [
            ("UPDATE experiments SET name = 'x\u{1B}[31mred'", "experiment name"),
            ("UPDATE experiments SET name = '../../etc'", "experiment name"),
            ("UPDATE runs SET name = 'reliability-crash/\u{202E}x'", "run name"),
        ] {
            let copy = path("evil-\(UUID().uuidString).sqlite")
            try FileManager.default.copyItem(atPath: shard, toPath: copy)
            _ = try RunStore(path: copy).query(sql)
            let main = path("main-\(UUID().uuidString).sqlite")
            let result = try run(["merge", "--db", main, copy])
            XCTAssertEqual(result.status, 2, "\(sql): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(needle), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: main), "a main store made for nothing is not left behind")
        }
    }

    // MARK: merge

    func testMergeRefusesBadShardsAndGoesOnWithTheOthers() throws {
        let a = path("a.sqlite"), b = path("b.sqlite")
        XCTAssertEqual(try run(["run", "reliability-crash.json5", "--db", a, "--quiet"]).status, 0)
        try write(try String(contentsOf: dir.appendingPathComponent("reliability-crash.json5"), encoding: .utf8)
            .replacingOccurrences(of: #"name: "reliability-crash""#, with: #"name: "other""#).replacingOccurrences(of: "steps: 40", with: "steps: 2"), to: "other.json5")
        XCTAssertEqual(try run(["run", "other.json5", "--db", b, "--quiet"]).status, 0)
        // a 0-byte shard is refused before the main store is made
        _ = FileManager.default.createFile(atPath: path("empty.sqlite"), contents: Data())
        let empty = try run(["merge", "--db", path("m0.sqlite"), path("empty.sqlite")])
        XCTAssertEqual(empty.status, 2)
        XCTAssertTrue(empty.stderr.contains("empty"), empty.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("m0.sqlite")))
        // a shard whose response text differs is refused; the next shard is merged all the same
        let c = path("c.sqlite")
        try FileManager.default.copyItem(atPath: a, toPath: c)
        _ = try RunStore(path: c).query("UPDATE responses SET text = text || ' (edited)' WHERE category = 'chosen' AND id = (SELECT min(id) FROM responses)")
        _ = try RunStore(path: c).query("UPDATE store_info SET value = 'another' WHERE key = 'store_id'")
        let main = path("m.sqlite")
        XCTAssertEqual(try run(["merge", "--db", main, a]).status, 0)
        let merged = try run(["merge", "--db", main, c, b])
        XCTAssertEqual(merged.status, 2, merged.stderr)
        XCTAssertTrue(merged.stderr.contains("another text") && merged.stderr.contains("1 of 2 shards refused"), merged.stderr)
        XCTAssertEqual(try RunStore(path: main, readOnly: true).query("SELECT name FROM experiments ORDER BY id").map { $0[0].string }, ["reliability-crash", "other"])
        XCTAssertEqual(try RunStore(path: main, readOnly: true).query("SELECT count(*) FROM responses r JOIN probes p ON p.id = r.probe_id WHERE r.category = 'chosen' AND p.idx = 0 AND p.probe_set LIKE 'reliability-crash:%'")[0][0].int, 1)
        // a diverged copy of the main store (same store id, another file) merges as a shard; the store itself is refused
        let copy = path("copy.sqlite")
        try FileManager.default.copyItem(atPath: main, toPath: copy)
        XCTAssertEqual(try run(["merge", "--db", main, copy]).status, 0)
        let itself = try run(["merge", "--db", main, main])
        XCTAssertEqual(itself.status, 2)
        XCTAssertTrue(itself.stderr.contains("main store itself"), itself.stderr)
    }

    // MARK: hangs and crashes

    func testAFIFOModelIsRefusedWithoutBlocking() throws {
        let fifo = path("f.gguf")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let dirModel = dir.appendingPathComponent("hf")
        try FileManager.default.copyItem(atPath: hfFixture("llama-tiny"), toPath: dirModel.path)
        try FileManager.default.removeItem(at: dirModel.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(mkfifo(dirModel.appendingPathComponent("model.safetensors").path, 0o600), 0)
        for args in [["score", "--model", fifo, "--prompt", "a", "--response", "b"], ["generate", "--model", fifo, "--prompt", "a"],
                     ["bench", "--model", fifo], ["probes", "show", "tiny-probes.jsonl", "--model", fifo],
                     ["score", "--model", dirModel.path, "--prompt", "a", "--response", "b"]] {
            let (p, out, err) = try launch(args)
            let deadline = Date().addingTimeInterval(20)
            while p.isRunning, Date() < deadline { usleep(50_000) }
            if p.isRunning { p.terminate(); p.waitUntilExit(); XCTFail("\(args) blocked on the FIFO"); continue }
            let result = outcome(p, out, err)
            XCTAssertEqual(result.status, 2, "\(args): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("not a regular file") || result.stderr.contains("FIFO"), "\(args): \(result.stderr)")
        }
    }

    func testAbsurdHuggingFaceFilesAreRefusedQuickly() throws {
        func variant(_ name: String, _ edit: (inout [String: Any]) -> Void, file: String = "config.json") throws -> String {
            let target = dir.appendingPathComponent(name)
            try FileManager.default.copyItem(atPath: hfFixture("llama-tiny"), toPath: target.path)
            let url = target.appendingPathComponent(file)
            var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            edit(&object)
            try JSONSerialization.data(withJSONObject: object).write(to: url)
            return target.path
        }
        let cases: [(String, String)] = [
            (try variant("v31", { $0["vocab_size"] = 1 << 31 }), "vocab_size"),
            (try variant("v40", { $0["vocab_size"] = 1 << 40 }), "vocab_size"),
            (try variant("l31", { $0["num_hidden_layers"] = 1 << 31 }), "num_hidden_layers"),
            (try variant("v1e8", { $0["vocab_size"] = 100_000_000 }), "vocab_size"),
            (try variant("added", { t in
                var added = (t["added_tokens"] as? [[String: Any]]) ?? []
                added.append(["id": (1 << 40) - 1, "content": "<x>", "special": true])
                t["added_tokens"] = added
            }, file: "tokenizer.json"), "model.vocab"),
        ]
        for (model, needle) in cases {
            for args in [["score", "--model", model, "--prompt", "a", "--response", "b"], ["bench", "--model", model]] {
                let started = Date()
                let result = try run(args)
                XCTAssertEqual(result.status, 2, "\(args): \(result.stderr)")
                XCTAssertTrue(result.stderr.contains(needle), "\(args): \(result.stderr)")
                XCTAssertLessThan(Date().timeIntervalSince(started), 10, "\(args) took long to refuse")
            }
        }
    }

    func testASafetensorsShapeThatOverflowsOrOverlapsIsNamed() throws {
        // header: one tensor of shape [2^61] F32 (its byte size overflows), then two tensors sharing bytes
        func file(_ header: String, data: Int) -> Data {
            var d = Data()
            var n = UInt64(header.utf8.count).littleEndian
            withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
            d.append(contentsOf: Array(header.utf8))
            d.append(Data(count: data))
            return d
        }
        let target = dir.appendingPathComponent("st")
        try FileManager.default.copyItem(atPath: hfFixture("llama-tiny"), toPath: target.path)
        let weights = target.appendingPathComponent("model.safetensors")
        for (header, needle) in [
            (#"{"a":{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,8]}}"#, "too large"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, "overlap"),
        ] {
            try file(header, data: 16).write(to: weights)
            let result = try run(["score", "--model", target.path, "--prompt", "a", "--response", "b"])
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains(needle), result.stderr)
        }
    }

    // MARK: messages

    func testMessagesNameTheirPlace() throws {
        let target = dir.appendingPathComponent("hf")
        try FileManager.default.copyItem(atPath: hfFixture("llama-tiny"), toPath: target.path)
        let config = target.appendingPathComponent("config.json")
        let original = try String(contentsOf: config, encoding: .utf8)
        for (value, needle) in [("1e309", "out of range"), ("1e-400", "too small")] {
            let text = original.replacingOccurrences(of: #""rms_norm_eps": "#, with: #""unused": \#(value), "rms_norm_eps": "#)
            XCTAssertNotEqual(text, original)
            try text.write(to: config, atomically: true, encoding: .utf8)
            let result = try run(["score", "--model", target.path, "--prompt", "a", "--response", "b"])
            XCTAssertEqual(result.status, 2)
            XCTAssertTrue(result.stderr.contains("config.json") && result.stderr.contains("line ") && result.stderr.contains(needle), result.stderr)
        }
        try original.write(to: config, atomically: true, encoding: .utf8)
        // a tokenizer.json error names tokenizer.json's keys, not GGUF's
        let tokenizer = target.appendingPathComponent("tokenizer.json")
        var t = try JSONSerialization.jsonObject(with: Data(contentsOf: tokenizer)) as! [String: Any]
        var model = t["model"] as! [String: Any]
        model["merges"] = ["a"]
        t["model"] = model
        try JSONSerialization.data(withJSONObject: t).write(to: tokenizer)
        let bad = try run(["score", "--model", target.path, "--prompt", "a", "--response", "b"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("model.merges") && !bad.stderr.contains("ggml"), bad.stderr)
        // a symbolic link loop is called one
        symlink(path("loop-b.gguf"), path("loop-a.gguf"))
        symlink(path("loop-a.gguf"), path("loop-b.gguf"))
        try write(Self.ggufSpec("loop-a.gguf"), to: "loop.json5")
        let loop = try run(["plan", "loop.json5"])
        XCTAssertEqual(loop.status, 2)
        XCTAssertTrue(loop.stderr.contains("loop of symbolic links"), loop.stderr)
        // a category's missing key and a bad max_tokens say so once
        try write(Self.spec(replacing: [(#"categories: { chosen: "chosen", rejected: "rejected" }"#, #"categories: { chosen: "chosen", g: { greedy: { max_tokens: 0 } } }"#)]), to: "g.json5")
        let greedy = try run(["plan", "g.json5", "--no-check"])
        XCTAssertEqual(greedy.stderr.components(separatedBy: "found").count, 2, greedy.stderr)
        try write(Self.spec(replacing: [(#"categories: { chosen: "chosen", rejected: "rejected" }"#, #"categories: { chosen: "chosen", g: { generate: { command: ["x"] } } }"#)]), to: "t.json5")
        let template = try run(["plan", "t.json5", "--no-check"])
        XCTAssertTrue(template.stderr.contains("generate.template: expected a value for the required key \"template\""), template.stderr)
    }

    /// A reward model trained from a Hugging Face directory: both formats refuse it with the same one line.
    func testAnHFRewardModelsExportSaysNeitherFormatHoldsIt() throws {
        try write("""
            { name: "hfrm", model: { hf: "\(hfFixture("llama-tiny"))" }, template: "hh", objective: { kind: "reward" },
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: 1, batch_size: 2, lr: 1e-4, max_length: 64 }, eval: { every: 1 } }
            """, to: "hfrm.json5")
        let db = path("hfrm.sqlite")
        let trained = try run(["run", "hfrm.json5", "--db", db, "--quiet"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        var messages: [String] = []
        for format in ["gguf", "hf"] {
            let result = try run(["export", "--db", db, "--run", "1", "--format", format, "--out", path("rm-\(format)")])
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains("neither format holds"), result.stderr)
            messages.append(result.stderr)
        }
        XCTAssertEqual(messages[0], messages[1])
    }

    /// status on a read-only medium whose store still holds rows in its write-ahead log names the log instead of
    /// showing an older store ("no runs").
    func testAWriteAheadLogThatCannotBeReadIsNamed() throws {
        let results = dir.appendingPathComponent("wal-results")
        let db = results.appendingPathComponent("runs.sqlite").path
        XCTAssertEqual(try run(["run", "reliability-crash.json5", "--db", db, "--quiet", "--checkpoints", path("wal-ckpt")]).status, 0)
        let mount = dir.appendingPathComponent("wal-mount")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        guard Process.shell("mount -t tmpfs -o size=64m tmpfs '\(mount.path)'") == 0 else {
            throw XCTSkip("cannot mount a file system here (needs root and mount rights)")
        }
        defer { _ = Process.shell("umount '\(mount.path)'") }
        // a writer still holds the store: its new row is in the -wal file only when both are copied
        let copy = """
            ( printf 'PRAGMA wal_autocheckpoint=0;\\nUPDATE runs SET error = %s;\\n' "'late'"; sleep 2 ) | sqlite3 '\(db)' & \
            sleep 1; cp '\(db)' '\(db)-wal' '\(mount.path)/'; wait
            """
        XCTAssertEqual(Process.shell(copy), 0)
        XCTAssertEqual(Process.shell("mount -o remount,ro '\(mount.path)'"), 0)
        let wal = mount.appendingPathComponent("runs.sqlite-wal").path
        let size = (try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
        guard size > 0 else { throw XCTSkip("the copy caught no write-ahead log (the writer finished first)") }
        let status = try run(["status", "--db", mount.appendingPathComponent("runs.sqlite").path])
        XCTAssertEqual(status.status, 2, status.stdout + status.stderr)
        XCTAssertTrue(status.stderr.contains("write-ahead log") && status.stderr.contains("runs.sqlite-wal"), status.stderr)
    }
}
