import Foundation
import RunStore
import Training
import XCTest
@testable import Experiments

/// Issue 38: `eval.attribution` through a whole run on the tiny preset, its rows, and what it must not change.
final class AttributionRunTests: XCTestCase {
    func train(_ objective: String, attribution: String?, lr: Double = 1e-4, steps: Int = 4) throws -> RunStore {
        try runTinySpec("""
            { name: "at", model: { preset: "tiny", seed: 0 }, template: "hh", objective: \(objective),
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: \(steps), batch_size: 2, lr: \(lr), max_length: 160, warmup: 0, weight_decay: 0.01 },
              eval: { every: 2\(attribution.map { ", attribution: \($0)" } ?? "") } }
            """, run: "at", prefix: "attribution").store
    }

    /// Every followed response at every attribution step: predicted and observed, one influence row per example of the
    /// step (2) and the carried row (-1), summing to the prediction; at lr 1e-4 the prediction follows the observed
    /// change (Pearson r >= 0.98 over all rows).
    func testARunRecordsEachStepsAttribution() throws {
        let store = try train(#"{ kind: "sft" }"#, attribution: "{ every: 2 }")
        let responses = try store.query("SELECT count(*) FROM logprobs WHERE step = 0")[0][0].int!
        let rows = try store.query("SELECT step, response_id, predicted, observed FROM attributions ORDER BY step, response_id")
        XCTAssertEqual(rows.count, 2 * responses, "steps 2 and 4, every response of the data's categories")
        XCTAssertEqual(Set(rows.map { $0[0].int! }), [2, 4])
        var predicted: [Double] = [], observed: [Double] = []
        for row in rows {
            let (step, response, p) = (row[0].int!, row[1].int!, row[2].double!)
            predicted.append(p)
            observed.append(row[3].double!)
            let influences = try store.query("SELECT example, data_line, contribution, cosine FROM influences WHERE step = \(step) AND response_id = \(response) ORDER BY example")
            XCTAssertEqual(influences.first?[0].int, -1, "the carried row")
            XCTAssertNil(influences.first?[3].double, "the carried row has no cosine")
            XCTAssertTrue((2...3).contains(influences.count), "two examples and the carried part: \(influences.count)")
            for i in influences.dropFirst() {
                XCTAssertEqual(i[1].int, i[0].int! + 1, "one example per line in the fixture")
                XCTAssertTrue((-1...1).contains(i[3].double!))
            }
            XCTAssertEqual(influences.reduce(0) { $0 + $1[2].double! }, p, accuracy: 1e-6 * abs(p) + 1e-12)
        }
        let mp = predicted.reduce(0, +) / Double(predicted.count), mo = observed.reduce(0, +) / Double(observed.count)
        let sxy = zip(predicted, observed).reduce(0) { $0 + ($1.0 - mp) * ($1.1 - mo) }
        let r = sxy / (predicted.reduce(0) { $0 + ($1 - mp) * ($1 - mp) } * observed.reduce(0) { $0 + ($1 - mo) * ($1 - mo) }).squareRoot()
        XCTAssertGreaterThanOrEqual(r, 0.98, "predicted \(predicted)\nobserved \(observed)")
        // a checkpoint at step 2 resumed: the rows of later steps go, as every other row of theirs does
        _ = try store.truncate(runID: 1, afterStep: 2)
        XCTAssertEqual(try store.query("SELECT DISTINCT step FROM influences").map { $0[0].int! }, [2])
    }

    /// analysis/attribution_sources.sql and attribution_fit.sql answer from the rows: the top example of each category
    /// is the one with the largest summed contribution (computed here from `influences`), and the fit's r is the Pearson
    /// correlation of the category's rows.
    func testTheAttributionQueriesAnswerFromTheRows() throws {
        let store = try train(#"{ kind: "sft" }"#, attribution: "{ every: 1 }", lr: 1e-3)
        let analysis = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../analysis")
        func file(_ name: String) throws -> String {
            try String(contentsOf: analysis.appendingPathComponent(name), encoding: .utf8)
                .replacingOccurrences(of: ":experiment", with: "'at'").replacingOccurrences(of: ":category", with: "NULL")
        }
        let sources = try store.query(try file("attribution_sources.sql"))
        let rows = try store.query("SELECT r.category, i.example, i.contribution FROM influences i JOIN responses r ON r.id = i.response_id WHERE i.example >= 0")
        var totals: [String: [Int: Double]] = [:]
        for row in rows { totals[row[0].string!, default: [:]][row[1].int!, default: 0] += row[2].double! }
        XCTAssertEqual(Set(sources.map { $0[2].string! }), Set(totals.keys))
        for (category, byExample) in totals {
            let top = sources.filter { $0[2].string == category }
            XCTAssertEqual(top.map { $0[3].int! }, Array(1...min(5, byExample.count)))
            let best = byExample.max { $0.value < $1.value }!
            XCTAssertEqual(top[0][4].int, best.key, category)
            XCTAssertEqual(top[0][6].double!, best.value, accuracy: 1e-6, category)
        }
        let fit = try store.query(try file("attribution_fit.sql"))
        XCTAssertEqual(fit.count, totals.count)
        for row in fit {
            let pairs = try store.query("SELECT a.predicted, a.observed FROM attributions a JOIN responses r ON r.id = a.response_id WHERE r.category = '\(row[2].string!)'")
            let x = pairs.map { $0[0].double! }, y = pairs.map { $0[1].double! }
            let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
            let r = zip(x, y).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
                / (x.reduce(0) { $0 + ($1 - mx) * ($1 - mx) } * y.reduce(0) { $0 + ($1 - my) * ($1 - my) }).squareRoot()
            XCTAssertEqual(row[3].int, pairs.count)
            XCTAssertEqual(row[6].double!, r, accuracy: 1e-4, row[2].string!)
        }
    }

    /// Attribution observes: a DPO run records the same losses, metrics and log-probabilities bit for bit with it as
    /// without it (the step is the same arithmetic; the weights are swapped back exactly), and the run's identity
    /// without it is what it was before the key existed.
    func testAttributionChangesNoOtherNumber() throws {
        let plain = try train(#"{ kind: "dpo", beta: 0.5 }"#, attribution: nil, lr: 1e-3)
        let followed = try train(#"{ kind: "dpo", beta: 0.5 }"#, attribution: "{ every: 1, probes: 1, project: 64 }", lr: 1e-3)
        let lp = "SELECT step, response_id, logprob FROM logprobs ORDER BY step, response_id"
        XCTAssertEqual(try followed.query(lp).map { $0.map(\.double) }, try plain.query(lp).map { $0.map(\.double) })
        let metrics = "SELECT step, name, value FROM train_metrics WHERE name NOT IN ('elapsed', 'tokens_per_s', 'time/attribution') ORDER BY step, name"
        XCTAssertEqual(try followed.query(metrics).map { $0.map(\.description) }, try plain.query(metrics).map { $0.map(\.description) })
        XCTAssertEqual(try followed.query("SELECT count(DISTINCT step) FROM attributions")[0][0].int, 4)
        let perStep = try followed.query("SELECT count(*) FROM attributions WHERE step = 1")[0][0].int!
        let firstProbe = try followed.query("SELECT count(*) FROM logprobs l JOIN responses r ON r.id = l.response_id JOIN probes p ON p.id = r.probe_id WHERE l.step = 0 AND p.idx = 0")[0][0].int!
        XCTAssertEqual(perStep, firstProbe, "probes: 1 follows the first probe's responses")
        let config = try plain.query("SELECT config FROM runs")[0][0].string!
        XCTAssertFalse(config.contains("attribution"), config)
    }

    /// Objectives whose steps do not decompose over their examples, a watched run and a sketch too small are refused at
    /// plan time, one line naming the key.
    func testAttributionIsRefusedWhereItIsNotDefined() throws {
        let dir = try temporaryFolder("attribution-bad", copying: ["tiny-train.jsonl", "tiny-probes.jsonl"])
        func refusal(_ objective: String, _ attribution: String = "{ every: 2 }") -> String {
            let text = """
                { name: "bad", model: { preset: "tiny", seed: 0 }, objective: \(objective),
                  data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } }, train: { steps: 2 },
                  eval: { attribution: \(attribution) } }
                """
            let path = dir.appendingPathComponent("spec.json5")
            try? text.write(to: path, atomically: false, encoding: .utf8)
            do { _ = try Experiment.load(path: path.path); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal(#"{ kind: "kto" }"#).contains("eval.attribution"), refusal(#"{ kind: "kto" }"#))
        XCTAssertTrue(refusal(#"{ kind: "reward" }"#).contains("reward (its loss reads a scalar head"))
        XCTAssertTrue(refusal(#"{ kind: "ppo", reward: { rule: "contains", text: "e" } }"#).contains("eval.attribution"))
        XCTAssertTrue(refusal(#"{ kind: "sft" }"#, "{ every: 2, project: 8 }").contains("eval.attribution.project"))
        XCTAssertTrue(refusal(#"{ kind: "sft" }"#, "{ every: 0 }").contains("eval.attribution.every"))
        XCTAssertTrue(refusal(#"{ kind: "sft" }"#, "{ sketch: 8 }").contains("eval.attribution.sketch"))
        XCTAssertEqual(refusal(#"{ kind: "dpo" }"#), "accepted")
    }
}
