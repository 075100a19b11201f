import Foundation
import RunStore
import XCTest
@testable import Reports

/// `export --format tensorboard` (issue 41): the framing and messages written by hand, read back by an independent reader
/// written here from the formats' definitions (TFRecord: length, masked CRC-32C, data, masked CRC-32C; protobuf's wire
/// format), against the store's own rows. TensorBoard's reader on the same files: scripts/check-tensorboard-export.py.
final class TensorBoardExportTests: XCTestCase {
    /// CRC-32C's check value (the CRC of "123456789" is 0xE3069283 for the Castagnoli polynomial), and the masking.
    func testCRC32CAndItsMask() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([]), 0)
        let c = CRC32C.checksum(Array("abc".utf8))
        XCTAssertEqual(CRC32C.masked(Array("abc".utf8)), ((c >> 15) | (c << 17)) &+ 0xA282_EAD8)
        XCTAssertEqual(EventProto.varint(300), [0xAC, 0x02])
        XCTAssertEqual(EventProto.varint(0), [0])
        XCTAssertEqual(EventProto.varint(UInt64(bitPattern: -1)).count, 10)
    }

    struct Event: Equatable {
        var wallTime: Double?
        var step: Int64 = 0
        var fileVersion: String?
        var tag: String?
        var value: Float?
    }

    /// Reads every record of an event file, checking both CRCs, and decodes the fields the export writes (failing on any
    /// other).
    func readEvents(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> [Event] {
        let bytes = [UInt8](try Data(contentsOf: url))
        var i = 0, events: [Event] = []
        func le<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            var v: T = 0
            for k in 0..<MemoryLayout<T>.size { v |= T(bytes[at + k]) << (8 * k) }
            return v
        }
        while i < bytes.count {
            let length = Int(le(i, UInt64.self))
            XCTAssertEqual(le(i + 8, UInt32.self), CRC32C.masked(Array(bytes[i..<i + 8])), "length CRC", file: file, line: line)
            let data = Array(bytes[i + 12..<i + 12 + length])
            XCTAssertEqual(le(i + 12 + length, UInt32.self), CRC32C.masked(data), "data CRC", file: file, line: line)
            i += 16 + length
            events.append(try decode(data))
        }
        return events
    }

    func decode(_ d: [UInt8]) throws -> Event {
        var e = Event(), i = 0
        func varint() -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                let b = d[i]; i += 1
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }
        func fixed<T: FixedWidthInteger>(_: T.Type) -> T {
            var v: T = 0
            for k in 0..<MemoryLayout<T>.size { v |= T(d[i + k]) << (8 * k) }
            i += MemoryLayout<T>.size
            return v
        }
        func sub(_ bytes: ArraySlice<UInt8>) throws {
            // Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 }
            var j = bytes.startIndex
            guard bytes[j] == 0x0A else { throw NSError(domain: "summary", code: 1) }
            j += 1
            var len = 0, shift = 0
            while true { let b = bytes[j]; j += 1; len |= Int(b & 0x7F) << shift; if b < 0x80 { break }; shift += 7 }
            let value = bytes[j..<j + len]
            var k = value.startIndex
            while k < value.endIndex {
                let key = value[k]; k += 1
                switch key {
                case 0x0A:
                    let n = Int(value[k]); k += 1
                    e.tag = String(decoding: value[k..<k + n], as: UTF8.self); k += n
                case 0x15:
                    var bits: UInt32 = 0
                    for q in 0..<4 { bits |= UInt32(value[k + q]) << (8 * q) }
                    e.value = Float(bitPattern: bits); k += 4
                default: throw NSError(domain: "value field \(key)", code: 2)
                }
            }
        }
        while i < d.count {
            let key = varint()
            switch key {
            case 0x09: e.wallTime = Double(bitPattern: fixed(UInt64.self))
            case 0x10: e.step = Int64(bitPattern: varint())
            case 0x1A:
                let n = Int(varint()); e.fileVersion = String(decoding: d[i..<i + n], as: UTF8.self); i += n
            case 0x2A:
                let n = Int(varint()); try sub(d[i..<i + n]); i += n
            default: throw NSError(domain: "event field \(key)", code: 3)
            }
        }
        return e
    }

    func testEveryMetricAndCategoryCurveIsAScalarOfItsRun() throws {
        let dir = try temporaryDirectory(self)
        let store = try SmallStore.make(at: dir + "/runs.sqlite")
        let out = URL(fileURLWithPath: dir).appendingPathComponent("tb")
        let files = try TensorBoardExport.write(store: store, run: nil, experiment: "exp", out: out.path)
        XCTAssertEqual(files.count, 4)
        let ids = try SmallStore.runIDs(store)
        for (file, id) in zip(files, ids) {
            let folder = out.appendingPathComponent(file.folder)
            let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            XCTAssertEqual(names.count, 1)
            XCTAssertTrue(names[0].hasPrefix("events.out.tfevents."), names[0])
            let events = try readEvents(folder.appendingPathComponent(names[0]))
            XCTAssertEqual(events.first?.fileVersion, "brain.Event:2")
            var got: [String: Float] = [:]
            for e in events.dropFirst() { got["\(e.tag!)@\(e.step)"] = e.value }
            var want: [String: Float] = [:]
            for row in try store.query("SELECT step, name, value FROM train_metrics WHERE run_id = ?", [.integer(id)]) {
                want["train/\(row[1].string! == "lr" ? "learning_rate" : row[1].string!)@\(row[0].int64!)"] = Float(row[2].double!)
            }
            for row in try store.query("SELECT step, split, category, mean_logprob, mean_token_logprob FROM category_curves WHERE run_id = ?", [.integer(id)]) {
                want["eval/\(row[1].string!)/\(row[2].string!)@\(row[0].int64!)"] = Float(row[3].double!)
                want["eval_per_token/\(row[1].string!)/\(row[2].string!)@\(row[0].int64!)"] = Float(row[4].double!)
            }
            XCTAssertEqual(got, want, file.run)
            XCTAssertEqual(file.scalars, want.count)
            XCTAssertTrue(got.keys.contains("train/loss@10") && got.keys.contains("eval/train/chosen@0"), "\(got.keys.sorted().prefix(5))")
        }
        // a folder that holds anything is refused, and nothing in it is touched
        XCTAssertThrowsError(try TensorBoardExport.write(store: store, run: nil, experiment: "exp", out: out.path)) { error in
            XCTAssertTrue("\(error)".contains("exists and is not empty"), "\(error)")
        }
        XCTAssertThrowsError(try TensorBoardExport.write(store: store, run: "nope", experiment: nil, out: dir + "/tb2")) { error in
            XCTAssertTrue("\(error)".contains("no run \"nope\""), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/tb2"))
        // one run, by name; the same bytes as in the experiment's export
        let one = try TensorBoardExport.write(store: store, run: files[1].run, experiment: nil, out: dir + "/tb3")
        XCTAssertEqual(one.map(\.folder), [files[1].folder])
        let a = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent(files[1].folder).path)[0]
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(files[1].folder).appendingPathComponent(a)),
                       try Data(contentsOf: URL(fileURLWithPath: dir + "/tb3/\(files[1].folder)/\(a)")))
    }
}
