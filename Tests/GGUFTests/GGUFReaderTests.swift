import XCTest
@testable import GGUF

final class GGUFReaderTests: XCTestCase {
    /// Every scalar type, strings, arrays of every element type, nested arrays of mixed inner types.
    static let allValues: [(String, GGUFValue)] = [
        ("t.u8", .uint8(200)), ("t.i8", .int8(-100)), ("t.u16", .uint16(60000)), ("t.i16", .int16(-30000)),
        ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)),
        ("t.u64", .uint64(18_000_000_000_000_000_000)), ("t.i64", .int64(-9_000_000_000_000_000_000)),
        ("t.f32", .float32(3.25)), ("t.f64", .float64(-1e300)), ("t.true", .bool(true)), ("t.false", .bool(false)),
        ("t.str", .string("héllo, 世界 🙂")), ("t.empty_str", .string("")),
        ("t.arr.u8", .array([.uint8(1), .uint8(2)])), ("t.arr.i8", .array([.int8(-1)])),
        ("t.arr.u16", .array([.uint16(7)])), ("t.arr.i16", .array([.int16(-7)])),
        ("t.arr.u32", .array([.uint32(1), .uint32(2), .uint32(3)])), ("t.arr.i32", .array([.int32(-5), .int32(5)])),
        ("t.arr.u64", .array([.uint64(1 << 40)])), ("t.arr.i64", .array([.int64(-(1 << 40))])),
        ("t.arr.f32", .array([.float32(0.5), .float32(-0.25)])), ("t.arr.f64", .array([.float64(1e-300)])),
        ("t.arr.bool", .array([.bool(true), .bool(false)])), ("t.arr.str", .array([.string("a"), .string(""), .string("Ġthe")])),
        ("t.arr.empty", .array([])),
        ("t.arr.nested", .array([.array([.int32(1), .int32(2)]), .array([.string("x")]), .array([])])),
        ("t.arr.deep", .array([.array([.array([.float32(1.5)])])])),
    ]

    func testWriterRoundTripEveryMetadataTypeAndTensor() throws {
        var w = GGUFWriter()
        for (k, v) in Self.allValues { w.set(k, v) }
        let a: [Float] = [1, -2, 3.5, 0, 1e-8, -7e7]
        let b: [Float] = (0..<40).map { Float($0) * 0.25 - 3 }  // exact in f16
        w.addTensor("a", dimensions: [3, 2], type: .f32, data: a)
        w.addTensor("b", dimensions: [40], type: .f16, data: b)
        let f = try GGUFFile(bytes: w.serialized(), name: "mem.gguf")

        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.metadataKeys, Self.allValues.map(\.0))
        for (k, v) in Self.allValues { XCTAssertEqual(f.metadata[k], v, k) }
        XCTAssertEqual(f.alignment, 32)
        XCTAssertNil(f.metadata[GGUFKeys.alignment])
        XCTAssertEqual(f.tensors.map(\.name), ["a", "b"])
        XCTAssertEqual(f.tensors[0].dimensions, [3, 2])
        XCTAssertEqual(f.tensors[0].shape, [2, 3])
        XCTAssertEqual(f.tensors[0].type, .f32)
        XCTAssertEqual(f.tensors[1].type, .f16)
        XCTAssertEqual(f.tensors[1].byteCount, 80)
        XCTAssertEqual(try f.floats("a"), a)
        XCTAssertEqual(try f.floats("b"), b)
        XCTAssertEqual(f.dataOffset % 32, 0)
        for t in f.tensors { XCTAssertEqual(t.offset % 32, 0) }
    }

    func testCustomAlignmentIsWrittenAndHonoured() throws {
        var w = GGUFWriter(alignment: 64)
        w.set("x", .string("abc"))
        w.addTensor("t1", dimensions: [3], type: .f32, data: [1, 2, 3])
        w.addTensor("t2", dimensions: [5], type: .f16, data: [1, 2, 3, 4, 5])
        let bytes = try w.serialized()
        let f = try GGUFFile(bytes: bytes, name: "mem.gguf")
        XCTAssertEqual(f.alignment, 64)
        XCTAssertEqual(f.metadata[GGUFKeys.alignment], .uint32(64))
        XCTAssertEqual(f.dataOffset % 64, 0)
        XCTAssertEqual(f.tensors.map(\.offset), [0, 64])
        XCTAssertEqual(bytes.count, f.dataOffset + 128)  // each tensor padded to 64
        XCTAssertEqual(try f.floats("t2"), [1, 2, 3, 4, 5])
    }

    /// A version 2 file built byte by byte (not by our writer), with a non-default alignment.
    func testReadsHandBuiltVersion2File() throws {
        var raw = RawGGUF()
        raw.version = 2
        raw.alignment = 16
        raw.kv("general.alignment", 4, LE.u32(16))
        raw.kv("general.architecture", 8, LE.str("llama"))
        raw.kv("v.u16s", 9, LE.u32(2) + LE.u64(3) + LE.u16(1) + LE.u16(2) + LE.u16(65535))
        raw.kv("v.bool", 7, [1])
        raw.kv("v.f64", 12, LE.u64((0.125 as Double).bitPattern))
        raw.kv("v.nested", 9, LE.u32(9) + LE.u64(2) + LE.u32(8) + LE.u64(1) + LE.str("q") + LE.u32(1) + LE.u64(2) + [0xff, 0x01])
        raw.tensors = [
            .init(name: "w", dimensions: [2, 3], type: 0, data: [Float](arrayLiteral: 1, 2, 3, 4, 5, 6).flatMap(LE.f32)),
            .init(name: "n", dimensions: [3], type: 0, data: [Float](arrayLiteral: -1, -2, -3).flatMap(LE.f32)),
        ]
        let (bytes, layout) = raw.bytesAndLayout()
        let f = try GGUFFile(bytes: bytes, name: "v2.gguf")
        XCTAssertEqual(f.version, 2)
        XCTAssertEqual(f.alignment, 16)
        XCTAssertEqual(f.dataOffset, layout.dataStart)
        XCTAssertEqual(try f.string("general.architecture"), "llama")
        XCTAssertEqual(f.metadata["v.u16s"], .array([.uint16(1), .uint16(2), .uint16(65535)]))
        XCTAssertEqual(try f.ints("v.u16s"), [1, 2, 65535])
        XCTAssertEqual(try f.bool("v.bool"), true)
        XCTAssertEqual(try f.double("v.f64"), 0.125)
        XCTAssertEqual(f.metadata["v.nested"], .array([.array([.string("q")]), .array([.int8(-1), .int8(1)])]))
        XCTAssertEqual(f.tensors.map(\.offset), [0, 32])
        XCTAssertEqual(try f.floats("w"), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try f.floats("n"), [-1, -2, -3])
    }

    func testWriteToFileIsAtomicAndReadable() throws {
        let dir = try temporaryDirectory(self)
        let path = dir.appendingPathComponent("out.gguf").path
        var w = GGUFWriter()
        w.set("k", .uint32(1))
        w.addTensor("t", dimensions: [4], type: .f32, data: [1, 2, 3, 4])
        try w.write(to: path)
        try w.write(to: path)  // overwriting works
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["out.gguf"])
        let f = try GGUFFile(path: path)
        XCTAssertEqual(try f.floats("t"), [1, 2, 3, 4])
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), try w.serialized())

        assertGGUFError(try w.write(to: dir.appendingPathComponent("no/such/dir.gguf").path)) {
            if case .writeFailed = $0 { return true } else { return false }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["out.gguf"])
    }

    func testWriterRejectsHeterogeneousArray() {
        var w = GGUFWriter()
        w.set("bad", .array([.int32(1), .string("x")]))
        assertGGUFError(try w.serialized()) {
            if case let .invalidWrite(_, reason) = $0 { return reason.contains("bad") } else { return false }
        }
    }

    func testTypedAccessorsNameTheKey() throws {
        var w = GGUFWriter()
        w.set("s", .string("x"))
        w.set("i", .int32(-3))
        let f = try GGUFFile(bytes: w.serialized(), name: "mem.gguf")
        XCTAssertEqual(try f.int("i"), -3)
        assertGGUFError(try f.string("nope")) { $0 == .missingKey(file: "mem.gguf", key: "nope") }
        assertGGUFError(try f.int("s")) {
            if case let .wrongValueType(file, key, _, found) = $0 { return file == "mem.gguf" && key == "s" && found == "string" }
            return false
        }
        assertGGUFError(try f.floats("missing.weight")) { $0 == .missingTensor(file: "mem.gguf", tensor: "missing.weight") }
        XCTAssertEqual(GGUFError.missingKey(file: "m.gguf", key: "llama.block_count").description,
                       "m.gguf: missing metadata key 'llama.block_count'")
    }
}
