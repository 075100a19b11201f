import XCTest
@testable import GGUF

/// Every malformed file must give a specific `GGUFError` (never a crash), naming the place.
final class GGUFCorruptFileTests: XCTestCase {
    /// A small valid file: two metadata entries and two tensors.
    func validRaw() -> RawGGUF {
        var raw = RawGGUF()
        raw.kv("general.architecture", 8, LE.str("llama"))
        raw.kv("list", 9, LE.u32(5) + LE.u64(3) + LE.u32(1) + LE.u32(2) + LE.u32(3))
        raw.tensors = [
            .init(name: "first", dimensions: [4], type: 0, data: [Float](repeating: 1, count: 4).flatMap(LE.f32)),
            .init(name: "second", dimensions: [8], type: 0, data: [Float](repeating: 2, count: 8).flatMap(LE.f32)),
        ]
        return raw
    }

    func testValidBaseFileOpens() throws {
        let f = try GGUFFile(bytes: validRaw().bytes(), name: "ok.gguf")
        XCTAssertEqual(try f.floats("second"), [Float](repeating: 2, count: 8))
    }

    func testBadMagic() {
        var raw = validRaw()
        raw.magic = Array("GGML".utf8)
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "bad.gguf")) {
            if case let .badMagic(file, found) = $0 { return file == "bad.gguf" && found == 0x4c4d_4747 } else { return false }
        }
        XCTAssertTrue(GGUFError.badMagic(file: "bad.gguf", found: 0x4c4d_4747).description.contains("bad.gguf"))
    }

    func testUnsupportedVersions() {
        for version: UInt32 in [0, 1, 4, 0x0300_0000] {
            var raw = validRaw()
            raw.version = version
            assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "v.gguf")) {
                $0 == .unsupportedVersion(file: "v.gguf", version: version)
            }
        }
    }

    /// Cutting the file anywhere in the header gives `truncated` at the right offset; cutting it in
    /// the data section gives `offsetBeyondFile` naming the tensor.
    func testTruncatedAtSeveralOffsets() {
        let (bytes, layout) = validRaw().bytesAndLayout()
        let t = layout.tensorInfoStart
        // (cut length, offset of the field or list that breaks). A list whose minimum size no longer
        // fits breaks at its start, before any item is read.
        let headerCuts: [(Int, Int)] = [
            (0, 0), (2, 0), (4, 4), (7, 4), (8, 8), (20, 16),
            (layout.kvStart + 4, layout.kvStart),  // 2 entries need at least 26 bytes
            (layout.kvStart + 27, layout.kvStart + 8),  // inside the first key's 20 bytes
            (t - 3, t - 12),  // inside the 3-item uint32 array
            (t + 10, t),  // 2 tensor infos need at least 64 bytes
            (t + 70, t + 67),  // inside the second tensor's data offset
        ]
        for (cut, offset) in headerCuts {
            assertGGUFError(try GGUFFile(bytes: Array(bytes[0..<cut]), name: "cut.gguf")) {
                if case let .truncated(file, at, _, _, _) = $0 { return file == "cut.gguf" && at == offset } else { return false }
            }
        }
        for (cut, tensor) in [(layout.dataStart, "first"), (layout.tensorDataStarts[1] + 31, "second")] {
            assertGGUFError(try GGUFFile(bytes: Array(bytes[0..<cut]), name: "cut.gguf")) {
                if case let .offsetBeyondFile(_, name, _, _, size) = $0 { return name == tensor && size == cut } else { return false }
            }
        }
        // Every possible cut fails cleanly (no crash), and the full file opens.
        for cut in 0..<bytes.count {
            XCTAssertThrowsError(try GGUFFile(bytes: Array(bytes[0..<cut]), name: "cut.gguf"), "cut at \(cut)")
        }
        XCTAssertNoThrow(try GGUFFile(bytes: bytes, name: "cut.gguf"))
    }

    func testTensorOffsetBeyondFile() {
        var raw = validRaw()
        raw.tensors[1].offset = 1 << 40
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "far.gguf")) {
            if case let .offsetBeyondFile(file, tensor, _, size, _) = $0 { return file == "far.gguf" && tensor == "second" && size == 32 }
            return false
        }
        raw.tensors[1].offset = UInt64.max - 31  // aligned, and start + size overflows
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "far.gguf")) {
            if case .offsetBeyondFile(_, "second", _, _, _) = $0 { return true } else { return false }
        }
    }

    func testMisalignedTensorOffset() {
        var raw = validRaw()
        raw.tensors[1].offset = 20
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "m.gguf")) {
            $0 == .misalignedTensorOffset(file: "m.gguf", tensor: "second", offset: 20, alignment: 32)
        }
    }

    func testUnknownTensorTypeIdFailsAtOpen() {
        var raw = validRaw()
        raw.tensors[0].type = 99
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "t.gguf")) {
            $0 == .unknownTensorType(file: "t.gguf", tensor: "first", type: 99)
        }
    }

    /// A known type without a dequantiser (Q4_K) opens, and fails only when dequantised, naming both.
    func testUnsupportedTensorTypeFailsOnDequantise() throws {
        var raw = validRaw()
        raw.tensors.append(.init(name: "blk.0.ffn_down.weight", dimensions: [256, 2], type: 12, data: [UInt8](repeating: 0, count: 2 * 144)))
        let f = try GGUFFile(bytes: raw.bytes(), name: "q.gguf")
        XCTAssertEqual(f.tensorInfo("blk.0.ffn_down.weight")?.type, .q4_K)
        assertGGUFError(try f.floats("blk.0.ffn_down.weight")) {
            $0 == .unsupportedTensorType(file: "q.gguf", tensor: "blk.0.ffn_down.weight", type: "Q4_K")
        }
        let message = GGUFError.unsupportedTensorType(file: "q.gguf", tensor: "blk.0.ffn_down.weight", type: "Q4_K").description
        XCTAssertTrue(message.contains("Q4_K") && message.contains("blk.0.ffn_down.weight") && message.contains("q.gguf"), message)
    }

    func testBlockSizeMustDivideFirstDimension() {
        var raw = validRaw()
        raw.tensors[0] = .init(name: "q", dimensions: [16], type: 8, data: [UInt8](repeating: 0, count: 34))
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "b.gguf")) {
            if case .invalidTensorDimensions(_, "q", [16], _) = $0 { return true } else { return false }
        }
    }

    func testBadDimensionCounts() {
        for dims: [UInt64] in [[], [1, 1, 1, 1, 1]] {
            var raw = validRaw()
            raw.tensors[0].dimensions = dims
            assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "d.gguf")) {
                if case .invalidTensorDimensions(_, "first", _, _) = $0 { return true } else { return false }
            }
        }
        var raw = validRaw()
        raw.tensors[0].dimensions = [1 << 40, 1 << 40]
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "d.gguf")) {
            if case .invalidTensorDimensions(_, "first", _, let reason) = $0 { return reason.contains("overflow") } else { return false }
        }
    }

    func testHugeCountsAreRejectedBeforeAllocating() {
        var raw = validRaw()
        raw.kvs[1].payload = LE.u32(5) + LE.u64(1 << 60)
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "h.gguf")) {
            if case let .truncated(_, _, needed, _, what) = $0 { return needed == 1 << 62 && what.contains("list") } else { return false }
        }
        var bytes = validRaw().bytes()
        bytes.replaceSubrange(8..<16, with: LE.u64(UInt64.max))  // tensor count
        assertGGUFError(try GGUFFile(bytes: bytes, name: "h.gguf")) {
            if case let .truncated(_, _, needed, _, what) = $0 { return needed == Int.max && what.contains("tensor") } else { return false }
        }
        bytes = validRaw().bytes()
        bytes.replaceSubrange(16..<24, with: LE.u64(1 << 50))  // metadata count
        assertGGUFError(try GGUFFile(bytes: bytes, name: "h.gguf")) {
            if case .truncated(_, 24, _, _, _) = $0 { return true } else { return false }
        }
        raw = validRaw()
        raw.kvs[0].payload = LE.u64(1 << 62) + Array("llama".utf8)  // string length
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "h.gguf")) {
            if case let .truncated(_, _, needed, _, _) = $0 { return needed == 1 << 62 } else { return false }
        }
    }

    func testInvalidMetadataValues() {
        var raw = validRaw()
        raw.kvs[0].type = 13
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "x.gguf")) {
            if case .invalidValueType(_, _, "general.architecture", 13) = $0 { return true } else { return false }
        }
        raw = validRaw()
        raw.kvs[1].payload = LE.u32(42) + LE.u64(1) + [0]
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "x.gguf")) {
            if case .invalidValueType(_, _, "list", 42) = $0 { return true } else { return false }
        }
        raw = validRaw()
        raw.kvs[0].payload = LE.u64(2) + [0xc3, 0x28]  // invalid UTF-8
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "x.gguf")) {
            if case .invalidString = $0 { return true } else { return false }
        }
        raw = validRaw()
        raw.kv("flag", 7, [2])
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "x.gguf")) {
            if case .invalidMetadata(_, "flag", _) = $0 { return true } else { return false }
        }
        raw = validRaw()
        raw.kv("general.architecture", 8, LE.str("again"))
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "x.gguf")) { $0 == .duplicateKey(file: "x.gguf", key: "general.architecture") }
        raw = validRaw()
        raw.tensors[1].name = "first"
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "x.gguf")) { $0 == .duplicateTensor(file: "x.gguf", tensor: "first") }
    }

    func testInvalidAlignment() {
        for (type, payload) in [(UInt32(4), LE.u32(24)), (4, LE.u32(0)), (10, LE.u64(32))] {
            var raw = validRaw()
            raw.kv("general.alignment", type, payload)
            assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "a.gguf")) {
                if case .invalidAlignment = $0 { return true } else { return false }
            }
        }
    }

    func testDeeplyNestedArraysAreRejected() {
        var raw = validRaw()
        var payload: [UInt8] = []
        for _ in 0..<100 { payload += LE.u32(9) + LE.u64(1) }
        payload += LE.u32(0) + LE.u64(0)
        raw.kv("deep", 9, payload)
        assertGGUFError(try GGUFFile(bytes: raw.bytes(), name: "n.gguf")) {
            if case let .invalidMetadata(_, key, _) = $0 { return key.hasPrefix("deep") } else { return false }
        }
    }

    func testMissingAndEmptyFiles() throws {
        assertGGUFError(try GGUFFile(path: "/nonexistent/x.gguf")) {
            if case .cannotOpen(file: "/nonexistent/x.gguf", _) = $0 { return true } else { return false }
        }
        let dir = try temporaryDirectory(self)
        let empty = dir.appendingPathComponent("empty.gguf").path
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        assertGGUFError(try GGUFFile(path: empty)) { $0 == .truncated(file: empty, offset: 0, needed: 4, available: 0, what: "magic") }
    }
}
