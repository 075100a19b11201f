import Base
import Foundation
import RunStore
import XCTest

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A fresh directory under the system temp dir, removed when the test case ends.
func temporaryDirectory(_ testCase: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "reports-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// The package root, from this file's path (Tests/ReportsTests/TestSupport.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Documents parsed by `parseXML`, kept alive for the whole test run: with swift-corelibs
/// Foundation, elements lose their content once their document is released.
nonisolated(unsafe) private var parsedDocuments: [XMLDocument] = []

/// Parses `text` as XML, failing the test (at the caller) when it is not well-formed.
func parseXML(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) -> XMLDocument? {
    do {
        let document = try XMLDocument(data: Data(text.utf8), options: [])
        parsedDocuments.append(document)
        return document
    } catch {
        XCTFail("\(what) is not well-formed XML: \(error)", file: file, line: line)
        return nil
    }
}

extension XMLElement {
    /// The value of attribute `name`. (swift-corelibs-foundation's `attribute(forName:)` finds
    /// nothing on an element in a default namespace such as SVG's, so this looks the name up.)
    func value(of name: String) -> String? {
        attributes?.first { $0.name == name }?.stringValue
    }
}

/// Elements named `name` below `node` whose attribute `attribute` equals `value` (any when nil).
func elements(_ node: XMLNode, _ name: String, where attribute: String? = nil, is value: String? = nil) -> [XMLElement] {
    var found: [XMLElement] = []
    func visit(_ node: XMLNode) {
        if let element = node as? XMLElement, element.localName == name || element.name == name {
            if let attribute {
                if let actual = element.value(of: attribute),
                    value == nil || actual.split(separator: " ").map(String.init).contains(value!) || actual == value
                {
                    found.append(element)
                }
            } else {
                found.append(element)
            }
        }
        for child in node.children ?? [] { visit(child) }
    }
    visit(node)
    return found
}

/// All text below `node`, concatenated per element.
func texts(_ node: XMLNode) -> [String] {
    elements(node, "text").compactMap(\.stringValue)
}

/// A minimal RFC 4180 reader for checking what the writer produced.
func parseCSV(_ text: String) -> [[String]] {
    var records: [[String]] = []
    var record: [String] = []
    var field = ""
    var quoted = false
    var chars = Array(text)
    var i = 0
    while i < chars.count {
        let c = chars[i]
        if quoted {
            if c == "\"" {
                if i + 1 < chars.count && chars[i + 1] == "\"" {
                    field.append("\"")
                    i += 1
                } else {
                    quoted = false
                }
            } else {
                field.append(c)
            }
        } else if c == "\"" {
            quoted = true
        } else if c == "," {
            record.append(field)
            field = ""
        } else if c == "\n" || c == "\r\n" {
            record.append(field)
            records.append(record)
            record = []
            field = ""
        } else {
            field.append(c)
        }
        i += 1
    }
    if !field.isEmpty || !record.isEmpty {
        record.append(field)
        records.append(record)
    }
    chars.removeAll()
    return records
}

/// A small run store with known numbers.
///
/// Experiment `exp`: 4 runs, `train.lr` in {1e-5, 3e-5} × `seed` in {1, 2}, `train.steps` = 10
/// for all; probes 0 and 1 are `train`, probe 2 `heldout`; categories chosen and rejected for every
/// probe, non_response for probes 0 and 2, and a `greedy` response of probe 0 scored only at
/// step 10. Steps 0, 5, 10. Run 1's name contains a comma and a quote.
/// Experiment `other`: one run with its own numbers, which must never show up in `exp`'s report.
enum SmallStore {
    static let lrs = [1e-5, 3e-5]
    static let seeds: [Int64] = [1, 2]
    static let steps = [0, 5, 10]
    static let categories = ["chosen", "rejected", "non_response"]
    static let probes: [(idx: Int, split: String, categories: [String])] = [
        (0, "train", ["chosen", "rejected", "non_response"]),
        (1, "train", ["chosen", "rejected"]),
        (2, "heldout", ["chosen", "rejected", "non_response"]),
    ]

    static func base(_ category: String) -> Double {
        ["chosen": -50, "rejected": -40, "non_response": -80, "greedy": -30][category]!
    }

    static func slope(_ category: String) -> Double {
        ["chosen": 1.0, "rejected": 0.5, "non_response": -0.2][category]!
    }

    static func tokens(_ category: String) -> Int {
        ["chosen": 10, "rejected": 9, "non_response": 5, "greedy": 4][category]!
    }

    /// The log-probability of a response: rises with the step at a rate set by category, learning
    /// rate and seed, except the rejected response of probe 1, which falls.
    static func logprob(lr: Double, seed: Int64, probe: Int, category: String, step: Int) -> Double {
        let rate = (lr == 3e-5 ? 3.0 : 1.0) * slope(category) + 0.1 * Double(seed)
        let twist = probe == 1 && category == "rejected" ? -2.0 : 1.0
        return base(category) - Double(probe) * 1.5 + twist * rate * Double(step) / 5
    }

    static func runName(lr: Double, seed: Int64) -> String {
        lr == 1e-5 && seed == 1 ? "lr=1e-05,seed=\"1\"" : "lr=\(lr) seed=\(seed)"
    }

    /// Builds the store at `path`; returns it.
    @discardableResult
    static func make(at path: String) throws -> RunStore {
        let store = try RunStore(path: path)
        let experiment = try store.recordExperiment(name: "exp", spec: "{ name: \"exp\", sweep: { \"train.lr\": [1e-5, 3e-5], seed: [1, 2] } }", specSHA256: "abc")
        let entries = probes.map { probe in
            ProbeEntry(
                idx: probe.idx, prompt: "prompt \(probe.idx), with \"quotes\"", split: probe.split,
                responses: probe.categories.map { ProbeResponse(category: $0, text: "\($0) \(probe.idx)", origin: "data") })
        }
        let ids = try store.recordProbeSet(name: "probes", probes: entries)
        let greedyProbe = try store.probeIDs(probeSet: "probes")[0]!
        let greedy = try store.addResponse(probeID: greedyProbe, category: "greedy", text: "greedy at 10", origin: "generated:greedy")
        for lr in lrs {
            for seed in seeds {
                let run = try store.recordRun(
                    experimentID: experiment, name: runName(lr: lr, seed: seed), config: "{}", configSHA256: "run-\(lr)-\(seed)",
                    seed: seed, params: ["train.lr": .real(lr), "seed": .integer(seed), "train.steps": .integer(10), "objective.kind": "sft"])
                for step in steps {
                    var rows: [LogprobRow] = []
                    for probe in probes {
                        for category in probe.categories {
                            let id = ids[ResponseKey(probeIdx: probe.idx, category: category, text: "\(category) \(probe.idx)")]!
                            rows.append(LogprobRow(
                                responseID: id,
                                logprob: logprob(lr: lr, seed: seed, probe: probe.idx, category: category, step: step),
                                nTokens: tokens(category)))
                        }
                    }
                    if step == 10 { rows.append(LogprobRow(responseID: greedy, logprob: base("greedy"), nTokens: tokens("greedy"))) }
                    try store.writeEvaluation(runID: run, step: step, rows: rows)
                }
                for step in 1...10 {
                    try store.writeTrainMetrics(
                        runID: run, step: step,
                        metrics: [("loss", 3.0 - lr * 1e4 * Double(step) / 10), ("lr", lr * Double(step) / 10)])
                }
                try store.setLastStep(runID: run, step: 10)
            }
        }
        let other = try store.recordExperiment(name: "other", spec: "{}", specSHA256: "def")
        let otherRun = try store.recordRun(
            experimentID: other, name: "solo", config: "{}", configSHA256: "solo", seed: 7, params: ["train.lr": .real(1e-3)])
        let chosen0 = ids[ResponseKey(probeIdx: 0, category: "chosen", text: "chosen 0")]!
        try store.writeEvaluation(runID: otherRun, step: 0, rows: [LogprobRow(responseID: chosen0, logprob: -999, nTokens: 3)])
        try store.writeEvaluation(runID: otherRun, step: 5, rows: [LogprobRow(responseID: chosen0, logprob: -500, nTokens: 3)])
        return store
    }

    /// Ids of `exp`'s runs in order of (lr, seed), as recorded.
    static func runIDs(_ store: RunStore) throws -> [Int64] {
        let experiment = try store.experiment(name: "exp")!
        return try store.runs(experimentID: experiment.id).map(\.id)
    }
}
