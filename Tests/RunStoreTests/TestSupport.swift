import Base
import Foundation
import XCTest

@testable import RunStore

/// A fresh directory under the system temp dir, removed when the test case ends.
func temporaryDirectory(_ testCase: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "runstore-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// A store in a fresh directory.
func temporaryStore(_ testCase: XCTestCase, name: String = "runs.sqlite") throws -> RunStore {
    try RunStore(path: temporaryDirectory(testCase) + "/" + name)
}

/// Asserts that `body` throws a `StoreError` and returns it, pointing failures at the caller.
@discardableResult
func assertStoreError<T>(
    _ body: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line
) -> StoreError? {
    do {
        _ = try body()
        XCTFail("expected a StoreError, nothing was thrown", file: file, line: line)
    } catch let error as StoreError {
        XCTAssertFalse(error.description.contains("\n"), "error is not one line: \(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a StoreError, got \(error)", file: file, line: line)
    }
    return nil
}

/// A pid that belonged to a process that has exited (and been reaped).
func deadPID() throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/true")
    try process.run()
    process.waitUntilExit()
    let pid = process.processIdentifier
    precondition(kill(pid, 0) != 0 && errno == ESRCH, "pid \(pid) still exists")
    return pid
}

/// Records an experiment and `count` runs named run0, run1, ...; returns (experiment id, run ids).
func seedRuns(_ store: RunStore, count: Int, experiment: String = "exp") throws -> (Int64, [Int64]) {
    let experimentID = try store.recordExperiment(name: experiment, spec: "{}", specSHA256: "spec-sha")
    let runIDs = try (0..<count).map { i in
        try store.recordRun(
            experimentID: experimentID, name: "\(experiment)/run\(i)", config: "{\"i\":\(i)}",
            configSHA256: "\(experiment)-sha-\(i)", seed: Int64(i), params: ["seed": .integer(Int64(i))])
    }
    return (experimentID, runIDs)
}

/// A probe set of `probes` prompts (the last `heldout` of them held out) with the given
/// categories, one response each; the response text is "<category> <idx>".
func seedProbes(
    _ store: RunStore, name: String = "probes", probes: Int, heldout: Int, categories: [String]
) throws -> [ResponseKey: Int64] {
    try store.recordProbeSet(
        name: name,
        probes: (0..<probes).map { i in
            ProbeEntry(
                idx: i, prompt: "prompt \(i)", split: i >= probes - heldout ? "heldout" : "train",
                responses: categories.map { ProbeResponse(category: $0, text: "\($0) \(i)", origin: "data") })
        })
}
