import Base
import Foundation
import RunStore
import XCTest

/// Issue 15: the failure modes an adversarial pass found, each reproduced against the real executable
/// (helpers and fixtures of `ReliabilityTests`). The bad-input cases are rows of
/// `ReliabilityTests.issue15Cases`; these are the ones that need a sequence of commands, signals or
/// another process. They extend `ReliabilityTests` for its helpers and fixtures.
extension ReliabilityTests {
    /// A tiny-preset spec long enough to be stopped part-way: `steps` steps, checkpoints every 5.
    func longSpec(name: String, steps: Int = 3000, seeds: [Int] = [1]) throws -> String {
        let file = "\(name).json5"
        try write(Self.spec(extra: "checkpoint: { every: 5 }, " + (seeds.count > 1 ? "sweep: { seed: \(seeds) }," : "seed: \(seeds[0]),"),
                            replacing: [(#"name: "bad""#, "name: \"\(name)\""), ("steps: 2,", "steps: \(steps),"),
                                        ("lr: 1e-3", "lr: 1e-4"), ("eval: { every: 2 }", "eval: { every: 1000 }")]), to: file)
        return file
    }

    /// SIGINT to a launched process; it must end within `seconds` (else the test fails and it is killed).
    func interrupt(_ p: Process, _ out: URL, _ err: URL, within seconds: TimeInterval, _ message: String,
                   file: StaticString = #filePath, line: UInt = #line) -> Outcome {
        kill(p.processIdentifier, SIGINT)
        XCTAssertTrue(waitFor(seconds) { !p.isRunning }, message, file: file, line: line)
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return outcome(p, out, err)
    }

    func waitFor(_ timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    /// Live (not zombie) processes whose command line contains `text`.
    static func processes(mentioning text: String) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { name in
            guard let pid = pid_t(name), pid != getpid(), isAlive(pid),
                  let cmd = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
            return String(decoding: cmd.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).contains(text) ? pid : nil
        }
    }

    static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
    }

    func runningRuns(_ db: String) -> Int {
        (try? RunStore(path: db, readOnly: true).query("SELECT count(*) FROM runs WHERE status = 'running' AND last_step >= 5"))?.first?.first?.int ?? 0
    }

    // MARK: - 1. A checkpoint resumes only into the store that holds its rows

