import Base
import XCTest
@testable import GGUF

/// Blocks built byte by byte; expected values are worked out by hand from the block formulas.
final class DequantizeTests: XCTestCase {
    /// One tensor of `type` with `count` elements and the given raw bytes, read back as floats.
    func decode(type: UInt32, count: Int, _ data: [UInt8]) throws -> [Float] {
        var raw = RawGGUF()
        raw.tensors = [.init(name: "t", dimensions: [UInt64(count)], type: type, data: data)]
        return try GGUFFile(bytes: raw.bytes(), name: "q.gguf").floats("t")
    }

    func testF16KnownBitPatterns() throws {
        let cases: [(UInt16, Float)] = [
            (0x3c00, 1), (0xc000, -2), (0x3800, 0.5), (0x7bff, 65504), (0x0001, 0x1p-24), (0x03ff, 1023 * 0x1p-24),
            (0x0400, 0x1p-14), (0x3555, 0.333251953125), (0x0000, 0), (0x7c00, .infinity), (0xfc00, -.infinity),
        ]
        let got = try decode(type: 1, count: cases.count, cases.flatMap { LE.u16($0.0) })
        XCTAssertEqual(got, cases.map(\.1))
        let negZero = try decode(type: 1, count: 1, LE.u16(0x8000))[0]
        XCTAssertTrue(negZero == 0 && negZero.sign == .minus)
        XCTAssertTrue(try decode(type: 1, count: 1, LE.u16(0x7e00))[0].isNaN)
    }

    func testBF16KnownBitPatterns() throws {
        let cases: [(UInt16, Float)] = [(0x3f80, 1), (0xc040, -3), (0x4049, 3.140625), (0x0000, 0), (0x3e80, 0.25), (0x7f80, .infinity)]
        XCTAssertEqual(try decode(type: 30, count: cases.count, cases.flatMap { LE.u16($0.0) }), cases.map(\.1))
    }

    func testQ8_0TwoBlocks() throws {
        // block 0: d = 0.5 (f16 0x3800), q_j = j - 16; block 1: d = -2 (0xc000), q = -128, 127, 0, ...
        var bytes = LE.u16(0x3800) + (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) }
        bytes += LE.u16(0xc000) + [0x80, 0x7f] + [UInt8](repeating: 0, count: 30)
        let got = try decode(type: 8, count: 64, bytes)
        let expected = (0..<32).map { Float($0 - 16) * 0.5 } + [256, -254] + [Float](repeating: 0, count: 30)
        XCTAssertEqual(got, expected)
    }

    func testQ4_0LowNibblesFirst() throws {
        // d = 2 (0x4000); byte j holds low nibble j and high nibble 15 - j.
        // element j = (j - 8) * 2, element 16 + j = (15 - j - 8) * 2.
        let bytes = LE.u16(0x4000) + (0..<16).map { UInt8($0 | ((15 - $0) << 4)) }
        let got = try decode(type: 2, count: 32, bytes)
        let low: [Float] = (0..<16).map { Float($0 - 8) * 2 }
        let high: [Float] = (0..<16).map { Float(7 - $0) * 2 }
        let expected = low + high
        XCTAssertEqual(got, expected)
        XCTAssertEqual(got[0], -16)
        XCTAssertEqual(got[16], 14)
        XCTAssertEqual(got[31], -16)
    }

    func testQ4_1ScaleAndMin() throws {
        // d = 0.5 (0x3800), m = -1.5 (0xbe00); byte j: low nibble j, high nibble 15 - j.
        // element j = j * 0.5 - 1.5, element 16 + j = (15 - j) * 0.5 - 1.5. Second block: d = 1, m = 0.25, bytes 0x21.
        var bytes = LE.u16(0x3800) + LE.u16(0xbe00) + (0..<16).map { UInt8($0 | ((15 - $0) << 4)) }
        bytes += LE.u16(0x3c00) + LE.u16(0x3400) + [UInt8](repeating: 0x21, count: 16)
        let got = try decode(type: 3, count: 64, bytes)
        let low: [Float] = (0..<16).map { Float($0) * 0.5 - 1.5 }
        let high: [Float] = (0..<16).map { Float(15 - $0) * 0.5 - 1.5 }
        var expected = low + high
        expected += [Float](repeating: 1.25, count: 16) + [Float](repeating: 2.25, count: 16)
        XCTAssertEqual(got, expected)
        XCTAssertEqual(got[0], -1.5)
        XCTAssertEqual(got[16], 6)
    }

    /// A tensor big enough to be split over two threads decodes exactly as block-by-block.
    func testParallelDequantisationMatchesSerial() throws {
        let blocks = (1 << 20) / 32 + 3  // odd block count: unequal halves
        var bytes: [UInt8] = []
        bytes.reserveCapacity(blocks * 34)
        var expected: [Float] = []
        expected.reserveCapacity(blocks * 32)
        for b in 0..<blocks {
            let scaleBits: UInt16 = 0x3c00 + UInt16(b % 64)  // 1 + (b % 64) / 1024
            let scale = 1 + Float(b % 64) / 1024
            bytes += LE.u16(scaleBits)
            for j in 0..<32 {
                let q = Int8(truncatingIfNeeded: b &* 31 &+ j &* 7)
                bytes.append(UInt8(bitPattern: q))
                expected.append(Float(q) * scale)
            }
        }
        XCTAssertEqual(try decode(type: 8, count: blocks * 32, bytes), expected)
    }

    func testHalfConversionsRoundTripAndRound() {
        for h in UInt16.min...UInt16.max {
            let f = Half.toFloat(h)
            if f.isNaN { continue }
            XCTAssertEqual(Half.fromFloat(f), h, "half 0x\(String(h, radix: 16))")
        }
        // Ties go to even; overflow goes to infinity; tiny values to (signed) zero.
        XCTAssertEqual(Half.fromFloat(1 + 0x1p-11), 0x3c00)  // halfway between 1 and 1 + 2^-10: even is 1
        XCTAssertEqual(Half.fromFloat(1 + 3 * 0x1p-11), 0x3c02)  // halfway, rounds up to even
        XCTAssertEqual(Half.fromFloat(1 + 0x1p-11 + 0x1p-20), 0x3c01)  // just above halfway
        XCTAssertEqual(Half.fromFloat(65520), 0x7c00)  // rounds up to infinity
        XCTAssertEqual(Half.fromFloat(65519), 0x7bff)
        XCTAssertEqual(Half.fromFloat(0x1p-25), 0x0000)  // halfway to the smallest subnormal: even is 0
        XCTAssertEqual(Half.fromFloat(0x1p-25 * 1.5), 0x0001)
        XCTAssertEqual(Half.fromFloat(-0x1p-30), 0x8000)
        XCTAssertEqual(Half.fromFloat(.infinity), 0x7c00)
        XCTAssertTrue(Half.toFloat(Half.fromFloat(.nan)).isNaN)
    }

    #if !(os(macOS) && arch(x86_64))
    /// Cross-check against the platform's own Float16 where it exists.
    func testHalfConversionsMatchFloat16() {
        for h in UInt16.min...UInt16.max {
            let mine = Half.toFloat(h), platform = Float(Float16(bitPattern: h))
            XCTAssertTrue(mine.bitPattern == platform.bitPattern || (mine.isNaN && platform.isNaN), "0x\(String(h, radix: 16))")
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200_000 {
            let f = Float(bitPattern: rng.next())
            if f.isNaN { continue }
            XCTAssertEqual(Half.fromFloat(f), Float16(f).bitPattern, "\(f)")
        }
    }
    #endif
}
