import Foundation
import RunStore
import XCTest
@testable import Experiments

extension XCTestCase {
    /// A new temporary folder for this test holding copies of the named fixtures (`Fixtures/NAME`); it is
    /// removed when the test ends.
    func temporaryFolder(_ prefix: String, copying fixtures: [String] = []) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("alignscope-\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        for name in fixtures {
            try FileManager.default.copyItem(at: Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!,
                                             to: dir.appendingPathComponent(name))
        }
        return dir
    }
}

extension XCTestCase {
    /// Runs a one-run spec (`text`, its `name` being `run`) on copies of the tiny fixtures to the end: the spec is
    /// validated as `alignscope run` validates it, and the run must finish. Returns the folder (checkpoints) and the store.
    func runTinySpec(_ text: String, run: String, prefix: String) throws -> (dir: URL, store: RunStore) {
        try runTinySpec(text, runs: [run], prefix: prefix)
    }

    /// `runTinySpec` for a spec of several runs (stages, sweeps), which must all finish, in `runs`' order.
    func runTinySpec(_ text: String, runs: [String], prefix: String) throws -> (dir: URL, store: RunStore) {
        let dir = try temporaryFolder(prefix, copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        try text.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        try RunExecutor.validateInputs(of: experiment)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let summary = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll()
        XCTAssertEqual(summary.finished, runs, "\(summary.failed)")
        return (dir, store)
    }

    /// What loading a tiny-preset spec with `objective` says: "accepted", or the error (one line naming the key).
    func objectiveRefusals(_ prefix: String) throws -> (String) -> String {
        let dir = try temporaryFolder(prefix, copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        return { objective in
            let text = """
                { name: "bad", model: { preset: "tiny", seed: 0 }, objective: \(objective),
                  data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } }, train: { steps: 2 } }
                """
            let path = dir.appendingPathComponent("spec.json5")
            try? text.write(to: path, atomically: false, encoding: .utf8)
            do {
                _ = try Experiment.load(path: path.path)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
    }
}

/// The path of a model made by scripts/make-hf-fixtures.py (Tests/HFModelsTests/Fixtures/NAME).
func hfFixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("HFModelsTests/Fixtures/\(name)").path
}
