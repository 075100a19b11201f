import Foundation
import XCTest

@testable import RunStore

/// A writer process killed with SIGKILL at arbitrary points: every evaluation step it wrote is
/// complete or absent, the file stays intact, its lease blocks others while it lives and is taken
/// over once it is dead.
final class CrashTests: XCTestCase {
    static let childVariable = "RUNSTORE_TEST_CRASH_DB"
    static let responses = 400

    func testKilledWritersLeaveCompleteStepsAndReclaimableRuns() throws {
        if let path = ProcessInfo.processInfo.environment[Self.childVariable] {
            return try writeUntilKilled(path)
        }
        #if os(Linux)
            let path = try temporaryDirectory(self) + "/runs.sqlite"
            let store = try RunStore(path: path)
            let (_, runs) = try seedRuns(store, count: 1)
            _ = try seedProbes(store, probes: Self.responses / 4, heldout: 10, categories: ["a", "b", "c", "d"])
            var killedAtSteps: [Int] = []
            for round in 0..<10 {
                let child = Process()
                child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
                child.arguments = ["RunStoreTests.CrashTests/testKilledWritersLeaveCompleteStepsAndReclaimableRuns"]
                child.environment = ProcessInfo.processInfo.environment.merging([Self.childVariable: path]) { $1 }
                child.standardOutput = FileHandle.nullDevice
                child.standardError = FileHandle.nullDevice
                try child.run()
                // Wait until the child holds the run and has written something this round.
                let before = try store.run(id: runs[0])?.lastStep ?? -1
                let deadline = Date().addingTimeInterval(20)
                while try (store.run(id: runs[0])?.lastStep ?? -1) <= before, Date() < deadline {
                    usleep(2_000)
                }
                XCTAssertEqual(try store.run(id: runs[0])?.owner, "\(RunStore.currentHostName()):\(child.processIdentifier)")
                XCTAssertFalse(try store.claim(runID: runs[0]), "round \(round): the live child holds the run")
                usleep(UInt32(2_000 + 3_000 * round))  // land at different points of the write loop
                kill(child.processIdentifier, SIGKILL)
                child.waitUntilExit()
                XCTAssertEqual(child.terminationReason, .uncaughtSignal)

                let counts = try store.query("SELECT step, count(*) FROM logprobs GROUP BY step")
                XCTAssertFalse(counts.isEmpty)
                for row in counts { XCTAssertEqual(row[1].int, Self.responses, "round \(round): step \(row[0]) is partial") }
                killedAtSteps.append(counts.count)
                XCTAssertEqual(try store.query("PRAGMA integrity_check"), [["ok"]])
                // The owner is dead: its run can be taken over (then given back for the next round).
                XCTAssertTrue(try store.claim(runID: runs[0]), "round \(round): dead owner's run reclaimed")
                try store.markInterrupted(runID: runs[0], reason: "killed")
            }
            print("steps recorded after each kill: \(killedAtSteps)")
            XCTAssertEqual(killedAtSteps, killedAtSteps.sorted())
        #else
            throw XCTSkip("re-running the test binary as a child is set up for Linux only")
        #endif
    }

    /// Child side: claim the run and record evaluations and metrics until killed.
    private func writeUntilKilled(_ path: String) throws {
        let store = try RunStore(path: path)
        let run = try XCTUnwrap(try store.run(name: "exp/run0"))
        guard try store.claim(runID: run.id) else { return XCTFail("child could not claim the run") }
        let ids = try store.responseIDs(probeSet: "probes").values.sorted()
        var step = (try store.query("SELECT max(step) FROM logprobs WHERE run_id = ?", [.integer(run.id)])[0][0].int ?? -1) + 1
        while true {
            try store.writeEvaluation(
                runID: run.id, step: step, rows: ids.map { LogprobRow(responseID: $0, logprob: -Double(step), nTokens: 2) })
            try store.writeTrainMetrics(runID: run.id, step: step, metrics: [("loss", 1.0 / Double(step + 1))])
            try store.setLastStep(runID: run.id, step: step)
            step += 1
            usleep(1_000)  // a real run computes between writes
        }
    }
}