    func testACheckpointResumesOnlyIntoTheStoreThatHoldsItsRows() throws {
        let spec = "reliability-sweep.json5"
        let db = path("results/runs.sqlite")
        let first = try run(["run", spec, "--db", db, "--quiet"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let reference = try snapshot(db)
        XCTAssertEqual(reference["logprobs"]?.count, 6 * 4 * 16)

        // A kill mid-write leaves a temporary checkpoint file; the next start removes it.
        let runFolder = dir.appendingPathComponent("results/reliability-sweep/lr=0.001,seed=1")
        let leftover = runFolder.appendingPathComponent(".checkpoint.bin.tmp-99999")
        XCTAssertTrue(FileManager.default.fileExists(atPath: runFolder.appendingPathComponent("checkpoint.bin").path))
        try Data("half".utf8).write(to: leftover)

        // The user deletes the store to start over: every run trains again, nothing is "resumed".
        for suffix in ["", "-wal", "-shm"] { unlink(db + suffix) }
        let again = try run(["run", spec, "--db", db])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("not resuming: its checkpoint at step 6 was written for another run store"), again.stderr)
        XCTAssertFalse(again.stderr.contains("resuming at step"), again.stderr)
        XCTAssertEqual(try snapshot(db), reference)
        XCTAssertFalse(FileManager.default.fileExists(atPath: leftover.path), "the leftover temporary checkpoint was not removed")

        // The store lost some of a run's rows (its WAL deleted, say) while the checkpoint survived.
        let store = try RunStore(path: db)
        let id = try XCTUnwrap(store.run(name: "reliability-sweep/lr=0.001,seed=1")?.id)
        try store.query("UPDATE runs SET status = 'interrupted' WHERE id = ?", [.integer(id)])
        try store.query("DELETE FROM logprobs WHERE run_id = ? AND step = 2", [.integer(id)])
        let repaired = try run(["run", spec, "--db", db])
        XCTAssertEqual(repaired.status, 0, repaired.stderr)
        XCTAssertTrue(repaired.stderr.contains("the store lacks rows its checkpoint at step 6 counts on (evaluation at step 2 holds 0 of 16 log-probabilities)"),
                      repaired.stderr)
        XCTAssertEqual(try snapshot(db), reference)
        // Another store beside it (sharing the checkpoint folder): the same; the checkpoints it finds are
        // the first store's, so every run starts over.
        let other = path("results/other.sqlite")
        let beside = try run(["run", spec, "--db", other, "--quiet"])
        XCTAssertEqual(beside.status, 0, beside.stderr)
        XCTAssertEqual(try snapshot(other), reference)

        XCTAssertEqual(try integrity(db), "ok")
    }

    // MARK: - 8. Resume after the inputs changed

    func testAResumeIsRefusedWhenItsFilesChanged() throws {
        let spec = try longSpec(name: "inputs", steps: 600)
        let db = path("inputs.sqlite")
        let (p, out, err) = try launch(["run", spec, "--db", db])
        XCTAssertTrue(waitFor(30) { runningRuns(db) > 0 }, "the run did not start")
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let stopped = outcome(p, out, err)
        XCTAssertEqual(stopped.status, 1, stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("interrupted: inputs at step "), stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("run the same command again to resume"), stopped.stderr)
        let store = try RunStore(path: db)
        let before = try store.query("SELECT status, last_step FROM runs")
        XCTAssertEqual(before.first?.first?.string, "interrupted")
        let inputs = try store.query("SELECT input, sha256 FROM run_inputs ORDER BY input")
        XCTAssertEqual(inputs.map { $0[0].string }, ["probes", "train"])

        // The training file is edited: the run must not continue on the new data.
        let train = dir.appendingPathComponent("tiny-train.jsonl")
        var lines = try String(contentsOf: train, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[0] = lines[0].replacingOccurrences(of: "\"chosen\": \"", with: "\"chosen\": \"Edited. ")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: train)
        let refused = try run(["run", spec, "--db", db])
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("tiny-train.jsonl: the train file changed since run inputs started"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("delete \(dir.appendingPathComponent("inputs/run/checkpoint.bin").path)"), refused.stderr)
        XCTAssertEqual(try store.query("SELECT status, last_step FROM runs"), before)

        // Starting over as the message says gives what an uninterrupted run on the new file gives.
        unlink(dir.appendingPathComponent("inputs/run/checkpoint.bin").path)
        let restarted = try run(["run", spec, "--db", db, "--quiet"])
        XCTAssertEqual(restarted.status, 0, restarted.stderr)
        let clean = try run(["run", spec, "--db", path("clean.sqlite"), "--checkpoints", path("ck-clean"), "--quiet"])
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertEqual(try snapshot(db), try snapshot(path("clean.sqlite")))
        XCTAssertNotEqual(try store.query("SELECT sha256 FROM run_inputs WHERE input = 'train'").first?.first?.string,
                          inputs.last?[1].string)
    }

    // MARK: - 3. Generators that never answer, and files that are not files

    func generatorSpec(timeout: Double) throws -> (spec: String, pidFile: String) {
        let pidFile = path("generator.pid")
        let generator = #"variant: { generate: { command: ["/bin/sh", "-c", "echo $$ > \#(pidFile); exec sleep 600"], template: "{text}", field: "chosen", timeout: \#(timeout) } }"#
        try write(Self.spec(replacing: [(#"name: "bad""#, #"name: "gen""#),
                                        (#"categories: { chosen: "chosen", rejected: "rejected" }"#, #"categories: { chosen: "chosen", "# + generator + " }")]),
                  to: "gen.json5")
        return ("gen.json5", pidFile)
    }

    func generatorPID(_ file: String) -> pid_t? {
        (try? String(contentsOfFile: file, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    func testAGeneratorIsStoppedByItsTimeoutBySignalsAndWithItsParent() throws {
        let tmp = dir.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        let env = ["TMPDIR": tmp.path]

        // Its timeout: refused with one line saying so before the store is written (issue 33), the command is gone.
        var (spec, pidFile) = try generatorSpec(timeout: 1)
        let started = Date()
        let timedOut = try run(["run", spec, "--db", path("t1.sqlite"), "--quiet"], environment: env)
        XCTAssertEqual(timedOut.status, 2, timedOut.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("t1.sqlite")))
        XCTAssertLessThan(Date().timeIntervalSince(started), 30)
        XCTAssertTrue(timedOut.stderr.contains("no answer within its timeout of 1 s"), timedOut.stderr)
        let first = try XCTUnwrap(generatorPID(pidFile))
        XCTAssertTrue(waitFor(5) { !Self.isAlive(first) }, "the generator outlived its timeout")

        // SIGINT while it runs (before the store is written): the command stops, saying so, the generator with it.
        unlink(pidFile)
        (spec, pidFile) = try generatorSpec(timeout: 600)
        var (p, out, err) = try launch(["run", spec, "--db", path("t2.sqlite")], environment: env)
        XCTAssertTrue(waitFor(30) { generatorPID(pidFile) != nil }, "the generator did not start")
        let second = generatorPID(pidFile)!
        let interrupted = interrupt(p, out, err, within: 10, "run did not stop on SIGINT while its generator ran")
        XCTAssertEqual(interrupted.status, 1, interrupted.stderr)
        XCTAssertTrue(interrupted.stderr.contains("interrupted"), interrupted.stderr)
        XCTAssertTrue(waitFor(5) { !Self.isAlive(second) }, "the generator outlived the interrupted run")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("t2.sqlite")), "nothing is recorded before the probe texts exist")

        // SIGKILL to AlignScope: the command dies with it, and no temporary file or folder stays.
        unlink(pidFile)
        (p, out, err) = try launch(["run", spec, "--db", path("t3.sqlite")], environment: env)
        XCTAssertTrue(waitFor(30) { generatorPID(pidFile) != nil }, "the generator did not start")
        let third = generatorPID(pidFile)!
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(waitFor(5) { !Self.isAlive(third) }, "the generator outlived a SIGKILLed run")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), [])
    }

    func testFIFOsAreRefusedBeforeTheyAreOpened() throws {
        for (name, spec) in [("model.gguf", ReliabilityTests.ggufSpec("model.gguf")), ("train.jsonl", ReliabilityTests.spec(train: "train.jsonl"))] {
            let fifo = path(name)
            XCTAssertEqual(mkfifo(fifo, 0o600), 0)
            try write(spec, to: "fifo.json5")
            let (p, out, err) = try launch(["run", "fifo.json5", "--db", path("fifo.sqlite"), "--quiet"])
            let ended = waitFor(20) { !p.isRunning }
            if !ended { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            XCTAssertTrue(ended, "\(name): run blocked on a FIFO")
            let result = outcome(p, out, err)
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains(name) && result.stderr.contains("not a regular file"), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("fifo.sqlite")))
            unlink(fifo)
        }
    }

    // MARK: - 6. Signals and --jobs

    func testWorkersStopWithTheirParent() throws {
        let spec = try longSpec(name: "jobs", seeds: [1, 2])
        // SIGINT to the parent reaches the workers: both runs stop after their step, exit 1, nothing left.
        let db = path("jobs.sqlite")
        var (p, out, err) = try launch(["run", spec, "--db", db, "--jobs", "2"])
        XCTAssertTrue(waitFor(60) { runningRuns(db) == 2 }, "both runs did not start")
        let stopped = interrupt(p, out, err, within: 20, "the parent did not stop on SIGINT")
        XCTAssertEqual(stopped.status, 1, stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("run the same command again to resume"), stopped.stderr)
        XCTAssertEqual(Self.processes(mentioning: db), [])
        XCTAssertEqual(try RunStore(path: db).query("SELECT DISTINCT status FROM runs"), [[.text("interrupted")]])

        // SIGKILL to the parent: the workers stop too (they die with it), no orphan trains on.
        let db2 = path("jobs2.sqlite")
        (p, out, err) = try launch(["run", spec, "--db", db2, "--jobs", "2"])
        XCTAssertTrue(waitFor(60) { runningRuns(db2) == 2 }, "both runs did not start")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(waitFor(20) { Self.processes(mentioning: db2).isEmpty }, "workers outlived their parent: \(Self.processes(mentioning: db2))")
        XCTAssertEqual(try RunStore(path: db2).query("SELECT DISTINCT status FROM runs"), [[.text("interrupted")]])

        // A worker killed by a signal: the parent's exit code is 1 (not the signal's number).
        let db3 = path("jobs3.sqlite")
        let short = try longSpec(name: "jobs3", steps: 400, seeds: [1, 2])
        // Every option of `run` reaches the workers (they are given the parent's verb back as argv).
        (p, out, err) = try launch(["run", short, "--db", db3, "--jobs", "2", "--quiet", "--checkpoints", path("ck-jobs3")])
        XCTAssertTrue(waitFor(60) { runningRuns(db3) == 2 }, "both runs did not start")
        let workers = Self.processes(mentioning: db3).filter { $0 != p.processIdentifier }
        XCTAssertEqual(workers.count, 2)
        kill(workers[0], SIGKILL)
        XCTAssertTrue(waitFor(120) { !p.isRunning })
        p.waitUntilExit()
        XCTAssertEqual(outcome(p, out, err).status, 1)
        let checkpoints = try FileManager.default.subpathsOfDirectory(atPath: path("ck-jobs3")).filter { $0.hasSuffix("checkpoint.bin") }
        XCTAssertFalse(checkpoints.isEmpty, "the workers did not write their checkpoints under --checkpoints")
    }

    // MARK: - 7. Read-only and foreign stores

    func testReadingVerbsNeverChangeAStore() throws {
        // Another application's database: refused by every verb, left byte for byte as it was.
        let foreign = path("other-app.sqlite")
        var db: Database? = try Database(path: foreign, journalModeWAL: false)
        try db!.execute("CREATE TABLE notes (body TEXT)")
        try db!.execute("INSERT INTO notes VALUES ('keep me')")
        db = nil
        let before = try Data(contentsOf: URL(fileURLWithPath: foreign))
        func files() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix("out-") && !$0.hasPrefix("err-") }.sorted()
        }
        let filesBefore = try files()
        for args in [["status", "--db", foreign], ["report", "--db", foreign, "--out", path("rep")],
                     ["export", "--db", foreign, "--run", "1", "--out", path("x.gguf")],
                     ["run", "reliability-crash.json5", "--db", foreign, "--quiet"]] {
            let result = try run(args)
            XCTAssertEqual(result.status, 2, "\(args[0]): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("not an AlignScope run store"), "\(args[0]): \(result.stderr)")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: foreign)), before, "\(args[0]) changed the database")
        }
        XCTAssertEqual(try files(), filesBefore)
    }

    func testAStoreOnAReadOnlyFileSystemCanBeInspected() throws {
        try TinyGGUF.write(to: path("model.gguf"))
        try write(ReliabilityTests.ggufRunSpec(name: "ro", model: "model.gguf", train: "tiny-train.jsonl", steps: 2, checkpointEvery: 2), to: "ro.json5")
        let results = dir.appendingPathComponent("ro-results")
        let made = try run(["run", "ro.json5", "--db", results.appendingPathComponent("runs.sqlite").path, "--quiet"])
        XCTAssertEqual(made.status, 0, made.stderr)
        let mount = dir.appendingPathComponent("ro-mount")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        guard Process.shell("mount -t tmpfs -o size=64m tmpfs '\(mount.path)'") == 0 else {
            throw XCTSkip("cannot mount a file system here (needs root and mount rights)")
        }
        defer { _ = Process.shell("umount '\(mount.path)'") }
        XCTAssertEqual(Process.shell("cp -a '\(results.path)/.' '\(mount.path)/' && mount -o remount,ro '\(mount.path)'"), 0)
        let db = mount.appendingPathComponent("runs.sqlite").path
        XCTAssertNotEqual(access(mount.path, W_OK), 0, "the mount is writable")

        let status = try run(["status", "--db", db])
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.contains("ro  ") && status.stdout.contains("finished"), status.stdout)
        let report = try run(["report", "--db", db, "--out", path("report")])
        XCTAssertEqual(report.status, 0, report.stderr)
        let export = try run(["export", "--db", db, "--run", "ro", "--out", path("ro.gguf")])
        XCTAssertEqual(export.status, 0, export.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("ro.gguf")))
    }

    // MARK: - 9. Command-line values

    func testCommandLineValuesAreCheckedWhereTheyAreRead() throws {
        try TinyGGUF.write(to: path("model.gguf"))
        let model = path("model.gguf")
        let cases: [([String], [String])] = [
            (["generate", "--model", model, "--prompt", "Hi", "--seed", "-1"], ["--seed", ">= 0"]),
            (["generate", "--model", model, "--prompt", "Hi", "--max-tokens", "1000000000000"], ["--max-tokens"]),
            (["generate", "--model", model, "--prompt", "Hi", "--max-tokens", "1000"], ["--max-tokens", "context of 256 tokens"]),
            (["probes", "build", "tiny-probes.jsonl", "--out", path("built.jsonl"), "--seed", "-1"], ["--seed"]),
            (["plan", "reliability-crash.json5", "--json=false"], ["--json", "takes no value"]),
            (["status", "--db", path("none.sqlite"), "--json=0"], ["--json", "takes no value"]),
        ]
        for (args, needles) in cases {
            let result = try run(args)
            XCTAssertEqual(result.status, 2, "\(args): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(args): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(args)")
            for n in needles { XCTAssertTrue(result.stderr.contains(n), "\(args): \(result.stderr) lacks \(n)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("built.jsonl")))
    }

    func testScoreRefusesToPrintNaN() throws {
        try TinyGGUF.write(to: path("poisoned.gguf"), infiniteRowOf: "~")
        let result = try run(["score", "--model", path("poisoned.gguf"), "--prompt", "Hi", "--response", "a~b", "--json"])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(result.stdout, "")
        XCTAssertTrue(result.stderr.contains("poisoned.gguf: the model gives a NaN log-probability"), result.stderr)
        let clean = try run(["score", "--model", path("poisoned.gguf"), "--prompt", "Hi", "--response", "ab", "--json"])
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertTrue(clean.stdout.contains("\"logprob\":-"), clean.stdout)
    }

    func testScoreInputReadsCRLFFiles() throws {
        try TinyGGUF.write(to: path("model.gguf"))
        let lines = [#"{"prompt": "Hi there", "response": "Hello you"}"#, #"{"prompt": "Why?", "response": "Because."}"#]
        try Data(lines.joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("lf.jsonl"))
        try Data((lines.joined(separator: "\r\n") + "\r\n").utf8).write(to: dir.appendingPathComponent("crlf.jsonl"))
        try Data(lines.joined(separator: "\r").utf8).write(to: dir.appendingPathComponent("cr.jsonl"))
        let lf = try run(["score", "--model", path("model.gguf"), "--input", path("lf.jsonl")])
        XCTAssertEqual(lf.status, 0, lf.stderr)
        XCTAssertEqual(lf.stdout.split(separator: "\n").count, 2)
        for name in ["crlf.jsonl", "cr.jsonl"] {
            let other = try run(["score", "--model", path("model.gguf"), "--input", path(name)])
            XCTAssertEqual(other.status, 0, "\(name): \(other.stderr)")
            XCTAssertEqual(other.stdout, lf.stdout, name)
        }
    }

    /// A misspelled category source is refused by `plan` as by `run`: exit 2, the key path and the allowed values.
    func testPlanRefusesWhatRunRefuses() throws {
        let text = try String(contentsOf: dir.appendingPathComponent("reliability-crash.json5"), encoding: .utf8)
        try write(text.replacingOccurrences(of: #"derive: "other_prompt""#, with: #"derive: "othr_prompt""#), to: "typo.json5")
        let expected = "data.probes.categories.random.derive: expected \"other_prompt\", \"shuffled_words\" or \"random_tokens\", found \"othr_prompt\""
        for verb in ["plan", "run"] {
            let result = try run([verb, "typo.json5", "--db", path("typo.sqlite")].filter { verb == "run" || !$0.hasPrefix("--db") && !$0.hasSuffix("typo.sqlite") })
            XCTAssertEqual(result.status, 2, "\(verb): \(result.stderr)")
            XCTAssertEqual(result.stderr, "error: typo.json5: \(expected)\n", verb)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("typo.sqlite")))
    }

    /// Issue 17: `probes show` prints the form and exactly what is scored, whitespace visible.
    func testProbesShowPrintsExactlyWhatIsScored() throws {
        let line = #"{"prompt": "\n\nHuman: Hi\n\nAssistant:", "chosen": " Hello there.", "rejected": " Go."}"#
        try write(line + "\n", to: "hh.jsonl")
        let shown = try run(["probes", "show", "hh.jsonl", "--template", "hh"])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertEqual(shown.stdout, #"""
            line 1 (explicit-prompt HH), template hh
              prompt    "\n\nHuman: Hi\n\nAssistant:"
                        the prompt (explicit-prompt HH)
              chosen    " Hello there."
                        response; its leading " " removed (put back when it is scored)
              rejected  " Go."
                        response; its leading " " removed (put back when it is scored)

            """#)
        let json = try run(["probes", "show", "hh.jsonl", "--template", "raw", "--json", "--line", "1"])
        XCTAssertEqual(json.stdout, #"{"fields":{"chosen":"response; its leading \" \" removed (put back when it is scored)","prompt":"the prompt (explicit-prompt HH)","rejected":"response; its leading \" \" removed (put back when it is scored)"},"form":"explicit-prompt HH","line":1,"prompt":"\n\nHuman: Hi\n\nAssistant:","responses":{"chosen":" Hello there.","rejected":" Go."},"template":"raw"}"# + "\n")
        let missing = try run(["probes", "show", "hh.jsonl", "--line", "3"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("hh.jsonl:3: no data on this line"), missing.stderr)
    }

    /// A bad spec run against a store that already holds the experiment changes nothing in it, not
    /// even the experiment's stored spec.
    func testABadSpecLeavesAnExistingStoreAsItWas() throws {
        let db = path("kept.sqlite")
        let good = try run(["run", "reliability-crash.json5", "--db", db, "--quiet"])
        XCTAssertEqual(good.status, 0, good.stderr)
        let before = try snapshot(db)
        let spec = try RunStore(path: db).query("SELECT spec, spec_sha256 FROM experiments")
        let text = try String(contentsOf: dir.appendingPathComponent("reliability-crash.json5"), encoding: .utf8)
        try write(text.replacingOccurrences(of: "warmup: 1,", with: "warmup: 1, beta2: 1,"), to: "reliability-crash.json5")
        let bad = try run(["run", "reliability-crash.json5", "--db", db, "--quiet"])
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertEqual(try RunStore(path: db).query("SELECT spec, spec_sha256 FROM experiments"), spec)
        XCTAssertEqual(try snapshot(db), before)
    }
}

extension Process {
    /// Runs a command line with /bin/sh; returns its exit status.
    static func shell(_ command: String) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command + " 2>/dev/null"]
        do { try p.run() } catch { return 127 }
        p.waitUntilExit()
        return p.terminationStatus
    }
}

// MARK: - alignscope label killed part-way

extension ReliabilityTests {
    /// SIGKILL to `alignscope label` after its first pass is on disk: running the same command again completes
    /// the file, with no prompt twice and the bytes an uninterrupted run writes.
    func testAKilledLabelCommandResumesWithoutDuplicates() throws {
        let model = hfFixture("qwen2-tiny.gguf")
        let prompts = (0..<24).map { #"{"prompt": "Question number \#($0)?", "chosen": "Yes.", "rejected": "No."}"# }
        try (prompts.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("prompts.jsonl"), atomically: false, encoding: .utf8)
        func args(_ out: String) -> [String] {
            ["label", "--data", "prompts.jsonl", "--policy", model, "--judge", model, "--out", out, "--samples", "2", "--max-tokens", "8", "--seed", "3"]
        }
        let whole = try run(args("whole.jsonl"))
        XCTAssertEqual(whole.status, 0, whole.stderr)
        let expected = try String(contentsOfFile: path("whole.jsonl"), encoding: .utf8)
        let (p, _, _) = try launch(args("part.jsonl"))
        let started = waitFor(60) { ((try? String(contentsOfFile: self.path("part.jsonl"), encoding: .utf8)) ?? "").contains("\n") }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(started, "no line was written")
        let partial = try String(contentsOfFile: path("part.jsonl"), encoding: .utf8)
        let again = try run(args("part.jsonl"))
        XCTAssertEqual(again.status, 0, again.stderr)
        let full = try String(contentsOfFile: path("part.jsonl"), encoding: .utf8)
        XCTAssertEqual(full, expected)
        XCTAssertLessThan(partial.count, full.count, "the kill came before the end")
        let lines = full.split(separator: "\n").compactMap { line -> Int? in
            guard case .object(let o)? = try? JSONValue.parseLine(line), case .number(let n)? = o["label_line"] else { return nil }
            return Int(n)
        }
        XCTAssertEqual(lines.count, Set(lines).count)
    }
}
