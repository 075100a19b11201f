import Base
import Foundation
import RunStore
import XCTest

@testable import Reports

/// The report's measure figures, position buckets, greedy tables and words, from a store whose numbers
/// are known: one run (ChatML), probes 0-1 train and 2-3 held out, evaluations at steps 0 and 10.
final class ReportMeasuresTests: XCTestCase {
    var store: RunStore!

    /// chosen: argmax_logprob -4 -> -2 (rises), except_argmax -3 -> -5 (falls); rejected the other way.
    /// Tokens (6 per response): change +1 at position 0, +0.5 at 1-4, -2 at the last (end of turn).
    /// Greedy: at step 0 two answers go on as the user and run out of tokens, two end their turn;
    /// at step 10 all four end their turn.
    override func setUpWithError() throws {
        store = try RunStore(path: try temporaryDirectory(self) + "/runs.sqlite")
        let experiment = try store.recordExperiment(name: "m", spec: "{}", specSHA256: "x")
        let entries = (0..<4).map { i in
            ProbeEntry(idx: i, prompt: "p\(i)", split: i < 2 ? "train" : "heldout",
                       responses: ["chosen", "rejected"].map { ProbeResponse(category: $0, text: "\($0) \(i)", origin: "data") })
        }
        let ids = try store.recordProbeSet(name: "probes", probes: entries)
        let probeIDs = try store.probeIDs(probeSet: "probes")
        let run = try store.recordRun(experimentID: experiment, name: "m/sft", config: "{}", configSHA256: "r", seed: 1,
                                      params: ["template": .text("chatml")])
        for step in [0, 10] {
            var rows: [LogprobRow] = []
            for i in 0..<4 {
                for category in ["chosen", "rejected"] {
                    let up = category == "chosen" ? 1.0 : -1.0
                    let t = Double(step) / 10
                    let tokens = (0..<6).map { position -> TokenRow in
                        let change = position == 0 ? 1.0 : (position == 5 ? -2.0 : 0.5)
                        // schema 7: the token that rose most since the start, from the second evaluation on
                        return TokenRow(token: Int32(position), logprob: -1 - Double(i) + t * change, argmax: 0,
                                        gainToken: step > 0 ? 7 : nil, gain: step > 0 ? 0.25 : nil)
                    }
                    rows.append(LogprobRow(
                        responseID: ids[ResponseKey(probeIdx: i, category: category, text: "\(category) \(i)")]!,
                        logprob: tokens.reduce(0) { $0 + $1.logprob }, nTokens: 6,
                        measures: ["argmax_logprob": -4 + 2 * t * up, "except_argmax": -3 - 2 * t * up, "entropy": 1 + Double(i)],
                        tokens: tokens))
                }
                let wanders = step == 0 && i < 2
                let text = wanders ? "sure\n\nHuman: and then" : "done \(i)"
                let greedy = try store.addResponse(probeID: probeIDs[i]!, category: "greedy", text: text, origin: "greedy:max_tokens=8:step=\(step)")
                rows.append(LogprobRow(responseID: greedy, logprob: -5, nTokens: wanders ? 9 : 3,
                                       measures: ["ended_turn": wanders ? 0 : 1, "generated_tokens": wanders ? 8 : 2]))
            }
            try store.writeEvaluation(runID: run, step: step, rows: rows)
        }
    }

