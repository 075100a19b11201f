import Foundation
import RunStore
import XCTest

extension ReliabilityTests {
    /// Issue 37 through the command line: `run --follow` on a watched folder stops cleanly on Ctrl-C (SIGINT, exit 1,
    /// "interrupted"), running again goes on and evaluates each checkpoint once, and `report` draws the run like any
    /// (its change per category, the trainer's log in train.csv). A checkpoint that is a symbolic link out of the
    /// folder is never read.
    func testWatchFollowStopsOnCtrlCResumesAndReports() throws {
        try FileManager.default.copyItem(at: Bundle.module.url(forResource: "Fixtures/trainer-runs", withExtension: nil)!,
                                         to: dir.appendingPathComponent("trainer-runs"))
        // a symbolic link out of the folder, named like a checkpoint
        try FileManager.default.createSymbolicLink(atPath: path("trainer-runs/llama/run/checkpoint-9"), withDestinationPath: path("trainer-runs/neox/run/checkpoint-4"))
        try write("""
            { name: "watch", model: { checkpoints: "trainer-runs/llama/run", base: "trainer-runs/llama/base" },
              template: "raw", data: { probes: { path: "trainer-runs/probes.jsonl",
                categories: { chosen: "chosen", rejected: "rejected", non_response: "non_response" } } } }
            """, to: "watch.json5")
        let db = path("watch.sqlite")
        let (p, out, err) = try launch(["run", "watch.json5", "--db", db, "--follow", "120"], tag: "follow")
        // once the folder's checkpoints are recorded it only watches: stop it there
        let deadline = Date().addingTimeInterval(60)
        func steps() -> Int { (try? RunStore(path: db, readOnly: true).query("SELECT count(DISTINCT step) FROM logprobs"))?.first?.first?.int ?? 0 }
        while steps() < 3 && Date() < deadline { usleep(100_000) }
        XCTAssertEqual(steps(), 3)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let stopped = outcome(p, out, err)
        XCTAssertEqual(stopped.status, 1, stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("interrupted"), stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("checkpoint-9 leads outside"), stopped.stderr)
        let again = try run(["run", "watch.json5", "--db", db])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertFalse(again.stdout.contains("evaluated") || again.stderr.contains("evaluated"), "nothing is evaluated twice: \(again.stdout)")
        let rows = try RunStore(path: db, readOnly: true).query("SELECT step, count(*) FROM logprobs GROUP BY step ORDER BY step")
        XCTAssertEqual(rows.map { [$0[0].int!, $0[1].int!] }, [[0, 9], [2, 9], [4, 9]])
        let report = try run(["report", "--db", db, "--experiment", "watch", "--out", path("report")])
        XCTAssertEqual(report.status, 0, report.stderr)
        let deltas = try String(contentsOfFile: path("report/deltas.csv"), encoding: .utf8)
        XCTAssertTrue(deltas.contains("1,watch,,chosen,heldout,0,4,"), deltas)
        let train = try String(contentsOfFile: path("report/train.csv"), encoding: .utf8)
        XCTAssertTrue(train.contains("1,watch,3,loss,"), train)
    }
}
