import Foundation
import XCTest
@testable import Training

final class ReferenceCacheTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("refcache-\(UUID().uuidString)").path
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testRoundTripIsBitExactAndKeyed() throws {
        let cache = ReferenceLogprobCache(directory: directory + "/nested")
        let values: [Double] = [-123.456789012345, -0.0, .leastNonzeroMagnitude, -.greatestFiniteMagnitude, -1e-300, 0.1]
        XCTAssertNil(try cache.load(model: "m1", data: "d1"))
        try cache.save(values, model: "m1", data: "d1")
        let back = try XCTUnwrap(ReferenceLogprobCache(directory: directory + "/nested").load(model: "m1", data: "d1"))
        XCTAssertEqual(back.map(\.bitPattern), values.map(\.bitPattern))
        XCTAssertNil(try cache.load(model: "m1", data: "d2"))
        XCTAssertNil(try cache.load(model: "m2", data: "d1"))
        XCTAssertNotEqual(cache.path(model: "ab", data: "c"), cache.path(model: "a", data: "bc"))
        try cache.save([], model: "m1", data: "empty")
        XCTAssertEqual(try cache.load(model: "m1", data: "empty"), [])
    }

    func testValuesComputesOnceAndSaveReplacesAtomically() throws {
        let cache = ReferenceLogprobCache(directory: directory)
        var calls = 0
        for _ in 0..<3 {
            let v = try cache.values(model: "sha-model", data: "sha-data") {
                calls += 1
                return [-1.5, -2.25]
            }
            XCTAssertEqual(v, [-1.5, -2.25])
        }
        XCTAssertEqual(calls, 1)
        try cache.save([-7], model: "sha-model", data: "sha-data")
        XCTAssertEqual(try cache.load(model: "sha-model", data: "sha-data"), [-7])
        // Only the one file: no temporary files left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory),
                       [(cache.path(model: "sha-model", data: "sha-data") as NSString).lastPathComponent])
    }

    func testDamagedFilesFailLoudly() throws {
        let cache = ReferenceLogprobCache(directory: directory)
        try cache.save([1, 2, 3], model: "m", data: "d")
        let path = cache.path(model: "m", data: "d")
        let full = try Data(contentsOf: URL(fileURLWithPath: path))

        try full.prefix(full.count - 3).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try cache.load(model: "m", data: "d")) { error in
            guard case let .malformed(p, _, expected)? = error as? ReferenceCacheError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(p, path)
            XCTAssertEqual(expected, "3 Float64 values")
            XCTAssertFalse("\(error)".contains("\n"))
        }

        var bad = full
        bad[0] = UInt8(ascii: "X")
        try bad.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try cache.load(model: "m", data: "d")) { error in
            XCTAssertEqual(error as? ReferenceCacheError, .malformed(path: path, offset: 0, expected: "magic ASREFLP1"))
        }

        // A file that holds another key (e.g. copied by hand) is refused, not used.
        let other = cache.path(model: "m", data: "other")
        try full.write(to: URL(fileURLWithPath: other))
        XCTAssertThrowsError(try cache.load(model: "m", data: "other")) { error in
            XCTAssertEqual(error as? ReferenceCacheError, .keyMismatch(path: other, expected: "(m, other)", found: "(m, d)"))
            XCTAssertEqual("\(error)", "\(other): holds key (m, d), expected (m, other)")
        }
    }
}
