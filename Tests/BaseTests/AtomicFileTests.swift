import Base
import Foundation
import XCTest

final class AtomicFileTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "atomicfile-tests-" + UUID().uuidString
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func names(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }

    /// Foundation's `.atomic` left one empty `TemporaryDirectory.*` in /tmp per write; ours leaves nothing
    /// but the file, in a folder it creates.
    func testWritesTheFileAndLeavesNothingElse() throws {
        let before = Set(names(NSTemporaryDirectory()).filter { $0.hasPrefix("TemporaryDirectory.") })
        let path = dir + "/sub/report.csv"
        try AtomicFile.write("a,b\n1,2\n", to: path, createFolders: true)
        try AtomicFile.write("a,b\n3,4\n", to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "a,b\n3,4\n")
        XCTAssertEqual(names(dir + "/sub"), ["report.csv"])
        let after = Set(names(NSTemporaryDirectory()).filter { $0.hasPrefix("TemporaryDirectory.") })
        XCTAssertEqual(after.subtracting(before), [])
    }

    /// Writes larger than the 1 MiB buffer and many small ones arrive in order.
    func testLargeAndSmallWritesKeepTheirOrder() throws {
        let path = dir + "/big.bin"
        var expected: [UInt8] = []
        let big = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try AtomicFile.write(to: path, createFolders: true) { out in
            for i in 0..<1000 {
                try out.write([UInt8(i & 0xFF)]); expected.append(UInt8(i & 0xFF))
            }
            try out.write(big); expected += big
            try out.write([7, 8, 9]); expected += [7, 8, 9]
        }
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), expected)
    }

    /// A body that throws leaves the previous file as it was and no temporary behind.
    func testAFailedWriteKeepsTheOldFile() throws {
        struct Stop: Error {}
        let path = dir + "/state.json"
        try AtomicFile.write("old", to: path, createFolders: true)
        XCTAssertThrowsError(try AtomicFile.write(to: path) { out in
            try out.write(Array("new, half written".utf8))
            throw Stop()
        }) { XCTAssertTrue($0 is Stop) }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "old")
        XCTAssertEqual(names(dir), ["state.json"])
    }

    /// An unwritable destination is a `WriteError` naming the path; nothing is created.
    func testUnwritableFolderIsATypedError() throws {
        try AtomicFile.write("x", to: dir + "/file", createFolders: true)
        XCTAssertThrowsError(try AtomicFile.write("y", to: dir + "/file/inside")) { error in
            let e = try? XCTUnwrap(error as? AtomicFile.WriteError)
            XCTAssertEqual(e?.path, self.dir + "/file/inside")
        }
        XCTAssertEqual(names(dir), ["file"])
    }

    /// `removeLeftovers` deletes temporaries (a writer killed mid-write) and nothing else.
    func testRemoveLeftovers() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for name in [".checkpoint.bin" + AtomicFile.tempMarker + "123-9", "keep.tmp-1", ".hidden"] {
            XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data([1])))
        }
        AtomicFile.removeLeftovers(in: dir)
        XCTAssertEqual(names(dir), [".hidden", "keep.tmp-1"])
    }
}
