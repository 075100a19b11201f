import Foundation

/// A failure reading or writing a reference log-probability cache file.
public enum ReferenceCacheError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    /// The file is not a cache file, or ends early: `expected` names what was due at byte `offset`.
    case malformed(path: String, offset: Int, expected: String)
    /// The file at the path of one key holds another key (a hash collision or a copied file).
    case keyMismatch(path: String, expected: String, found: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read reference log-probabilities: \(reason)"
        case let .unwritable(path, reason): return "\(path): cannot write reference log-probabilities: \(reason)"
        case let .malformed(path, offset, expected): return "\(path): at byte \(offset): expected \(expected)"
        case let .keyMismatch(path, expected, found): return "\(path): holds key \(found), expected \(expected)"
        }
    }
}

/// Reference log-probabilities computed once per (reference model, training set) and kept on disk, one file
/// per key in `directory`. The key is two identity strings chosen by the caller (e.g. the sha256 of the
/// reference weights and of the packed training pairs); the file name is a hash of both, and the file repeats
/// them so a load can verify it. Files are written atomically (temporary file, then rename), so concurrent
/// runs never see half a file.
///
/// File layout (little-endian): magic "ASREFLP1" (8 bytes); UInt32 n, n bytes UTF-8 model identity;
/// UInt32 n, n bytes UTF-8 data identity; UInt64 count; count Float64 values (per sequence: chosen, rejected
/// of pair 0, then pair 1, ...).
public struct ReferenceLogprobCache: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The file that holds the values of (model, data).
    public func path(model: String, data: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in Array(model.utf8) + [0] + Array(data.utf8) {
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return (directory as NSString).appendingPathComponent("reflogps-" + String(repeating: "0", count: 16 - hex.count) + hex + ".bin")
    }

    /// The stored values of (model, data), or nil when none are stored.
    public func load(model: String, data: String) throws -> [Double]? {
        let file = path(model: model, data: data)
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        } catch {
            throw ReferenceCacheError.unreadable(path: file, reason: "\(error.localizedDescription)")
        }
        var r = ByteReader(bytes: bytes, path: file)
        guard try r.take(8, "magic ASREFLP1").elementsEqual("ASREFLP1".utf8) else {
            throw ReferenceCacheError.malformed(path: file, offset: 0, expected: "magic ASREFLP1")
        }
        let m = try r.string("model identity"), d = try r.string("data identity")
        guard m == model && d == data else {
            throw ReferenceCacheError.keyMismatch(path: file, expected: "(\(model), \(data))", found: "(\(m), \(d))")
        }
        let count = try r.uint(8, "value count")
        guard count <= UInt64(bytes.count - r.offset) / 8 else {
            throw ReferenceCacheError.malformed(path: file, offset: r.offset, expected: "\(count) Float64 values")
        }
        var values: [Double] = []
        values.reserveCapacity(Int(count))
        for _ in 0..<count { values.append(Double(bitPattern: try r.uint(8, "Float64 value"))) }
        guard r.offset == bytes.count else {
            throw ReferenceCacheError.malformed(path: file, offset: r.offset, expected: "end of file")
        }
        return values
    }

    /// Stores `values` for (model, data), replacing any stored ones; creates `directory` if needed.
    public func save(_ values: [Double], model: String, data: String) throws {
        let file = path(model: model, data: data)
        var out = Array("ASREFLP1".utf8)
        for s in [model, data] {
            let u = Array(s.utf8)
            append(UInt64(u.count), bytes: 4, to: &out)
            out += u
        }
        append(UInt64(values.count), bytes: 8, to: &out)
        out.reserveCapacity(out.count + 8 * values.count)
        for v in values { append(v.bitPattern, bytes: 8, to: &out) }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(out).write(to: URL(fileURLWithPath: file), options: .atomic)
        } catch {
            throw ReferenceCacheError.unwritable(path: file, reason: "\(error.localizedDescription)")
        }
    }

    /// The stored values of (model, data); when none are stored, `compute()` once and store its result.
    public func values(model: String, data: String, compute: () throws -> [Double]) throws -> [Double] {
        if let v = try load(model: model, data: data) { return v }
        let v = try compute()
        try save(v, model: model, data: data)
        return v
    }
}

private func append(_ x: UInt64, bytes: Int, to out: inout [UInt8]) {
    for i in 0..<bytes { out.append(UInt8(truncatingIfNeeded: x >> (8 * UInt64(i)))) }
}

private struct ByteReader {
    let bytes: [UInt8]
    let path: String
    var offset = 0

    mutating func take(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
        guard n <= bytes.count - offset else {
            throw ReferenceCacheError.malformed(path: path, offset: offset, expected: what)
        }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    mutating func uint(_ n: Int, _ what: String) throws -> UInt64 {
        try take(n, what).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func string(_ what: String) throws -> String {
        let n = Int(try uint(4, "length of " + what))
        let start = offset
        guard let s = String(bytes: try take(n, what), encoding: .utf8) else {
            throw ReferenceCacheError.malformed(path: path, offset: start, expected: "UTF-8 " + what)
        }
        return s
    }
}
