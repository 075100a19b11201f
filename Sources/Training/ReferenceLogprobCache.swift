import Base
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
        let key = SHA256.hex(Array(model.utf8) + [0] + Array(data.utf8))
        return (directory as NSString).appendingPathComponent("reflogps-" + key.prefix(16) + ".bin")
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
        return try bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            func malformed(_ expected: String) -> ReferenceCacheError {
                .malformed(path: file, offset: r.offset, expected: expected)
            }
            func string(_ what: String) throws -> String {
                guard let n = r.read(UInt32.self) else { throw malformed("length of " + what) }
                let start = r.offset
                guard let b = r.bytes(Int(n)) else { throw malformed(what) }
                guard let s = String(validating: b, as: UTF8.self) else {
                    throw ReferenceCacheError.malformed(path: file, offset: start, expected: "UTF-8 " + what)
                }
                return s
            }
            guard let magic = r.bytes(8), magic.elementsEqual("ASREFLP1".utf8) else {
                throw ReferenceCacheError.malformed(path: file, offset: 0, expected: "magic ASREFLP1")
            }
            let m = try string("model identity"), d = try string("data identity")
            guard m == model && d == data else {
                throw ReferenceCacheError.keyMismatch(path: file, expected: "(\(model), \(data))", found: "(\(m), \(d))")
            }
            guard let count = r.read(UInt64.self) else { throw malformed("value count") }
            guard count <= UInt64(r.remaining) / 8 else { throw malformed("\(count) Float64 values") }
            var values: [Double] = []
            values.reserveCapacity(Int(count))
            for _ in 0..<count { values.append(Double(bitPattern: r.read(UInt64.self)!)) }
            guard r.remaining == 0 else { throw malformed("end of file") }
            return values
        }
    }

    /// Stores `values` for (model, data), replacing any stored ones; creates `directory` if needed.
    public func save(_ values: [Double], model: String, data: String) throws {
        let file = path(model: model, data: data)
        var out = ByteWriter()
        out.append(contentsOf: "ASREFLP1".utf8)
        for s in [model, data] {
            out.append(UInt32(s.utf8.count))
            out.append(contentsOf: s.utf8)
        }
        out.append(UInt64(values.count))
        for v in values { out.append(v.bitPattern) }
        do {
            try AtomicFile.write(out.bytes, to: file, createFolders: true)
        } catch {
            throw ReferenceCacheError.unwritable(path: file, reason: error.reason)
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
