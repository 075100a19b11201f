import Base
import Foundation
@testable import RunStore
import Tokenizer
import XCTest
@testable import Experiments

/// Run identities survive upgrades (issue 16): the typed config encodes exactly what the first version
/// hashed, a store written by commit 59e209a (before the redesign) still recognises its finished runs,
/// and a key added later with a default leaves every identity unchanged while it has that default.
final class IdentityTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("alignscope-identity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["tiny-sweep.json5", "tiny-stages.json5", "tiny-threads.json5", "tiny-train.jsonl", "tiny-probes.jsonl",
                     "legacy-59e209a.sql", "legacy-f5b9c46.sql"] {
            try FileManager.default.copyItem(at: Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!,
                                             to: dir.appendingPathComponent(name))
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func experiments() throws -> [Experiment] {
        try ["tiny-sweep.json5", "tiny-stages.json5"].map { try Experiment.load(path: dir.appendingPathComponent($0).path) }
    }

    /// legacy-59e209a.sql: `sqlite3 .dump` of the store that `alignscope run` of both specs wrote with the
    /// executable of commit 59e209a (schema version 1, the hand-written config encoder), kept as text so
    /// that no database is committed. Rebuilt into a file, then opened: opening migrates it to version 2;
    /// every planned run is found by its identity, finished, and nothing is trained again.
    func testAStoreWrittenBeforeTheRedesignKeepsItsFinishedRuns() throws {
        let path = dir.appendingPathComponent("legacy-59e209a.sqlite").path
        try Database(path: path, journalModeWAL: false)
            .executeScript(String(contentsOf: dir.appendingPathComponent("legacy-59e209a.sql"), encoding: .utf8))
        let store = try RunStore(path: path)
        XCTAssertEqual(try store.storedSchemaVersion(), RunStore.schemaVersion)
        let before = try store.query("SELECT count(*) FROM runs")
        for experiment in try experiments() {
            for run in experiment.runs {
                let record = try XCTUnwrap(try store.run(configSHA256: run.configSHA256), "\(run.name): identity not found")
                XCTAssertEqual(record.name, run.name)
                XCTAssertEqual(record.status, .finished)
                XCTAssertEqual(record.config, run.configJSON, "\(run.name): stored config differs")
            }
            let executor = RunExecutor(experiment: experiment, store: store, checkpointRoot: dir)
            let summary = try executor.runAll()
            XCTAssertEqual(summary.finished, [])
            XCTAssertEqual(summary.skipped.map(\.reason), Array(repeating: "finished", count: experiment.runs.count))
        }
        XCTAssertEqual(try store.query("SELECT count(*) FROM runs"), before)
    }

    /// `threads` stopped mattering (issue 40). legacy-f5b9c46.sql: `sqlite3 .dump` of the store that `alignscope run` of
    /// tiny-sweep.json5 (threads unset, so 2 then) and tiny-threads.json5 (threads: 3) wrote with the executable of commit
    /// f5b9c46, the main before the change (rows of measures, logprobs and train_metrics deleted to keep it small). Every
    /// run is found under the identity it was stored with, skipped as finished, and nothing is recorded twice; the
    /// threads-3 run through its former identity. A spec's threads no longer changes a new run's identity.
    func testAStoreWrittenBeforeThreadsStoppedMatteringKeepsItsRuns() throws {
        let path = dir.appendingPathComponent("legacy-f5b9c46.sqlite").path
        try Database(path: path, journalModeWAL: false)
            .executeScript(String(contentsOf: dir.appendingPathComponent("legacy-f5b9c46.sql"), encoding: .utf8))
        let store = try RunStore(path: path)
        let before = try store.query("SELECT count(*) FROM runs")
        let stored = try store.query("SELECT config_sha256 FROM runs ORDER BY id").map { $0[0].string! }
        var found: [String] = []
        for file in ["tiny-sweep.json5", "tiny-threads.json5"] {
            let planned = try Experiment.load(path: dir.appendingPathComponent(file).path)
            let experiment = try RunExecutor.experimentVersion(planned, store: store, newVersion: false)
            for run in experiment.runs {
                let record = try XCTUnwrap(try store.run(configSHA256: run.configSHA256), "\(run.name): identity not found")
                XCTAssertEqual(record.status, .finished)
                XCTAssertEqual(record.config, run.configJSON, run.name)
                found.append(run.configSHA256)
            }
            let summary = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll()
            XCTAssertEqual(summary.skipped.map(\.reason), Array(repeating: "finished", count: experiment.runs.count))
            XCTAssertEqual(summary.finished, [])
        }
        XCTAssertEqual(found, stored)
        XCTAssertEqual(try store.query("SELECT count(*) FROM runs"), before)

        // the threads-3 run: its new identity is the one of the same spec without threads (or with any other count), its
        // former one holds threads: 3 and is what the store has
        let text = try String(contentsOf: dir.appendingPathComponent("tiny-threads.json5"), encoding: .utf8)
        func identity(_ threads: String) throws -> Experiment.PlannedRun {
            try Experiment.parse(text: text.replacingOccurrences(of: "threads: 3,", with: threads), file: "t.json5", baseDirectory: dir).runs[0]
        }
        let three = try identity("threads: 3,"), none = try identity(""), one = try identity("threads: 1,")
        XCTAssertEqual(three.configSHA256, none.configSHA256)
        XCTAssertEqual(one.configSHA256, none.configSHA256)
        XCTAssertEqual(three.config.threads, 3)
        XCTAssertNil(none.config.threads)
        XCTAssertEqual(none.config.formerIdentityJSON, nil, "unset threads had identity threads: 2, as now")
        XCTAssertEqual(try identity("threads: 2,").config.formerIdentityJSON, nil)
        let former = try XCTUnwrap(three.config.formerIdentityJSON)
        XCTAssertEqual(SHA256.hex(Array(former.utf8)), stored.last)
        XCTAssertNotEqual(three.configSHA256, stored.last)
        XCTAssertTrue(three.configJSON.contains("\"threads\":2"), three.configJSON)
    }

    /// `system` (issue 41): left out of the identity unless set to another text than SmolLM2's default (so no identity
    /// changed); "" is no system turn; refused, naming the key, with a template that has no system turn.
    func testTheSystemMessageKeepsDefaultIdentitiesAndIsRefusedWithoutChatML() throws {
        let base = """
            { name: "s", model: { preset: "tiny", seed: 0 }, template: "chatml", SYSTEM
              data: { train: { path: "t.jsonl" }, probes: { path: "t.jsonl" } }, train: { steps: 2 } }
            """
        func run(_ system: String) throws -> Experiment.PlannedRun {
            try Experiment.parse(text: base.replacingOccurrences(of: "SYSTEM", with: system), file: "s.json5", baseDirectory: dir).runs[0]
        }
        let none = try run(""), own = try run("system: \"Be brief.\","), empty = try run("system: \"\",")
        let spelled = try run("system: \"\(ChatTemplate.defaultSystemMessage)\",")
        XCTAssertEqual(spelled.configSHA256, none.configSHA256)
        XCTAssertFalse(none.configJSON.contains("system"), none.configJSON)
        XCTAssertNotEqual(own.configSHA256, none.configSHA256)
        XCTAssertNotEqual(empty.configSHA256, none.configSHA256)
        XCTAssertEqual(own.config.template.system, "Be brief.")
        XCTAssertEqual(empty.config.template.system, "")
        XCTAssertTrue(own.configJSON.contains("\"system\":\"Be brief.\""), own.configJSON)
        XCTAssertEqual(try JSONDecoder().decode(RunConfig.self, from: Data(own.configJSON.utf8)).template, own.config.template)
        let hh = base.replacingOccurrences(of: "template: \"chatml\", SYSTEM", with: "template: \"hh\", system: \"Be brief.\",")
        XCTAssertThrowsError(try Experiment.parse(text: hh, file: "s.json5", baseDirectory: dir)) { error in
            XCTAssertTrue("\(error)".contains("s.json5: system"), "\(error)")
            XCTAssertTrue("\(error)".contains("only chatml has a system turn"), "\(error)")
        }
    }

    /// The identity rule: a key listed with its default in `defaultedSinceV1` is left out while it has that
    /// default. `train.precision` and `eval.precision` (issue 18) are the first such keys: the resolved
    /// config has them, the identity is what it was before they existed (the tree without them), a run
    /// that sets bf16 gets a new identity, and a further defaulted key in a newer build changes nothing.
    func testAddingADefaultedKeyKeepsEveryIdentity() throws {
        XCTAssertEqual(RunConfig.defaultedSinceV1, ["train.precision": .string("fp32"), "eval.precision": .string("fp32"),
                                                    "eval.tokens": .bool(false), "eval.kl": .bool(false), "train.checkpoint_activations": .bool(false),
                                                    "objective.length_normalized": .bool(false),
                                                    "objective.loss_type": .string("sigmoid"), "objective.loss_weights": .array([.number(1)]),
                                                    "objective.f_divergence_type": .string("reverse_kl"),
                                                    "objective.f_alpha_divergence_coef": .number(1), "objective.discopop_tau": .number(0.05),
                                                    "objective.dpop_lambda": .number(0), "objective.use_weighting": .bool(false),
                                                    "objective.sync_ref_model": .bool(false)])
        for experiment in try experiments() {
            for run in experiment.runs {
                var tree = run.config.json
                XCTAssertEqual(tree.value(at: ["train", "precision"]), .string("fp32"))
                XCTAssertEqual(tree.value(at: ["eval", "precision"]), .string("fp32"))
                XCTAssertEqual(tree.value(at: ["eval", "tokens"]), .bool(false))
                var before = tree  // what a build without the keys encoded
                before.remove(at: ["train", "precision"])
                before.remove(at: ["eval", "precision"])
                before.remove(at: ["eval", "tokens"])
                before.remove(at: ["eval", "kl"])  // issue 38 (eval.attribution is left out of the tree while unset)
                before.remove(at: ["train", "checkpoint_activations"])
                for key in ["length_normalized", "loss_type", "loss_weights", "f_divergence_type", "f_alpha_divergence_coef", "discopop_tau", "dpop_lambda",
                            "use_weighting", "sync_ref_model"] {
                    before.remove(at: ["objective", key])  // IPO's and DPO's (issue 36)
                }
                XCTAssertNil(tree.value(at: ["threads"]))  // issue 40: unset, so not encoded; the identity holds it frozen at 2
                before.set(.number(2), at: ["threads"])
                XCTAssertEqual(before.canonical, run.configJSON, run.name)
                XCTAssertEqual(SHA256.hex(Array(before.canonical.utf8)), run.configSHA256)
                var defaulted = RunConfig.defaultedSinceV1
                defaulted["train.future"] = .number(1)
                tree.set(.number(1), at: ["train", "future"])
                XCTAssertEqual(RunConfig.identityTree(tree, defaulted: defaulted).canonical, run.configJSON, run.name)
                for path in [["train", "precision"], ["eval", "precision"]] {
                    var other = tree
                    other.set(.string("bf16"), at: path)
                    XCTAssertNotEqual(RunConfig.identityTree(other, defaulted: defaulted).canonical, run.configJSON)
                }
                var tokens = tree
                tokens.set(.bool(true), at: ["eval", "tokens"])
                XCTAssertNotEqual(RunConfig.identityTree(tokens, defaulted: defaulted).canonical, run.configJSON)
            }
        }
    }

    /// The resolved config read back by the same decoder is the same config (the encoder writes what the
    /// decoder reads).
    func testTheResolvedConfigDecodesToItself() throws {
        for experiment in try experiments() {
            for run in experiment.runs {
                var again = try JSONDecoder().decode(RunConfig.self, from: Data(run.configJSON.utf8))
                // the identity holds the frozen threads: 2 whatever the config says (`frozenKeys`)
                XCTAssertEqual(again.threads, 2)
                again.threads = run.config.threads
                XCTAssertEqual(again, run.config, run.name)
                XCTAssertEqual(try JSONDecoder().decode(RunConfig.self, from: JSONEncoder().encode(run.config)), run.config, run.name)
            }
        }
    }
}
