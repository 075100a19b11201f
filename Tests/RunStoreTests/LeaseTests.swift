import Foundation
import XCTest

@testable import RunStore

final class LeaseTests: XCTestCase {
    private let host = RunStore.currentHostName()

    func testALiveOwnerBlocksAndADeadOneIsReclaimed() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 1)
        let run = runs[0]
        let me = RunStore.processOwner
        XCTAssertEqual(me, "\(host):\(getpid())")
        let dead = "\(host):\(try deadPID())"

        XCTAssertTrue(try store.claim(runID: run, owner: me))
        var record = try XCTUnwrap(try store.run(id: run))
        XCTAssertEqual(record.status, .running)
        XCTAssertEqual(record.owner, me)
        XCTAssertNotNil(record.heartbeatAt)
        let started = try XCTUnwrap(record.startedAt)

        // This process is alive: nobody else gets the run, however old its heartbeat.
        try store.query("UPDATE runs SET heartbeat_at = '2000-01-01T00:00:00.000Z'")
        XCTAssertFalse(try store.claim(runID: run, owner: dead, staleAfter: 1))
        XCTAssertEqual(try store.run(id: run)?.owner, me)
        XCTAssertTrue(try store.claim(runID: run, owner: me), "the holder may claim again")

        // The holder died (its pid is gone on this host): the run is taken over, started_at kept.
        try store.query("UPDATE runs SET owner = ?", [.text(dead)])
        XCTAssertFalse(try store.heartbeat(runID: run, owner: me), "a lost lease is reported to its old holder")
        XCTAssertTrue(try store.claim(runID: run, owner: me, staleAfter: 3600))
        record = try XCTUnwrap(try store.run(id: run))
        XCTAssertEqual(record.owner, me)
        XCTAssertEqual(record.startedAt, started)
        XCTAssertTrue(try store.heartbeat(runID: run, owner: me))
    }

    func testOtherHostsAreJudgedByTheirHeartbeat() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 1)
        let remote = "elsewhere.invalid:1"
        XCTAssertTrue(try store.claim(runID: runs[0], owner: remote))
        XCTAssertFalse(try store.claim(runID: runs[0], staleAfter: 60), "fresh remote heartbeat")
        try store.query("UPDATE runs SET heartbeat_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-90 seconds')")
        XCTAssertFalse(try store.claim(runID: runs[0], staleAfter: 120), "90 s old is still fresh under 120 s")
        XCTAssertTrue(try store.claim(runID: runs[0], staleAfter: 60), "90 s old is stale under 60 s")
        XCTAssertEqual(try store.run(id: runs[0])?.owner, RunStore.processOwner)
    }

    func testFinishedRunsAreNeverClaimedAndFailedOnlyOnRequest() throws {
        let store = try temporaryStore(self)
        let (_, runs) = try seedRuns(store, count: 3)
        let other = "\(host):\(try deadPID())"

        XCTAssertTrue(try store.claim(runID: runs[0]))
        try store.setLastStep(runID: runs[0], step: 60)
        try store.finish(runID: runs[0])
        let finished = try XCTUnwrap(try store.run(id: runs[0]))
        XCTAssertEqual(finished.status, .finished)
        XCTAssertEqual(finished.lastStep, 60)
        XCTAssertNotNil(finished.finishedAt)
        XCTAssertFalse(try store.claim(runID: runs[0]))
        XCTAssertFalse(try store.claim(runID: runs[0], owner: other, includeFailed: true))
        XCTAssertEqual(try store.run(id: runs[0])?.status, .finished)

        XCTAssertTrue(try store.claim(runID: runs[1]))
        try store.fail(runID: runs[1], error: "loss is NaN at step 12")
        XCTAssertEqual(try store.run(id: runs[1])?.error, "loss is NaN at step 12")
        XCTAssertEqual(try store.run(id: runs[1])?.status, .failed)
        XCTAssertFalse(try store.claim(runID: runs[1], owner: other))
        XCTAssertTrue(try store.claim(runID: runs[1], owner: other, includeFailed: true))
        XCTAssertNil(try store.run(id: runs[1])?.error, "a retried run starts without the old error")

        XCTAssertTrue(try store.claim(runID: runs[2]))
        try store.markInterrupted(runID: runs[2], reason: "SIGINT")
        XCTAssertEqual(try store.run(id: runs[2])?.status, .interrupted)
        XCTAssertTrue(try store.claim(runID: runs[2], owner: other), "interrupted runs resume")

        XCTAssertEqual(assertStoreError(try store.claim(runID: 12345)), .notFound(path: store.path, what: "run 12345"))
        XCTAssertEqual(assertStoreError(try store.finish(runID: 12345)), .notFound(path: store.path, what: "run 12345"))
    }

    func testOwnerLiveness() throws {
        XCTAssertTrue(RunStore.isOwnerAlive("\(host):\(getpid())", heartbeatAge: nil, staleAfter: 1))
        XCTAssertFalse(RunStore.isOwnerAlive("\(host):\(try deadPID())", heartbeatAge: 0, staleAfter: 60))
        XCTAssertFalse(RunStore.isOwnerAlive("\(host):0", heartbeatAge: 0, staleAfter: 60), "pid 0 is never an owner")
        XCTAssertTrue(RunStore.isOwnerAlive("other:1", heartbeatAge: 5, staleAfter: 60))
        XCTAssertFalse(RunStore.isOwnerAlive("other:1", heartbeatAge: 61, staleAfter: 60))
        XCTAssertFalse(RunStore.isOwnerAlive("garbage", heartbeatAge: nil, staleAfter: 60))
    }

    /// Two stores (two connections, as two processes would have) race to claim every run:
    /// each run is won exactly once.
    func testConcurrentClaimsGiveEachRunToOneOwner() throws {
        let dir = try temporaryDirectory(self)
        let setup = try RunStore(path: dir + "/runs.sqlite")
        let (_, runs) = try seedRuns(setup, count: 40)
        let stores = try (0..<2).map { _ in try RunStore(path: dir + "/runs.sqlite") }
        let wins = Failures()
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for run in runs {
                do {
                    if try stores[worker].claim(runID: run, owner: "worker\(worker).invalid:1") {
                        wins.add("\(run)")
                    }
                } catch { failures.add("\(error)") }
            }
        }
        XCTAssertEqual(failures.all, [])
        XCTAssertEqual(wins.all.count, runs.count, "every run claimed exactly once")
        XCTAssertEqual(Set(wins.all).count, runs.count)
    }
}
