import Base
import Foundation
import GGUF
import Model
import RunStore
import Training
import XCTest

@testable import Experiments

/// Reliability of the real `alignscope` executable (issue 9): SIGKILL and resume, concurrent
/// processes on one store, bad input (exit code 2, one line on stderr, nothing written), a loss
/// that becomes non-finite, and a database that runs out of room.
///
/// The executable is the release build next to the test bundle (`make test` builds it with
/// `--build-tests`); set ALIGNSCOPE_BIN to use another one. Without it the tests skip.
final class ReliabilityTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("alignscope-rel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["tiny-train.jsonl", "tiny-probes.jsonl", "reliability-crash.json5", "reliability-sweep.json5"] {
            let src = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!
            try FileManager.default.copyItem(at: src, to: dir.appendingPathComponent(name))
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    // MARK: - Helpers

    static func binary() throws -> URL {
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["ALIGNSCOPE_BIN"] { candidates.append(URL(fileURLWithPath: env)) }
        // The test bundle lives in the build directory next to the executable.
        candidates.append(Bundle(for: ReliabilityTests.self).bundleURL.deletingLastPathComponent().appendingPathComponent("alignscope"))
        candidates.append(Bundle.main.bundleURL.appendingPathComponent("alignscope"))
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/release/alignscope"))
        for url in candidates where FileManager.default.isExecutableFile(atPath: url.path) { return url }
        throw XCTSkip("alignscope executable not found (looked at \(candidates.map(\.path))); build with `swift build -c release`")
    }

    struct Outcome { var status: Int32; var stdout: String; var stderr: String }

    /// Starts the executable with stdout/stderr going to files (no pipe can fill up and block it).
    /// With `fileSizeLimitKiB`, it runs under `ulimit -f` with SIGXFSZ ignored: no file it writes may
    /// grow past the limit (a write there fails with EFBIG), which is how a full disk looks to it.
    func launch(_ arguments: [String], tag: String = UUID().uuidString, fileSizeLimitKiB: Int? = nil,
                environment: [String: String] = [:]) throws -> (Process, URL, URL) {
        let out = dir.appendingPathComponent("out-\(tag).txt"), err = dir.appendingPathComponent("err-\(tag).txt")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let p = Process()
        if let limit = fileSizeLimitKiB {
            // bash counts `ulimit -f` in KiB (POSIX sh in 512-byte blocks).
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = ["-c", "trap '' XFSZ; ulimit -f \(limit) && exec \"$0\" \"$@\"", try Self.binary().path] + arguments
        } else {
            p.executableURL = try Self.binary()
            p.arguments = arguments
        }
        p.currentDirectoryURL = dir
        p.environment = ProcessInfo.processInfo.environment.merging(["ALIGNSCOPE_PLAIN_PROGRESS": "1"].merging(environment) { $1 }) { $1 }
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        return (p, out, err)
    }

    func run(_ arguments: [String], fileSizeLimitKiB: Int? = nil, environment: [String: String] = [:]) throws -> Outcome {
        let (p, out, err) = try launch(arguments, fileSizeLimitKiB: fileSizeLimitKiB, environment: environment)
        p.waitUntilExit()
        return outcome(p, out, err)
    }

    func outcome(_ p: Process, _ out: URL, _ err: URL) -> Outcome {
        Outcome(status: p.terminationStatus,
                stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Every recorded row that must not depend on interruptions, keyed by names (not row ids, which
    /// differ between stores). Timing metrics (`elapsed`, `tokens_per_s`, an online step's `step_time` and
    /// `time/...`) are excluded.
    func snapshot(_ db: String) throws -> [String: [[SQLiteValue]]] {
        let store = try RunStore(path: db, readOnly: true)
        return [
            "runs": try store.query("SELECT name, config_sha256, seed, status, error, last_step FROM runs ORDER BY name"),
            "logprobs": try store.query("""
                SELECT r.name, l.step, p.probe_set, p.idx, s.category, s.text, l.logprob, l.n_tokens
                FROM logprobs l JOIN runs r ON r.id = l.run_id JOIN responses s ON s.id = l.response_id
                JOIN probes p ON p.id = s.probe_id ORDER BY 1, 2, 3, 4, 5, 6
                """),
            "train_metrics": try store.query("""
                SELECT r.name, m.step, m.name, m.value FROM train_metrics m JOIN runs r ON r.id = m.run_id
                WHERE m.name NOT IN ('elapsed', 'tokens_per_s', 'step_time') AND m.name NOT LIKE 'time/%' ORDER BY 1, 2, 3
                """),
            "samples": try store.query("""
                SELECT r.name, s.step, s.data_line, s.sample, s.prompt, s.text, s.reward, s.kl, s.advantage, s.n_tokens, s.eos
                FROM samples s JOIN runs r ON r.id = s.run_id ORDER BY 1, 2, 3, 4
                """),
        ]
    }

    /// Launches `arguments` again and again, each time SIGKILLing the process after a seeded random delay in
    /// `delays` unless it ended first, until `kills` kills landed or `attempts` launches were made. Returns the kills
    /// and, per launch, the delay and the run's status and last step after it.
    func killRepeatedly(_ arguments: [String], db: String, delays: ClosedRange<Double>, seed: UInt64, kills wanted: Int,
                        attempts limit: Int) throws -> (kills: Int, killedAt: [String]) {
        var rng = SplitMix64(seed: seed)
        var kills = 0, attempts = 0
        var killedAt: [String] = []
        while kills < wanted && attempts < limit {
            attempts += 1
            let (p, _, _) = try launch(arguments, tag: "kill\(attempts)")
            let delay = Double.random(in: delays, using: &rng)
            usleep(UInt32(delay * 1e6))
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                kills += 1
            }
            p.waitUntilExit()
            let step = (try? RunStore(path: db).query("SELECT status, last_step FROM runs"))?.first
            killedAt.append("\(String(format: "%.2f", delay))s:\(step?[0].string ?? "-")@\(step?[1].int.map { String($0) } ?? "-")")
        }
        return (kills, killedAt)
    }

    /// The store at `db` holds, in `tables`, the rows of the uninterrupted run's snapshot `reference`, and is intact.
    func assertSameRows(_ db: String, as reference: [String: [[SQLiteValue]]], tables: [String], after killedAt: [String],
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let got = try snapshot(db)
        for table in tables {
            XCTAssertEqual(got[table]?.count, reference[table]?.count, "\(table) row count after kills \(killedAt)", file: file, line: line)
            XCTAssertEqual(got[table], reference[table], "\(table) differs from the uninterrupted run after kills \(killedAt)", file: file, line: line)
        }
        XCTAssertEqual(try integrity(db), "ok", file: file, line: line)
    }

    func integrity(_ db: String) throws -> String {
        try RunStore(path: db, readOnly: true).query("PRAGMA integrity_check")[0][0].string ?? "?"
    }

    func waitForRunning(_ db: String, timeout: TimeInterval = 20) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: db),
               let rows = try? RunStore(path: db).query("SELECT count(*) FROM runs WHERE status = 'running'"),
               (rows.first?.first?.int ?? 0) > 0 { return true }
            usleep(20_000)
        }
        return false
    }

    // MARK: - Crash and resume

    func testSIGKILLedRunResumesToTheRowsOfAnUninterruptedRun() throws {
        let spec = "reliability-crash.json5"
        let started = Date()
        let ref = try run(["run", spec, "--db", path("ref.sqlite"), "--checkpoints", path("ck-ref"), "--quiet"])
        XCTAssertEqual(ref.status, 0, ref.stderr)
        let duration = Date().timeIntervalSince(started)
        let reference = try snapshot(path("ref.sqlite"))
        XCTAssertEqual(reference["runs"]?.count, 1)
        XCTAssertEqual(reference["logprobs"]?.count, 21 * 16)  // steps 0, 2, ..., 40 x 16 responses

        let db = path("crash.sqlite")
        let crashArgs = ["run", spec, "--db", db, "--checkpoints", path("ck-crash"), "--quiet"]

        // A run held by a live process is left alone: a second process skips it and exits.
        let (holder, _, _) = try launch(crashArgs, tag: "holder")
        XCTAssertTrue(try waitForRunning(db), "the first process never marked its run running")
        let second = try run(crashArgs.filter { $0 != "--quiet" })  // not quiet: it prints its summary
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("0 finished"), "second process trained a run held by a live process: \(second.stdout)")
        XCTAssertTrue(holder.isRunning, "the run finished too fast for the lease check; make the spec slower")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        // Kill at seeded random delays; each restart resumes from the last checkpoint. The delays are
        // short against the whole run so that kills spread over the training, evaluation and checkpoint phases.
        let (landed, killedAt) = try killRepeatedly(crashArgs, db: db, delays: (duration * 0.03)...(duration * 0.2), seed: 9, kills: 11, attempts: 60)
        let kills = landed + 1
        XCTAssertGreaterThanOrEqual(kills, 10, "only \(kills) kills landed: \(killedAt)")
        let last = try run(crashArgs)
        XCTAssertEqual(last.status, 0, last.stderr)
        try assertSameRows(db, as: reference, tables: ["runs", "logprobs", "train_metrics"], after: killedAt)
    }

    // MARK: - Concurrency

    func testJobs4WhileAnotherProcessReadsTheViews() throws {
        let db = path("jobs.sqlite")
        // The reader is the sqlite3 shell in a loop over the views (with a busy timeout, as any reader should).
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/bin/sh")
        let stop = path("stop-reader")
        let readerLog = path("reader.log")
        reader.arguments = ["-c", """
            n=0; while [ ! -e '\(stop)' ]; do
              if [ -e '\(db)' ]; then
                sqlite3 -cmd '.timeout 5000' '\(db)' 'SELECT count(*) FROM category_curves; SELECT count(*) FROM runs;' >/dev/null 2>>'\(readerLog)' || echo "reader failed" >>'\(readerLog)'
                n=$((n+1))
              fi
            done; echo "reads $n" >>'\(readerLog)'
            """]
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3") else { throw XCTSkip("sqlite3 CLI not installed") }
        // The store exists (schema created) before the reader starts: a reader that opens a file whose
        // schema is still being created sees "no such table", which is not what this test is about.
        _ = try RunStore(path: db)
        try reader.run()
        let outcome = try run(["run", "reliability-sweep.json5", "--db", db, "--jobs", "4", "--quiet"])
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        reader.waitUntilExit()
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertFalse(outcome.stderr.contains("locked"), outcome.stderr)
        let log = (try? String(contentsOfFile: readerLog, encoding: .utf8)) ?? ""
        XCTAssertFalse(log.contains("locked") || log.contains("failed") || log.contains("Error"), log)
        XCTAssertTrue(log.contains("reads "), log)
        let store = try RunStore(path: db)
        XCTAssertEqual(try store.query("SELECT count(*) FROM runs WHERE status = 'finished'")[0][0].int, 6)
        XCTAssertEqual(try store.query("SELECT count(*) FROM logprobs")[0][0].int, 6 * 4 * 16)
        XCTAssertEqual(try store.query("SELECT count(*) FROM train_metrics WHERE name = 'loss'")[0][0].int, 6 * 6)
        XCTAssertEqual(try store.query("SELECT count(*) FROM category_curves")[0][0].int, 6 * 4 * 4 * 2)
        XCTAssertEqual(try integrity(db), "ok")
    }

    /// Threads (issue 40): a run uses every core its process may use (here its affinity mask, set by `taskset`), and
    /// `--jobs N` shares them: the plan line says so, and the runs record what they record at any count.
    func testThreadsFollowTheCoresTheProcessMayUseAndJobsShareThem() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") else { throw XCTSkip("taskset not installed") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        p.arguments = ["-c", "0", try Self.binary().path, "plan", "reliability-sweep.json5", "--no-check"]
        p.currentDirectoryURL = dir
        let out = dir.appendingPathComponent("taskset.txt")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        try p.run()
        p.waitUntilExit()
        let plan = try String(contentsOf: out, encoding: .utf8)
        XCTAssertEqual(p.terminationStatus, 0, plan)
        XCTAssertTrue(plan.contains("one at a time, 1 thread: every core this process may use"), plan)

        let jobs = try run(["run", "reliability-sweep.json5", "--db", path("share.sqlite"), "--jobs", "2"], environment: ["ALIGNSCOPE_THREADS": "5"])
        XCTAssertEqual(jobs.status, 0, jobs.stderr)
        XCTAssertTrue(jobs.stderr.contains("2 at once (--jobs), 2 or 3 threads each: the 5 cores this process may use, shared"), jobs.stderr)
        let one = try run(["run", "reliability-sweep.json5", "--db", path("one.sqlite"), "--quiet"], environment: ["ALIGNSCOPE_THREADS": "1"])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertEqual(try snapshot(path("share.sqlite")), try snapshot(path("one.sqlite")))
    }

    /// The README's quickstart (issue 41) as a newcomer types it: the tiny spec runs, the report renders, the README's
    /// queries print rows; the SmolLM2 spec plans (its model is the one `make` fetches).
    func testTheReadmeQuickstartRuns() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let spec = root.appendingPathComponent("experiments/quickstart/quickstart.json5").path
        let db = path("mine.sqlite")
        let run = try self.run(["run", spec, "--db", db])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("my-first: finished"), run.stderr)
        // progress that tells the truth: a line when each evaluation starts, an ETA from the first step on
        XCTAssertTrue(run.stderr.contains("my-first: step 0: evaluating 48 responses"), run.stderr)
        XCTAssertTrue(run.stderr.contains("my-first: step 20: evaluating 48 responses"), run.stderr)
        let first = try XCTUnwrap(run.stderr.split(separator: "\n").first { $0.contains(" 1/20 loss") })
        XCTAssertFalse(first.hasSuffix("ETA -"), String(first))
        let report = try self.run(["report", "--db", db, "--experiment", "my-first", "--out", path("mine-report")])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("mine-report/index.html")))
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(readme.contains("alignscope run experiments/quickstart/quickstart.json5 --db results/mine.sqlite"))
        let store = try RunStore(path: db, readOnly: true)
        // the README's query over response_scores, and final_change.sql
        let query = try XCTUnwrap(readme.components(separatedBy: "results/mine.sqlite \"").dropFirst().first?.components(separatedBy: "\"").first)
        XCTAssertTrue(query.hasPrefix("SELECT run, step, category"), query)
        XCTAssertEqual(try store.query(query).count, 3 * 5, "3 categories of probe 0 at 5 evaluations")
        let change = try store.rows(String(contentsOf: root.appendingPathComponent("analysis/final_change.sql"), encoding: .utf8), named: ["experiment": .null])
        XCTAssertEqual(change.count, 3)
        if let model = ProcessInfo.processInfo.environment["ALIGNSCOPE_MODEL"], model.hasSuffix("SmolLM2-135M-Instruct.Q4_1.gguf"),
           FileManager.default.fileExists(atPath: root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path) {
            let plan = try self.run(["plan", root.appendingPathComponent("experiments/quickstart/quickstart-smollm2.json5").path])
            XCTAssertEqual(plan.status, 0, plan.stderr)
            XCTAssertTrue(plan.stdout.contains("20 steps, batch 4, lr 5e-05"), plan.stdout)
        }
    }

    /// `probes show --system` shows the system message a spec's `system` puts first under chatml (issue 41).
    func testProbesShowShowsTheSystemMessage() throws {
        try Data(#"{"prompt": "Hi", "chosen": "Hello.", "rejected": "Go away."}"#.utf8).write(to: dir.appendingPathComponent("one.jsonl"))
        let own = try run(["probes", "show", "one.jsonl", "--system", "Be brief."])
        XCTAssertEqual(own.status, 0, own.stderr)
        XCTAssertTrue(own.stdout.contains("system message \"Be brief.\""), own.stdout)
        XCTAssertTrue(own.stdout.contains(#""<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n""#), own.stdout)
        let none = try run(["probes", "show", "one.jsonl", "--system", ""])
        XCTAssertTrue(none.stdout.contains("system message none"), none.stdout)
        XCTAssertTrue(none.stdout.contains(#""<|im_start|>user\nHi<|im_end|>"#), none.stdout)
        let standard = try run(["probes", "show", "one.jsonl"])
        XCTAssertTrue(standard.stdout.contains("system message SmolLM2's default"), standard.stdout)
        XCTAssertTrue(standard.stdout.contains("named SmolLM"), standard.stdout)
        let hh = try run(["probes", "show", "one.jsonl", "--template", "hh", "--system", "x"])
        XCTAssertEqual(hh.status, 2, hh.stderr)
    }

    /// `plan --json`: the identity as stored (`config`) and every key with its value (`resolved`), the defaults the
    /// identity leaves out included (issue 41).
    func testPlanJSONShowsEveryDefault() throws {
        let plan = try run(["plan", "reliability-sweep.json5", "--json", "--no-check"])
        XCTAssertEqual(plan.status, 0, plan.stderr)
        for line in plan.stdout.split(separator: "\n") {
            guard case .object(let o) = try JSONValue.parseJSON5(Data(line.utf8), file: "plan") else { return XCTFail(String(line)) }
            let resolved = try XCTUnwrap(o["resolved"]), config = try XCTUnwrap(o["config"])
            for path in [["eval", "tokens"], ["eval", "precision"], ["train", "precision"], ["train", "checkpoint_activations"]] {
                XCTAssertNotNil(resolved.value(at: path), "\(path) in resolved")
                XCTAssertNil(config.value(at: path), "\(path) left out of the identity while it has its default")
            }
            if case .string(let sha) = o["sha256"] { XCTAssertEqual(sha, SHA256.hex(Array(config.canonical.utf8))) } else { XCTFail("sha256") }
        }
    }

    func testTwoProcessesOnOneSpecTrainEachRunOnce() throws {
        let db = path("two.sqlite")
        let args = ["run", "reliability-sweep.json5", "--db", db]
        let (a, aOut, aErr) = try launch(args, tag: "a")
        let (b, bOut, bErr) = try launch(args, tag: "b")
        a.waitUntilExit()
        b.waitUntilExit()
        let outs = [aOut, bOut].map { (try? String(contentsOf: $0, encoding: .utf8)) ?? "" }
        let errs = [aErr, bErr].map { (try? String(contentsOf: $0, encoding: .utf8)) ?? "" }
        XCTAssertEqual(a.terminationStatus, 0, errs[0])
        XCTAssertEqual(b.terminationStatus, 0, errs[1])
        // Each process reports how many runs it trained; together exactly every run once.
        let finished = outs.map { out -> Int in
            guard let r = out.range(of: #"(\d+) finished"#, options: [.regularExpression, .backwards]) else { return -100 }
            return Int(out[r].split(separator: " ")[0]) ?? -100
        }
        XCTAssertEqual(finished.reduce(0, +), 6, "summaries: \(outs)")
        let store = try RunStore(path: db)
        XCTAssertEqual(try store.query("SELECT count(*) FROM runs WHERE status = 'finished'")[0][0].int, 6)
        // One loss row per run and step; a run trained twice would leave more rows or fail its unique keys.
        let perRun = try store.query("SELECT count(*), count(DISTINCT step) FROM train_metrics WHERE name = 'loss' GROUP BY run_id")
        XCTAssertEqual(perRun.count, 6)
        for row in perRun { XCTAssertEqual(row[0].int, 6); XCTAssertEqual(row[1].int, 6) }
        XCTAssertEqual(try integrity(db), "ok")
    }

    // MARK: - Bad input

    static let baseSpec = """
        {
          name: "bad",
          model: { preset: "tiny", seed: 0 },
          template: "hh",
          data: {
            train: { path: "TRAIN" },
            probes: { path: "PROBES", categories: { chosen: "chosen", rejected: "rejected" } },
          },
          train: { steps: 2, batch_size: 2, lr: 1e-3, warmup: 1, max_length: 160 },
          eval: { every: 2 },
          EXTRA
        }
        """

    struct BadCase {
        var name: String
        var spec: String
        var files: [String: Data] = [:]
        /// Text the one stderr line must contain (the file and the place).
        var needles: [String]
        var db = "runs.sqlite"
        /// More arguments for `run` (e.g. `--checkpoints`).
        var extraArgs: [String] = []
        /// The spec file's bytes when they are not text (invalid UTF-8).
        var specBytes: Data? = nil
        /// More environment for the process.
        var environment: [String: String] = [:]
    }

    static func spec(train: String = "tiny-train.jsonl", probes: String = "tiny-probes.jsonl", extra: String = "",
                     replacing: [(String, String)] = []) -> String {
        var s = baseSpec.replacingOccurrences(of: "TRAIN", with: train).replacingOccurrences(of: "PROBES", with: probes)
            .replacingOccurrences(of: "EXTRA", with: extra)
        for (a, b) in replacing { s = s.replacingOccurrences(of: a, with: b) }
        return s
    }

    static func ggufSpec(_ file: String) -> String {
        spec(replacing: [(#"model: { preset: "tiny", seed: 0 }"#, #"model: { gguf: "\#(file)" }"#)])
    }

    static func badCases() -> [BadCase] {
        let line = #"{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go."}"#
        var cases: [BadCase] = [
            BadCase(name: "malformed JSON5", spec: "{ name: \"bad\", model: ", needles: ["spec.json5"]),
            BadCase(name: "unknown key", spec: spec(extra: "trian: { steps: 3 },"), needles: ["spec.json5", "trian"]),
            BadCase(name: "wrong type", spec: spec(replacing: [("steps: 2", #"steps: "two""#)]), needles: ["spec.json5", "steps"]),
            BadCase(name: "out of range", spec: spec(replacing: [("steps: 2", "steps: -3")]), needles: ["spec.json5", "steps"]),
            BadCase(name: "missing file", spec: spec(train: "nope.jsonl"), needles: ["nope.jsonl"]),
            BadCase(name: "empty dataset", spec: spec(train: "empty.jsonl"), files: ["empty.jsonl": Data()], needles: ["empty.jsonl"]),
            BadCase(name: "line not an object", spec: spec(train: "arr.jsonl"),
                    files: ["arr.jsonl": Data("\(line)\n[1, 2]\n".utf8)], needles: ["arr.jsonl", "2"]),
            BadCase(name: "line lacks a mapped field", spec: spec(probes: "nofield.jsonl"),
                    files: ["nofield.jsonl": Data("\(line)\n{\"prompt\": \"Why?\", \"chosen\": \"Because.\"}\n".utf8)],
                    needles: ["nofield.jsonl", "rejected"]),
            BadCase(name: "response cannot fit max_length", spec: spec(train: "long.jsonl", replacing: [("max_length: 160", "max_length: 40")]),
                    files: ["long.jsonl": Data((line + "\n" + #"{"prompt": "Hi?", "chosen": "\#(String(repeating: "very ", count: 30))long.", "rejected": "No."}"# + "\n").utf8)],
                    needles: ["long.jsonl", "max_length"]),
            BadCase(name: "read-only database", spec: spec(), needles: ["runs.sqlite"], db: "RODB"),
        ]
        for (name, bytes) in GGUFBytes.corruptions() {
            cases.append(BadCase(name: "gguf: \(name)", spec: ggufSpec("model.gguf"), files: ["model.gguf": bytes], needles: ["model.gguf"]))
        }
        return cases + issue15Cases() + issue33Cases()
    }

    /// Issue 15: values `plan` accepted and `run` trapped on or found only during the run, stores that
    /// are no files, and messages that named no place.
    static func issue15Cases() -> [BadCase] {
        let line = #"{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go."}"#
        let cats = #"categories: { chosen: "chosen", rejected: "rejected" }"#
        func category(_ text: String) -> [(String, String)] { [(cats, #"categories: { chosen: "chosen", "# + text + " }")] }
        let longAnswer = String(repeating: "very ", count: 30)
        let hundred = "[" + (0..<100).map(String.init).joined(separator: ", ") + "]"
        var cases: [BadCase] = [
            // 2. traps on values plan accepted
            BadCase(name: "greedy max_tokens >= max_length", spec: spec(replacing: category("g: { greedy: { max_tokens: 160 } }")),
                    needles: ["spec.json5", "data.probes.categories.g.greedy.max_tokens"]),
            BadCase(name: "coh answers longer than max_length",
                    spec: spec(train: "long.jsonl", extra: #"objective: { kind: "coh" },"#, replacing: [("max_length: 160", "max_length: 60")]),
                    files: ["long.jsonl": Data((line + "\n" + #"{"prompt": "Hi?", "chosen": "\#(longAnswer)", "rejected": "No."}"# + "\n").utf8)],
                    needles: ["long.jsonl:2", "max_length"]),
            BadCase(name: "max_length beyond the model's context",
                    spec: spec(replacing: [("batch_size: 2", "batch_size: 4096"), ("max_length: 160", "max_length: 65536")]),
                    needles: ["spec.json5", "train.max_length", "context"]),
            BadCase(name: "a sweep of 10^8 runs",
                    spec: spec(extra: "sweep: { seed: \(hundred), \"train.steps\": \(hundred.replacingOccurrences(of: "[0, ", with: "[")) , \"train.warmup\": \(hundred), \"train.lr\": \(hundred.replacingOccurrences(of: "[0, ", with: "[")) },"),
                    needles: ["spec.json5", "sweep", "10000"]),
            // 5. category sources and objectives that could not be built
            BadCase(name: "unknown derivation", spec: spec(replacing: category(#"random: { derive: "othr_prompt", field: "chosen" }"#)),
                    needles: ["spec.json5", "data.probes.categories.random.derive", "other_prompt"]),
            BadCase(name: "a number as category source", spec: spec(replacing: category("x: 5")), needles: ["spec.json5", "data.probes.categories.x"]),
            BadCase(name: "greedy max_tokens 0", spec: spec(replacing: category("g: { greedy: { max_tokens: 0 } }")),
                    needles: ["spec.json5", "data.probes.categories.g.greedy.max_tokens"]),
            BadCase(name: "hf model directory missing", spec: spec(replacing: [(#"model: { preset: "tiny", seed: 0 }"#, #"model: { hf: "no-such-dir" }"#)]),
                    needles: ["no-such-dir", "no such directory"]),
            BadCase(name: "hf model given a file", spec: spec(replacing: [(#"model: { preset: "tiny", seed: 0 }"#, #"model: { hf: "tiny-train.jsonl" }"#)]),
                    needles: ["tiny-train.jsonl", "not a directory"]),
            BadCase(name: "gguf and hf together", spec: spec(replacing: [(#"model: { preset: "tiny", seed: 0 }"#, #"model: { gguf: "a.gguf", hf: "d" }"#)]),
                    needles: ["spec.json5", "model.hf", "not several"]),
            BadCase(name: "argmax of a field no category reads", spec: spec(replacing: category(#"a: { argmax: { field: "non_response" } }"#)),
                    needles: ["spec.json5", "data.probes.categories.a.argmax.field", "non_response", "no category reads"]),
            BadCase(name: "argmax with an unknown key", spec: spec(replacing: category(#"a: { argmax: { field: "chosen", max_tokens: 3 } }"#)),
                    needles: ["spec.json5", "data.probes.categories.a.argmax.max_tokens"]),
            BadCase(name: "eval.tokens not a boolean", spec: spec(replacing: [("eval: { every: 2 }", "eval: { every: 2, tokens: 1 }")]),
                    needles: ["spec.json5", "eval.tokens"]),
            BadCase(name: "category named prompt", spec: spec(replacing: category(#"prompt: "chosen""#)),
                    needles: ["spec.json5", "data.probes.categories.prompt"]),
            BadCase(name: "other_prompt from a missing field", spec: spec(replacing: category(#"r: { derive: "other_prompt", field: "nope" }"#)),
                    needles: ["tiny-probes.jsonl", "nope"]),
            BadCase(name: "generator with an empty command", spec: spec(replacing: category(#"v: { generate: { command: [], template: "x" } }"#)),
                    needles: ["spec.json5", "data.probes.categories.v.generate.command"]),
            BadCase(name: "generator seed -1", spec: spec(replacing: category(#"v: { generate: { command: ["cat"], template: "x", seed: -1 } }"#)),
                    needles: ["spec.json5", "data.probes.categories.v.generate.seed"]),
            BadCase(name: "generator field missing from the probes", spec: spec(replacing: category(#"v: { generate: { command: ["cat"], template: "x", field: "nope" } }"#)),
                    needles: ["tiny-probes.jsonl", "nope"]),
            BadCase(name: "other_prompt with one probe", spec: spec(probes: "one.jsonl", replacing: category(#"r: { derive: "other_prompt", field: "chosen" }"#)),
                    files: ["one.jsonl": Data((line + "\n").utf8)], needles: ["one.jsonl", "2 probes"]),
            BadCase(name: "sft on rejected, a line without rejected", spec: spec(train: "half.jsonl", extra: #"objective: { kind: "sft", target: "rejected" },"#),
                    files: ["half.jsonl": Data((line + "\n" + #"{"prompt": "Why?", "chosen": "Because."}"# + "\n").utf8)], needles: ["half.jsonl:2", "rejected"]),
            BadCase(name: "dpo, a line without rejected", spec: spec(train: "half.jsonl", extra: #"objective: { kind: "dpo" },"#),
                    files: ["half.jsonl": Data((line + "\n" + #"{"prompt": "Why?", "chosen": "Because."}"# + "\n").utf8)], needles: ["half.jsonl:2", "rejected"]),
            BadCase(name: "beta1 1", spec: spec(replacing: [("warmup: 1,", "warmup: 1, beta1: 1,")]), needles: ["spec.json5", "train.beta1"]),
            BadCase(name: "beta2 1", spec: spec(replacing: [("warmup: 1,", "warmup: 1, beta2: 1,")]), needles: ["spec.json5", "train.beta2"]),
            BadCase(name: "init_from.step beyond the parent's steps",
                    spec: spec(extra: #"stages: [{ name: "a" }, { name: "b", init_from: { run: "a", step: 99 } }],"#),
                    needles: ["spec.json5", "init_from.step", "99"]),
            BadCase(name: "a 300-byte name", spec: spec(replacing: [(#"name: "bad""#, "name: \"\(String(repeating: "n", count: 300))\"")]),
                    needles: ["spec.json5", "name"]),
            BadCase(name: "a path-like name", spec: spec(replacing: [(#"name: "bad""#, #"name: "..""#)]), needles: ["spec.json5", "name"]),
            BadCase(name: "--checkpoints names a file", spec: spec(), files: ["afile": Data("x".utf8)], needles: ["--checkpoints", "afile"],
                    extraArgs: ["--checkpoints", "CASEDIR/afile/ck"]),
            // 1. stores that are no files
            BadCase(name: "--db :memory:", spec: spec(), needles: ["--db", ":memory:"], db: ":memory:"),
            BadCase(name: "--db empty", spec: spec(), needles: ["--db"], db: ""),
            // 9. smaller ones
            BadCase(name: "duplicate spec key", spec: spec(replacing: [("steps: 2,", "steps: 2, steps: 3,")]), needles: ["spec.json5:", "duplicate key \"steps\""]),
            BadCase(name: "a number too large", spec: spec(replacing: [("lr: 1e-3", "lr: 1e400")]), needles: ["spec.json5:", "1e400", "out of range"]),
            BadCase(name: "a raw control character in a spec string", spec: spec(replacing: [(#"name: "bad""#, "name: \"b\u{01}d\"")]),
                    needles: ["spec.json5:", "control character U+0001"]),
            BadCase(name: "invalid UTF-8 in the spec", spec: "", needles: ["spec.json5", "UTF-8", "byte offset 10"],
                    specBytes: Data("{ name: \"b".utf8) + Data([0xFF]) + Data("\" }".utf8)),
            BadCase(name: "invalid UTF-8 in the data", spec: spec(train: "bin.jsonl"),
                    files: ["bin.jsonl": Data((line + "\n").utf8) + Data([0x7B, 0xC3, 0x28, 0x7D, 0x0A])], needles: ["bin.jsonl", "UTF-8", "byte offset 58"]),
            BadCase(name: "a raw control character in a JSONL string", spec: spec(train: "ctl.jsonl"),
                    files: ["ctl.jsonl": Data((line + "\n" + "{\"prompt\": \"a\tb\", \"chosen\": \"c\"}\n").utf8)], needles: ["ctl.jsonl:2", "column 14", "control character"]),
            BadCase(name: "a JSONL line without a prompt", spec: spec(train: "noprompt.jsonl"),
                    files: ["noprompt.jsonl": Data(#"{"chosen": "Hi", "rejected": "No"}"#.utf8 + [0x0A])], needles: ["noprompt.jsonl:1", "\"prompt\""]),
        ]
        // Issue 17: a prompt given only as messages cannot be scored by template "raw"; ChatML markers in a plain prompt.
        let chat = #"{"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Why?"}], "chosen": "Because.", "rejected": "No."}"#
        cases.append(BadCase(name: "template raw, a prompt given as messages", spec: spec(train: "chat.jsonl", probes: "chat.jsonl", replacing: [(#"template: "hh""#, #"template: "raw""#)]),
                             files: ["chat.jsonl": Data((line + "\n" + chat + "\n").utf8)], needles: ["chat.jsonl:2", "raw"]))
        cases.append(BadCase(name: "ChatML markers in a plain prompt", spec: spec(train: "marked.jsonl"),
                             files: ["marked.jsonl": Data((line + "\n" + #"{"prompt": "<|im_start|>user\nHi", "chosen": "Yo", "rejected": "No"}"# + "\n").utf8)],
                             needles: ["marked.jsonl:2", "prompt", "<|im_start|>"]))
        if let model = ProcessInfo.processInfo.environment["ALIGNSCOPE_MODEL"] {
            cases.append(BadCase(name: "a batch beyond the machine's memory",
                                 spec: spec(replacing: [(#"model: { preset: "tiny", seed: 0 }"#, "model: { gguf: \"\(model)\" }"),
                                                        ("batch_size: 2", "batch_size: 4096"), ("max_length: 160", "max_length: 8192")]),
                                 needles: ["spec.json5", "train.batch_size", "memory"]))
        }
        // oneDNN capped at AVX2 (its own switch, as on a Zen 3 host): bf16 would be emulated, so it is refused.
        for key in ["train", "eval"] {
            cases.append(BadCase(name: "\(key).precision bf16 on a CPU without bf16",
                                 spec: spec(replacing: [("max_length: 160 }", key == "train" ? #"max_length: 160, precision: "bf16" }"# : "max_length: 160 }"),
                                                        ("eval: { every: 2 }", key == "eval" ? #"eval: { every: 2, precision: "bf16" }"# : "eval: { every: 2 }")]),
                                 needles: ["spec.json5", "\(key).precision", "avx2", "bf16"], environment: ["ONEDNN_MAX_CPU_ISA": "AVX2"]))
        }
        var patched = TinyGGUF.bytes(blockCount: UInt32(Int32.max))
        cases.append(BadCase(name: "gguf: block_count 2^31-1", spec: ggufSpec("model.gguf"), files: ["model.gguf": patched], needles: ["model.gguf", "block_count"]))
        patched = Data()
        return cases
    }

    func testBadInputExits2WithOneLineAndWritesNothing() throws {
        let fm = FileManager.default
        for c in Self.badCases() {
            let caseDir = dir.appendingPathComponent("case-\(UUID().uuidString)")
            try fm.createDirectory(at: caseDir, withIntermediateDirectories: true)
            for name in ["tiny-train.jsonl", "tiny-probes.jsonl"] {
                try fm.copyItem(at: dir.appendingPathComponent(name), to: caseDir.appendingPathComponent(name))
            }
            for (name, data) in c.files { try data.write(to: caseDir.appendingPathComponent(name)) }
            try (c.specBytes ?? Data(c.spec.utf8)).write(to: caseDir.appendingPathComponent("spec.json5"))
            var db = c.db.isEmpty || c.db.hasPrefix(":") ? c.db : caseDir.appendingPathComponent(c.db).path
            if c.db == "RODB" {
                if getuid() == 0 {
                    db = "/proc/alignscope-\(UUID().uuidString)/runs.sqlite"  // root ignores permissions; /proc refuses new files
                } else {
                    let ro = caseDir.appendingPathComponent("ro")
                    try fm.createDirectory(at: ro, withIntermediateDirectories: true)
                    db = ro.appendingPathComponent("runs.sqlite").path
                    chmod(ro.path, 0o555)
                }
            }
            let extra = c.extraArgs.map { $0.replacingOccurrences(of: "CASEDIR", with: caseDir.path) }
            let out = try run(["run", caseDir.appendingPathComponent("spec.json5").path, "--db", db, "--quiet"] + extra,
                              environment: c.environment)
            XCTAssertEqual(out.status, 2, "\(c.name): exit \(out.status), stderr: \(out.stderr)")
            let lines = out.stderr.split(separator: "\n", omittingEmptySubsequences: true)
            XCTAssertEqual(lines.count, 1, "\(c.name): stderr should be one line: \(out.stderr)")
            for needle in c.needles {
                XCTAssertTrue(out.stderr.contains(needle), "\(c.name): stderr does not name \"\(needle)\": \(out.stderr)")
            }
            // Everything is checked before the store is opened: a bad run on a new path creates no file.
            XCTAssertFalse(!db.isEmpty && fm.fileExists(atPath: db), "\(c.name): the store \(db) was created")
            XCTAssertFalse(fm.fileExists(atPath: dir.appendingPathComponent(":memory:").path), "\(c.name): a file named :memory: was created")
        }
    }

    /// On an AVX2-only host (oneDNN capped at AVX2 through its own switch) a run trains and evaluates in
    /// fp32 and records what the full machine records, up to the products' summation order.
    func testAnAVX2OnlyHostRunsInFP32() throws {
        let spec = dir.appendingPathComponent("spec.json5")
        try Self.spec(extra: "seed: 3,").write(to: spec, atomically: false, encoding: .utf8)
        let full = try run(["run", spec.path, "--db", path("full.sqlite"), "--quiet"])
        XCTAssertEqual(full.status, 0, full.stderr)
        let capped = try run(["run", spec.path, "--db", path("avx2.sqlite"), "--quiet"], environment: ["ONEDNN_MAX_CPU_ISA": "AVX2"])
        XCTAssertEqual(capped.status, 0, capped.stderr)
        let a = try snapshot(path("full.sqlite")), b = try snapshot(path("avx2.sqlite"))
        XCTAssertEqual(a["runs"], b["runs"])
        XCTAssertEqual(a["logprobs"]?.count, b["logprobs"]?.count)
        XCTAssertGreaterThan(a["logprobs"]?.count ?? 0, 0)
        for (x, y) in zip(a["logprobs"]!, b["logprobs"]!) {
            XCTAssertEqual(x[0..<6], y[0..<6])
            XCTAssertEqual(x[6].double ?? .nan, y[6].double ?? .nan, accuracy: 1e-3, "\(x)")
        }
    }

    // MARK: - Non-finite loss and a full disk

    /// A spec for a run on a tiny GGUF model (`TinyGGUF`): one example per step, every step evaluated.
    static func ggufRunSpec(name: String, model: String, train: String, steps: Int, checkpointEvery: Int) -> String {
        """
        {
          name: "\(name)",
          model: { gguf: "\(model)" },
          template: "hh",
          data: {
            train: { path: "\(train)" },
            probes: { path: "tiny-probes.jsonl", categories: { chosen: "chosen", rejected: "rejected", non_response: "non_response" } },
          },
          train: { steps: \(steps), batch_size: 1, lr: 1e-3, warmup: 1, max_length: 160 },
          eval: { every: 1, at_start: true },
          checkpoint: { every: \(checkpointEvery) },
          seed: 1,
        }
        """
    }

    func write(_ text: String, to name: String) throws {
        try Data(text.utf8).write(to: dir.appendingPathComponent(name))
    }

    /// The poisoned model's embedding row for "~" is infinite, and "~" is written only into the
    /// training example of step 3: steps 1 and 2 and the evaluations before are finite, step 3's
    /// loss is not. A clean copy of the model (same weights, finite row) is the control.
    func testNonFiniteLossMarksTheRunFailedAndKeepsEarlierRows() throws {
        let failStep = 3
        let lines = try String(contentsOf: dir.appendingPathComponent("tiny-train.jsonl"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        XCTAssertFalse(lines.contains { $0.contains("~") })
        // Batch size 1: step s trains the example at position s - 1 of the run's data order.
        var order = DataOrder(count: lines.count, seed: 1)
        let poisoned = order.index(at: failStep - 1)
        var examples = lines
        examples[poisoned] = lines[poisoned].replacingOccurrences(of: #""chosen": ""#, with: #""chosen": "Well ~ then. "#)
        XCTAssertNotEqual(examples[poisoned], lines[poisoned])
        try write(examples.joined(separator: "\n") + "\n", to: "poison-train.jsonl")
        try TinyGGUF.write(to: path("clean.gguf"))
        try TinyGGUF.write(to: path("poisoned.gguf"), infiniteRowOf: "~")
        try write(Self.ggufRunSpec(name: "nan", model: "poisoned.gguf", train: "poison-train.jsonl", steps: 6, checkpointEvery: 1), to: "nan.json5")
        try write(Self.ggufRunSpec(name: "nan", model: "clean.gguf", train: "poison-train.jsonl", steps: 6, checkpointEvery: 1), to: "clean.json5")

        let clean = try run(["run", "clean.json5", "--db", path("clean.sqlite"), "--checkpoints", path("ck-clean"), "--quiet"])
        XCTAssertEqual(clean.status, 0, "the clean model trains through step \(failStep): \(clean.stderr)")
        let db = path("nan.sqlite")
        let out = try run(["run", "nan.json5", "--db", db, "--checkpoints", path("ck-nan"), "--quiet"])
        XCTAssertEqual(out.status, 1, out.stderr)
        let lines1 = out.stderr.split(separator: "\n")
        XCTAssertEqual(lines1.count, 1, out.stderr)
        XCTAssertTrue(out.stderr.contains("step \(failStep): loss is not finite"), out.stderr)

        let store = try RunStore(path: db)
        let runs = try store.query("SELECT status, error, last_step FROM runs")
        XCTAssertEqual(runs.count, 1)
        XCTAssertEqual(runs.first?[0].string, "failed")
        XCTAssertEqual(runs.first?[1].string, "step \(failStep): loss is not finite")
        XCTAssertEqual(runs.first?[2].int, failStep - 1)
        // The rows before the failure are kept, finite, and exactly those of the clean run.
        let got = try snapshot(db), control = try snapshot(path("clean.sqlite"))
        for table in ["logprobs", "train_metrics"] {
            let rows = got[table] ?? [], controlRows = control[table] ?? []
            XCTAssertEqual(Set(rows.compactMap { $0[1].int }), table == "logprobs" ? [0, 1, 2] : [1, 2], table)
            XCTAssertEqual(rows, controlRows.filter { ($0[1].int ?? .max) < failStep }, table)
            XCTAssertTrue(rows.allSatisfy { row in row.allSatisfy { $0.double?.isFinite ?? true } }, table)
        }
        XCTAssertEqual(got["logprobs"]?.count, 3 * 12)  // steps 0, 1, 2 x 4 probes x 3 categories
        XCTAssertEqual(try integrity(db), "ok")
    }

    /// The one stderr line of a run that found no room for its database.
    func assertFullDiskLine(_ stderr: String, db: String, file: StaticString = #filePath, line: UInt = #line) {
        let lines = stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "stderr should be one line: \(stderr)", file: file, line: line)
        XCTAssertTrue(stderr.contains(db), "stderr does not name the database: \(stderr)", file: file, line: line)
        XCTAssertTrue(stderr.contains("the disk (or the database size limit) is full"), "stderr does not say the disk is full: \(stderr)", file: file, line: line)
    }

    /// A full disk, made with `ulimit -f` (no file may grow past the limit; SQLite gets EFBIG).
    func testAFullDiskStopsTheRunClearlyAndItResumesWithRoom() throws {
        let steps = 40
        try TinyGGUF.write(to: path("model.gguf"))
        try write(Self.ggufRunSpec(name: "full", model: "model.gguf", train: "tiny-train.jsonl", steps: steps, checkpointEvery: 4), to: "full.json5")
        let ref = try run(["run", "full.json5", "--db", path("ref.sqlite"), "--checkpoints", path("ck-ref"), "--quiet"])
        XCTAssertEqual(ref.status, 0, ref.stderr)
        let reference = try snapshot(path("ref.sqlite"))

        // No room for the schema: exit 2, nothing recorded.
        let early = path("early.sqlite")
        let first = try run(["run", "full.json5", "--db", early, "--checkpoints", path("ck-early"), "--quiet"], fileSizeLimitKiB: 8)
        XCTAssertEqual(first.status, 2, first.stderr)
        assertFullDiskLine(first.stderr, db: early)
        let rows = try RunStore(path: early).query("SELECT (SELECT count(*) FROM experiments) + (SELECT count(*) FROM runs)")
        XCTAssertEqual(rows[0][0].int, 0)

        // Room for the plan and part of the run: exit 1; what was committed is whole and resumable.
        let db = path("full.sqlite")
        let args = ["run", "full.json5", "--db", db, "--checkpoints", path("ck-full"), "--quiet"]
        let stopped = try run(args, fileSizeLimitKiB: Self.fullDiskLimitKiB)
        XCTAssertEqual(stopped.status, 1, stopped.stderr)
        assertFullDiskLine(stopped.stderr, db: db)
        XCTAssertEqual(try integrity(db), "ok")
        let partial = try snapshot(db)
        let evaluated = Set((partial["logprobs"] ?? []).compactMap { $0[1].int })
        let lastEvaluated = evaluated.max() ?? -1
        XCTAssertTrue(lastEvaluated > 0 && lastEvaluated < steps,
                      "the limit should stop the run part-way; last evaluated step \(lastEvaluated) of \(steps)")
        XCTAssertEqual(evaluated, Set(0...max(0, lastEvaluated)), "evaluation steps are contiguous")
        // The run is left to be resumed: still `running` under its dead process when the failure
        // could not be recorded either, else `failed` with the reason (both are taken up again).
        let status = partial["runs"]?.first?[3].string, error = partial["runs"]?.first?[4].string
        XCTAssertTrue(status == "running" || (status == "failed" && error?.contains("is full") == true),
                      "run left as \(status ?? "-"): \(error ?? "-")")
        // Whole evaluations only, each exactly as in the uninterrupted run.
        XCTAssertEqual(partial["logprobs"], reference["logprobs"]?.filter { evaluated.contains($0[1].int ?? -1) })

        let resumed = try run(args)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let got = try snapshot(db)
        for table in ["runs", "logprobs", "train_metrics"] {
            XCTAssertEqual(got[table], reference[table], "\(table) after resuming differs from the uninterrupted run")
        }
        XCTAssertEqual(try integrity(db), "ok")
    }

    // MARK: - score

    /// `score --input` scores every line (batched, a repeated prompt shared) and prints one JSON line per
    /// input line, in order, each equal to what `score --prompt --response --json` prints for that pair.
    func testScoreInputGivesEachPairsLineInOrder() throws {
        let model = path("tiny.gguf")
        try TinyGGUF.write(to: model)
        let pairs = [("Hi there", "Hello you"), ("Why?", "Because it is."), ("Hi there", "Go away"), ("Why?", "")]
        let lines = pairs.map { #"{"prompt": "\#($0.0)", "response": "\#($0.1)"}"# }
        try write(lines.joined(separator: "\n") + "\n", to: "pairs.jsonl")
        let batched = try run(["score", "--model", model, "--input", path("pairs.jsonl")])
        XCTAssertEqual(batched.status, 0, batched.stderr)
        let got = batched.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(got.count, pairs.count)
        for (k, (prompt, response)) in pairs.enumerated() where k < got.count {
            let one = try run(["score", "--model", model, "--prompt", prompt, "--response", response, "--json"])
            XCTAssertEqual(one.status, 0, one.stderr)
            let a = try JSONSerialization.jsonObject(with: Data(got[k].utf8)) as! [String: Any]
            let b = try JSONSerialization.jsonObject(with: Data(one.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(a["n_tokens"] as? Int, b["n_tokens"] as? Int, "line \(k + 1)")
            XCTAssertEqual(a["n_tokens"] as? Int, response.utf8.count, "line \(k + 1): one token per byte")
            XCTAssertEqual(a["logprob"] as! Double, b["logprob"] as! Double, accuracy: 1e-4, "line \(k + 1)")
        }
        // The same response after different prompts scores differently (the prompt is not dropped).
        let other = try run(["score", "--model", model, "--prompt", "Why?", "--response", "Hello you", "--json"])
        let b = try JSONSerialization.jsonObject(with: Data(other.stdout.utf8)) as! [String: Any]
        let a = try JSONSerialization.jsonObject(with: Data(got[0].utf8)) as! [String: Any]
        XCTAssertNotEqual(a["logprob"] as! Double, b["logprob"] as! Double, accuracy: 1e-4)
    }

    /// Past the schema, the plan and the probe set (about 100 KiB of WAL) and below the WAL of the
    /// whole run (about 1 MiB); the checkpoint (about 90 KiB) fits.
    static let fullDiskLimitKiB = 320
}

/// A tiny llama GGUF with a byte-level BPE vocabulary (printable ASCII, space, newline; no merges)
/// and an untied output head, written with the product's GGUF writer.
enum TinyGGUF {
    static let tokens: [String] = ["\u{10A}", "\u{120}"] + (0x21...0x7E).map { String(UnicodeScalar(UInt8($0))) } + ["<|endoftext|>"]

    /// With `infiniteRowOf`, that character's embedding row is +infinity: any sequence holding it has a
    /// non-finite loss (its RMSNorm is inf * 0), while the untied head keeps other sequences finite.
    /// The GGUF's bytes with `llama.block_count` patched to `blockCount` (the tensors stay those of one block).
    static func bytes(blockCount: UInt32) -> Data {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-\(UUID().uuidString).gguf").path
        defer { unlink(path) }
        try! write(to: path)
        var data = FileManager.default.contents(atPath: path)!
        let key = Data("llama.block_count".utf8)
        let at = data.range(of: key)!.upperBound + 4  // the key, then its u32 type, then the u32 value
        withUnsafeBytes(of: blockCount.littleEndian) { data.replaceSubrange(at..<at + 4, with: $0) }
        return data
    }

    static func write(to path: String, infiniteRowOf poison: String? = nil) throws {
        let config = LlamaConfig(vocabSize: tokens.count, dim: 16, nLayers: 1, nHeads: 2, nKVHeads: 2, ffnDim: 32,
                                 tiedEmbedding: false, contextLength: 256)
        let model = LlamaModel(config: config, maxTokens: 16)
        model.initializeRandom(seed: 5)
        if let poison, let id = tokens.firstIndex(of: poison) {
            let embedding = model.parameter("token_embd.weight")
            for j in 0..<config.dim { embedding[id * config.dim + j] = .infinity }
        }
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.setHyperparameters(config)
        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.pre", .string("gpt2"))
        w.set("tokenizer.ggml.tokens", .array(tokens.map { .string($0) }))
        w.set("tokenizer.ggml.token_type", .array(tokens.map { .int32($0 == "<|endoftext|>" ? 3 : 1) }))
        w.set("tokenizer.ggml.merges", .array([]))
        w.set("tokenizer.ggml.eos_token_id", .uint32(UInt32(tokens.count - 1)))
        for (name, shape) in model.parameterTable {
            w.addTensor(name, dimensions: shape.reversed(), type: .f32, data: Array(model.parameter(name)))
        }
        try w.write(to: path)
    }
}

/// GGUF files built byte by byte (little endian), valid and corrupted, for the bad-input tests.
enum GGUFBytes {
    struct Writer {
        var data = Data()
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); data.append(contentsOf: Array(s.utf8)) }
        mutating func kvString(_ key: String, _ value: String) { string(key); u32(8); string(value) }
        mutating func kvU32(_ key: String, _ value: UInt32) { string(key); u32(4); u32(value) }
        mutating func kvF32(_ key: String, _ value: Float) { string(key); u32(6); u32(value.bitPattern) }
        mutating func pad(to alignment: Int) { while data.count % alignment != 0 { data.append(0) } }
    }

    /// A GGUF v3 with llama metadata for a 1-layer model (dim 8) and one F32 tensor; no tokenizer keys.
    static func llama(version: UInt32 = 3, magic: String = "GGUF", tensorCount: UInt64? = nil, kvCount: UInt64? = nil,
                      tensorType: UInt32 = 0, tensorOffset: UInt64 = 0) -> Data {
        var w = Writer()
        w.data.append(contentsOf: Array(magic.utf8))
        w.u32(version)
        w.u64(tensorCount ?? 1)
        w.u64(kvCount ?? 8)
        w.kvString("general.architecture", "llama")
        w.kvU32("llama.block_count", 1)
        w.kvU32("llama.embedding_length", 8)
        w.kvU32("llama.feed_forward_length", 16)
        w.kvU32("llama.attention.head_count", 2)
        w.kvU32("llama.attention.head_count_kv", 2)
        w.kvU32("llama.context_length", 64)
        w.kvF32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        w.string("output_norm.weight")
        w.u32(1)
        w.u64(8)
        w.u32(tensorType)
        w.u64(tensorOffset)
        w.pad(to: 32)
        for _ in 0..<8 { w.u32(Float(1).bitPattern) }
        return w.data
    }

    static func corruptions() -> [(String, Data)] {
        let good = llama()
        return [
            ("bad magic", llama(magic: "GGUX")),
            ("bad version", llama(version: 99)),
            ("huge tensor count", llama(tensorCount: UInt64.max / 2)),
            ("huge metadata count", llama(kvCount: 1 << 40)),
            ("truncated header", good.prefix(40)),
            ("truncated data", good.prefix(good.count - 12)),
            ("offset beyond the file", llama(tensorOffset: 1 << 20)),
            ("unsupported tensor type", llama(tensorType: 77)),
            ("missing tokenizer metadata", good),
            ("empty file", Data()),
        ]
    }
}
