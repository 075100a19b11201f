import Foundation
import XCTest

@testable import RunStore

/// Several connections and processes on one store, as with `alignscope run --jobs N` while
/// someone watches the views with sqlite3.
final class ConcurrencyTests: XCTestCase {
    static let sqlite3 = "/usr/bin/sqlite3"

    func testWritersAndReadersShareTheStoreWithoutBusyErrors() throws {
        let dir = try temporaryDirectory(self)
        let path = dir + "/runs.sqlite"
        let setup = try RunStore(path: path)
        let (_, runs) = try seedRuns(setup, count: 3)
        let ids = try seedProbes(setup, probes: 50, heldout: 10, categories: ["chosen", "rejected", "random", "variant"])
            .values.sorted()
        let steps = 25

        // Other processes: sqlite3 reading both views in a loop until told to stop, and sqlite3
        // writing train metrics of run 3 one autocommit statement at a time.
        let stop = dir + "/stop"
        var children: [(Process, Pipe)] = []
        let haveCLI = FileManager.default.isExecutableFile(atPath: Self.sqlite3)
        if haveCLI {
            children.append(try spawn(
                """
                n=0
                while [ ! -e "$STOP" ] && [ $n -lt 3000 ]; do
                  \(Self.sqlite3) -bail -cmd '.timeout 10000' "$DB" \
                    'SELECT count(*), sum(n) FROM category_curves; SELECT count(*) FROM logprob_deltas WHERE step > 0;' \
                    >/dev/null || exit 1
                  n=$((n+1))
                done
                echo "reads=$n"
                """, environment: ["DB": path, "STOP": stop]))
            children.append(try spawn(
                """
                for i in $(seq 1 60); do
                  \(Self.sqlite3) -bail -cmd '.timeout 10000' "$DB" \
                    "INSERT INTO train_metrics (run_id, step, name, value) VALUES (\(runs[2]), $i, 'loss', 0.5);" || exit 1
                done
                echo writes=60
                """, environment: ["DB": path]))
        }

        // This process: two writer connections (one per run) and one reader connection that checks
        // it never sees a half-written evaluation.
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 3) { worker in
            do {
                let store = try RunStore(path: path)
                if worker < 2 {
                    let run = runs[worker]
                    guard try store.claim(runID: run) else { return failures.add("claim of run \(run) failed") }
                    for step in 0..<steps {
                        let rows = ids.map { LogprobRow(responseID: $0, logprob: -Double(step) - Double($0 % 7), nTokens: 3) }
                        try store.writeEvaluation(runID: run, step: step * 10, rows: rows)
                        try store.writeTrainMetrics(runID: run, step: step * 10, metrics: [("loss", 1), ("lr", 1e-5)])
                        try store.setLastStep(runID: run, step: step * 10)
                        _ = try store.heartbeat(runID: run)
                    }
                    try store.finish(runID: run)
                } else {
                    for _ in 0..<200 {
                        let counts = try store.query("SELECT run_id, step, count(*) FROM logprobs GROUP BY run_id, step")
                        for row in counts where row[2].int != ids.count {
                            failures.add("partial evaluation visible: \(row)")
                        }
                        _ = try store.query("SELECT * FROM category_curves WHERE run_id = ?", [.integer(runs[0])])
                        _ = try store.statusRows()
                    }
                }
            } catch {
                failures.add("worker \(worker): \(error)")
            }
        }
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        for (process, pipe) in children {
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            print("sqlite3 child: \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
            XCTAssertEqual(process.terminationStatus, 0, "sqlite3 child failed: \(output)")
            XCTAssertFalse(output.contains("locked"), output)
        }
        XCTAssertEqual(failures.all, [])

        XCTAssertEqual(
            try setup.query("SELECT run_id, count(*) FROM logprobs GROUP BY run_id ORDER BY run_id"),
            [[.integer(runs[0]), .integer(Int64(steps * ids.count))], [.integer(runs[1]), .integer(Int64(steps * ids.count))]])
        XCTAssertEqual(try setup.query("SELECT count(*) FROM train_metrics WHERE run_id = ?", [.integer(runs[2])]),
                       [[.integer(haveCLI ? 60 : 0)]])
        XCTAssertEqual(try setup.statusRows().map(\.status), [.finished, .finished, .planned])
        XCTAssertEqual(try setup.query("PRAGMA integrity_check"), [["ok"]])
        if !haveCLI { throw XCTSkip("\(Self.sqlite3) not installed: only in-process connections were tested") }
    }

    private func spawn(_ script: String, environment: [String: String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        return (process, pipe)
    }
}
