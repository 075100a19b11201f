import Base
import Foundation
import RunStore
import XCTest

@testable import Reports

/// Issue 35: statistics across seeds when every seed has its own probe set (a seed draws its `random` responses, so
/// the probe set, and with it every probe id, differs between seeds): probes are matched by their index in the file.
final class SeedStatisticsTests: XCTestCase {
    /// Three seeds, four probes (all train). The change of probe i in seed k is `changes[k][i]`.
    static let changes: [[Double]] = [[1, -2, 3, 0.5], [2, 1, 4, -0.5], [0.5, -1, -1, 1]]

    func testSignAgreementAndIntervalsMatchProbesByTheirIndex() throws {
        let store = try RunStore(path: try temporaryDirectory(self) + "/runs.sqlite")
        let experiment = try store.recordExperiment(name: "s", spec: "{}", specSHA256: "x")
        for (k, changes) in Self.changes.enumerated() {
            let entries = (0..<4).map { i in
                ProbeEntry(idx: i, prompt: "p\(i)", split: "train", responses: [ProbeResponse(category: "random", text: "seed \(k) r\(i)", origin: "data")])
            }
            let ids = try store.recordProbeSet(name: "probes-seed\(k)", probes: entries)
            let run = try store.recordRun(experimentID: experiment, name: "s/seed=\(k + 1)", config: "{}", configSHA256: "r\(k)", seed: Int64(k + 1),
                                          params: ["seed": .integer(Int64(k + 1))])
            for step in [0, 10] {
                let rows = (0..<4).map { i in
                    LogprobRow(responseID: ids[ResponseKey(probeIdx: i, category: "random", text: "seed \(k) r\(i)")]!,
                               logprob: -10 + (step == 10 ? changes[i] : 0), nTokens: 3 + i)
                }
                try store.writeEvaluation(runID: run, step: step, rows: rows)
            }
        }
        let files = try ReportBuilder(store: store, experiment: "s").files()
        let rows = try XCTUnwrap(files.first { $0.path == "deltas.csv" }).contents.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = rows[0]
        let setting = try XCTUnwrap(rows.first { $0.first == "" && $0.count == header.count })
        func value(_ name: String) throws -> Double { try XCTUnwrap(Double(setting[try XCTUnwrap(header.firstIndex(of: name))]), name) }
        // naive Double computation: each seed's mean change, their mean, t(0.975, 2) = 4.303 x sd / sqrt(3)
        let means = Self.changes.map { $0.reduce(0, +) / 4 }
        let mean = means.reduce(0, +) / 3
        let sd = (means.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 2).squareRoot()
        XCTAssertEqual(try value("change"), mean, accuracy: 1e-9)
        XCTAssertEqual(try value("ci_low"), mean - 4.303 * sd / 3.0.squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(try value("ci_high"), mean + 4.303 * sd / 3.0.squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(try value("n_seeds"), 3)
        // per probe (by index): rose in 3, 1, 2 and 2 of the 3 seeds -> max(r, 1 - r) = 1, 2/3, 2/3, 2/3
        XCTAssertEqual(try value("sign_agreement"), (1 + 2.0 / 3 + 2.0 / 3 + 2.0 / 3) / 4, accuracy: 1e-12)
        // responses.csv names each probe by its index, the same in every seed
        let responses = try XCTUnwrap(files.first { $0.path == "responses.csv" }).contents
        XCTAssertTrue(responses.hasPrefix("run_id,run,category,split,probe_idx,n_tokens,start,end,change\n"), responses)
        XCTAssertEqual(responses.split(separator: "\n").count, 1 + 3 * 4)
        // the confound audit: change against length (3 + i tokens), per run
        let confounds = try XCTUnwrap(files.first { $0.path == "confounds.csv" }).contents.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let rIndex = try XCTUnwrap(confounds[0].firstIndex(of: "length_correlation"))
        for (k, changes) in Self.changes.enumerated() {
            let row = try XCTUnwrap(confounds.first { $0[1] == "s/seed=\(k + 1)" })
            let lengths = [3.0, 4, 5, 6]
            let (mx, my) = (lengths.reduce(0, +) / 4, changes.reduce(0, +) / 4)
            let cov = zip(lengths, changes).map { ($0 - mx) * ($1 - my) }.reduce(0, +)
            let r = cov / (lengths.map { ($0 - mx) * ($0 - mx) }.reduce(0, +) * changes.map { ($0 - my) * ($0 - my) }.reduce(0, +)).squareRoot()
            XCTAssertEqual(try XCTUnwrap(Double(row[rIndex])), r, accuracy: 1e-9, "seed \(k + 1)")
        }
    }
}
