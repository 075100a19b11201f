import Foundation
import XCTest
@testable import Experiments
import Training

/// docs/REFERENCE.md documents every spec key the decoders accept (issue 41): the keys are read off the decoders
/// themselves (the allowed list of the "unknown key" error at each level, for every objective kind), so a key added to
/// the code without a line in the reference fails here.
final class ReferenceDocsTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The keys allowed where `probe` puts an unknown key `zz_unknown` into a minimal spec.
    func allowed(_ probe: (String) -> String) throws -> (path: String, keys: [String]) {
        let spec = probe("zz_unknown: 1")
        do {
            _ = try Experiment.parse(text: spec, file: "r.json5", baseDirectory: FileManager.default.temporaryDirectory)
        } catch let SpecError.unknownKey(_, path, allowed) {
            return (String(path.dropLast("zz_unknown".count).dropLast()), allowed)
        }
        XCTFail("no unknown-key error for \(spec)")
        return ("", [])
    }

    func testEverySpecKeyIsInTheReference() throws {
        let reference = try String(contentsOf: Self.root.appendingPathComponent("docs/REFERENCE.md"), encoding: .utf8)
        func spec(top: String = "", model: String = "preset: \"tiny\", seed: 0", train: String = "steps: 2", eval: String = "", data: String = "train: { path: \"t.jsonl\" }, probes: { path: \"t.jsonl\" }",
                  objective: String = "kind: \"sft\"") -> String {
            "{ name: \"r\", model: { \(model) }, template: \"hh\", data: { \(data) }, train: { \(train) }, eval: { \(eval) }, objective: { \(objective) }, \(top) }"
        }
        var levels: [(path: String, keys: [String])] = [
            try allowed { spec(top: $0) },
            try allowed { spec(model: "preset: \"tiny\", seed: 0, " + $0) },
            try allowed { spec(data: "train: { path: \"t.jsonl\" }, probes: { path: \"t.jsonl\" }, " + $0) },
            try allowed { spec(data: "train: { path: \"t.jsonl\", \($0) }, probes: { path: \"t.jsonl\" }") },
            try allowed { spec(data: "train: { path: \"t.jsonl\" }, probes: { path: \"t.jsonl\", \($0) }") },
            try allowed { spec(train: "steps: 2, " + $0) },
            try allowed { spec(train: "steps: 2, lora: { rank: 4, \($0) }") },
            try allowed { spec(eval: $0) },
            try allowed { spec(eval: "attribution: { every: 2, \($0) }") },
            try allowed { spec(top: "checkpoint: { every: 2, \($0) }") },
            try allowed { spec(top: "init_from: { run: \"x\", \($0) }") },
        ]
        for kind in Objective.kinds {
            levels.append(try allowed { spec(objective: "kind: \"\(kind)\", " + $0) })
        }
        var missing: [String] = []
        for (path, keys) in levels {
            for key in keys {
                let full = path.isEmpty ? key : path + "." + key
                // written in backticks alone, with its section (`train.lr`), or in a `{ key, ... }` list of its object
                // (`model: { checkpoints: DIR }`, `project: D`), or as a section (`eval.every`)
                let forms = ["`\(full)`", "`\(key)`", ".\(key)`", "{ \(key),", " \(key), ", " \(key) }", "`\(full):", "`\(key):", "{ \(key):",
                             " \(key): ", "`\(full)."]
                if !forms.contains(where: reference.contains), !missing.contains(full) { missing.append(full) }
            }
        }
        XCTAssertEqual(missing, [], "spec keys the code accepts that docs/REFERENCE.md does not name")
        XCTAssertGreaterThan(levels.map(\.keys.count).reduce(0, +), 80)
    }
}
