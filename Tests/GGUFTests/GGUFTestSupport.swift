import Foundation
import XCTest
@testable import GGUF

/// Little-endian byte helpers for building GGUF images by hand, independently of `GGUFWriter`.
enum LE {
    static func u8(_ v: UInt8) -> [UInt8] { [v] }
    static func u16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    static func f32(_ v: Float) -> [UInt8] { u32(v.bitPattern) }
    static func str(_ s: String) -> [UInt8] { u64(UInt64(s.utf8.count)) + Array(s.utf8) }
}

/// A GGUF file image assembled field by field, so tests control every byte (versions, type ids,
/// offsets) including invalid ones.
struct RawGGUF {
    struct KV {
        var key: String
        var type: UInt32
        var payload: [UInt8]
    }

    struct Tensor {
        var name: String
        var dimensions: [UInt64]
        var type: UInt32
        var data: [UInt8]
        /// Overrides the computed (aligned) data offset.
        var offset: UInt64? = nil
    }

    var magic: [UInt8] = Array("GGUF".utf8)
    var version: UInt32 = 3
    var alignment = 32
    var kvs: [KV] = []
    var tensors: [Tensor] = []
    /// Byte offsets (in the image) where each section starts, filled by `bytes()`.
    struct Layout {
        var kvStart = 0, tensorInfoStart = 0, dataStart = 0
        var tensorDataStarts: [Int] = []
    }

    mutating func kv(_ key: String, _ type: UInt32, _ payload: [UInt8]) {
        kvs.append(KV(key: key, type: type, payload: payload))
    }

    func bytesAndLayout() -> ([UInt8], Layout) {
        var layout = Layout()
        var b = magic + LE.u32(version) + LE.u64(UInt64(tensors.count)) + LE.u64(UInt64(kvs.count))
        layout.kvStart = b.count
        for kv in kvs { b += LE.str(kv.key) + LE.u32(kv.type) + kv.payload }
        layout.tensorInfoStart = b.count
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            b += LE.str(t.name) + LE.u32(UInt32(t.dimensions.count))
            for d in t.dimensions { b += LE.u64(d) }
            b += LE.u32(t.type) + LE.u64(t.offset ?? UInt64(offset))
            offset = pad(offset + t.data.count)
        }
        b += [UInt8](repeating: 0, count: pad(b.count) - b.count)
        layout.dataStart = b.count
        for (t, o) in zip(tensors, offsets) {
            layout.tensorDataStarts.append(layout.dataStart + o)
            b += [UInt8](repeating: 0, count: layout.dataStart + o - b.count) + t.data
        }
        return (b, layout)
    }

    func bytes() -> [UInt8] { bytesAndLayout().0 }

    private func pad(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

/// Asserts that `body` throws a `GGUFError` and hands it to `check`.
func assertGGUFError<T>(_ body: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line,
                        _ check: (GGUFError) -> Bool) {
    do {
        _ = try body()
        XCTFail("expected a GGUFError, got success", file: file, line: line)
    } catch let e as GGUFError {
        XCTAssertTrue(check(e), "unexpected error: \(e)", file: file, line: line)
        XCTAssertFalse(e.description.contains("\n"), "error description must be one line: \(e)", file: file, line: line)
    } catch {
        XCTFail("expected a GGUFError, got \(error)", file: file, line: line)
    }
}

/// The default model: $ALIGNSCOPE_MODEL, else <package root>/models/...; skips the test when absent.
func realModelPath() throws -> String {
    let path = ProcessInfo.processInfo.environment["ALIGNSCOPE_MODEL"]
        ?? packageRoot().appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    guard FileManager.default.fileExists(atPath: path) else {
        throw XCTSkip("model not found at \(path); run `make models`")
    }
    return path
}

func packageRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

func fixtureURL(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
}

/// A fresh temporary directory, removed at the end of the test.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

/// Compares two float sequences element by element and reports only the first difference
/// (XCTAssertEqual on whole arrays prints every element).
func assertSameFloats<A: Collection<Float>, B: Collection<Float>>(_ a: A, _ b: B, _ message: String = "",
                                                                  file: StaticString = #filePath, line: UInt = #line) {
    guard a.count == b.count else {
        XCTFail("\(message): counts differ, \(a.count) vs \(b.count)", file: file, line: line)
        return
    }
    for (i, (x, y)) in zip(a, b).enumerated() where x.bitPattern != y.bitPattern {
        XCTFail("\(message): first difference at index \(i): \(x) vs \(y)", file: file, line: line)
        return
    }
}