    /// explore.html's per-token view carries, per token at the last evaluation, the token that rose most since the start
    /// and its gain (`token_logprobs.gain_token`, `gain`), and its tooltip says so.
    func testThePerTokenViewNamesTheTokenThatRoseMost() throws {
        let page = try ReportBuilder(store: store, experiment: "m").files().first { $0.path == "explore.html" }!.contents
        XCTAssertTrue(page.contains(#""gain":[[7,0.25],[7,0.25],[7,0.25],[7,0.25],[7,0.25],[7,0.25]]"#), "the gains of a response's six tokens")
        XCTAssertTrue(page.contains("rose most since the start"))
    }

    func testMeasuresCSVFiguresAndTheWordsFollowTheNumbers() throws {
        let builder = try ReportBuilder(store: store, experiment: "m")
        let files = builder.files()
        let paths = Set(files.map(\.path))
        for name in ["argmax_logprob", "except_argmax", "entropy", "ended_turn", "generated_tokens"] {
            XCTAssert(paths.contains("figures/run-1-measure-\(name).svg"), name)
        }
        XCTAssert(paths.contains("figures/run-1-argmax-vs-rest.svg"))
        XCTAssert(paths.contains("figures/run-1-positions.svg"))

        let csv = try XCTUnwrap(files.first { $0.path == "measures.csv" }?.contents)
        let lines = csv.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "run_id,run,step,category,split,measure,mean,sem,n")
        XCTAssert(lines.contains("1,m/sft,10,chosen,train,argmax_logprob,-2,0,2"), csv)
        XCTAssert(lines.contains("1,m/sft,10,rejected,heldout,except_argmax,-1,0,2"), csv)
        XCTAssert(lines.contains("1,m/sft,0,chosen,heldout,entropy,3.5,0.5,2"), csv)

        let sentence = builder.squeezeSentence(builder.data.runs[0])
        XCTAssert(sentence.contains("chosen: argmax rose by 2 (-4.00 → -2.00), rest fell by 2 (-3.00 → -5.00): mass moved onto the argmax tokens (peakier)"), sentence)
        XCTAssert(sentence.contains("rejected: argmax fell by 2 (-4.00 → -6.00), rest rose by 2 (-3.00 → -1.00): mass moved off the argmax tokens (flatter)"), sentence)
    }

    func testTokenChangesFallIntoTheirPositionBuckets() throws {
        let builder = try ReportBuilder(store: store, experiment: "m")
        let buckets = try XCTUnwrap(builder.data.measures.buckets[builder.data.runs[0].id])
        XCTAssertEqual(buckets.startStep, 0)
        XCTAssertEqual(buckets.endStep, 10)
        XCTAssertTrue(buckets.endsWithTurnToken)
        for category in ["chosen", "rejected"] {
            for split in ["train", "heldout"] {
                let key = CategorySplit(category: category, split: split)
                let b = try XCTUnwrap(buckets.changes[key])
                XCTAssertEqual(b[.first], [1, 1])
                XCTAssertEqual(b[.early]?.count, 8)
                XCTAssertEqual(Set(b[.early] ?? []), [0.5])
                XCTAssertEqual(b[.rest], nil, "6 tokens: positions 1-4 are early, 5 is the end of turn")
                XCTAssertEqual(b[.endOfTurn], [-2, -2])
                // two responses: +1 at the first token, 4 x 0.5 in the body, -2 at the end of turn each
                XCTAssertEqual(buckets.parts[key], MeasureData.TokenParts(responses: 2, first: 2, body: 4, endOfTurn: -4))
            }
        }
        XCTAssertNil(buckets.changes[CategorySplit(category: "greedy", split: "train")], "greedy answers differ between evaluations: no per-token change")
    }

    func testGreedyTablesShowWhatTheModelSays() throws {
        let builder = try ReportBuilder(store: store, experiment: "m")
        let run = builder.data.runs[0]
        let table = try XCTUnwrap(builder.greedyTable(run))
        XCTAssertEqual(table.header, ["category", "step", "answers", "ended turn", "new user turn", "mean tokens"])
        XCTAssertEqual(table.rows, [["greedy", "0", "4", "0.50", "0.50", "5.0"], ["greedy", "10", "4", "1.00", "0.00", "2.0"]])
        let answers = try XCTUnwrap(builder.greedyAnswersTable(run))
        XCTAssertEqual(answers.header, ["category", "probe", "step 0", "step 10"])
        XCTAssertEqual(answers.rows[0], ["greedy", "0", "sure\\n\\nHuman: and then", "done 0 ⏎"])
        XCTAssertEqual(answers.rows.count, 3)
        let index = try XCTUnwrap(builder.files().first { $0.path == "index.md" }?.contents)
        XCTAssert(index.contains("| greedy | 10 | 4 | 1.00 | 0.00 | 2.0 |"), index)
    }

    /// analysis/argmax_vs_rest.sql on the same numbers.
    func testTheArgmaxAgainstTheRestQuery() throws {
        let sql = try String(contentsOfFile: packageRoot + "/analysis/argmax_vs_rest.sql", encoding: .utf8)
        XCTAssertTrue(sql.hasPrefix("-- What it answers:"))
        let rows = try store.rows(sql, named: ["experiment": .null])
        XCTAssertEqual(try store.rows(sql, named: ["experiment": "m"]), rows)
        XCTAssertEqual(try store.rows(sql, named: ["experiment": "missing"]), [])
        XCTAssertEqual(rows.count, 4)  // chosen and rejected, train and held-out (greedy has no argmax measures here)
        for row in rows {
            let up = row["category"] == "chosen" ? 1.0 : -1.0
            XCTAssertEqual(row["argmax_start"]?.double, -4)
            XCTAssertEqual(row["argmax_end"]?.double, -4 + 2 * up)
            XCTAssertEqual(row["rest_end"]?.double, -3 - 2 * up)
            XCTAssertEqual(row["argmax_change"]?.double, 2 * up)
            XCTAssertEqual(row["rest_change"]?.double, -2 * up)
        }
    }
}
