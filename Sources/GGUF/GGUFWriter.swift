import Base
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Storage type of a tensor written by `GGUFWriter`.
public enum GGUFFloatType: String, Sendable, Codable, CaseIterable {
    case f32, f16

    var ggmlType: GGMLType { self == .f32 ? .f32 : .f16 }
}

/// Builds a GGUF version 3 file: metadata and tensors in the order they were added, each tensor's
/// data aligned to `alignment` (written as `general.alignment` when it is not the default 32).
public struct GGUFWriter {
    /// Where a tensor's floats come from at write time: an owned array, or a buffer lent by a closure
    /// (so that exporting a model does not copy its parameters first).
    enum Source {
        case array([Float])
        case borrowed((_ body: (UnsafeBufferPointer<Float>) throws -> Void) throws -> Void)
    }

    struct Tensor {
        var name: String
        var dimensions: [Int]
        var type: GGUFFloatType
        var source: Source
        var elementCount: Int { dimensions.reduce(1, *) }
        var byteCount: Int { elementCount * type.ggmlType.blockLayout.bytes }
    }

    public let alignment: Int
    private(set) var entries: [(key: String, value: GGUFValue)] = []
    private(set) var tensors: [Tensor] = []

    /// `alignment` must be a power of two.
    public init(alignment: Int = 32) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0 && alignment <= Int(UInt32.max),
                     "GGUF alignment must be a power of two, got \(alignment)")
        self.alignment = alignment
        if alignment != GGUFFormat.defaultAlignment {
            entries.append((GGUFKeys.alignment, .uint32(UInt32(alignment))))
        }
    }

    /// Sets a metadata value; setting a key again replaces the value in place.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        precondition(key != GGUFKeys.alignment || value == .uint32(UInt32(alignment)),
                     "set the alignment through GGUFWriter(alignment:)")
        if let i = entries.firstIndex(where: { $0.key == key }) {
            entries[i].value = value
        } else {
            entries.append((key, value))
        }
    }

    /// Adds a tensor. `dimensions` are in GGML order (ne0, fastest varying, first): a row-major
    /// `[out, in]` matrix has `dimensions == [in, out]`. `data.count` must equal their product.
    public mutating func addTensor(_ name: String, dimensions: [Int], type: GGUFFloatType, data: [Float]) {
        precondition(data.count == dimensions.reduce(1, *), "tensor \(name): \(data.count) values for dimensions \(dimensions)")
        append(Tensor(name: name, dimensions: dimensions, type: type, source: .array(data)))
    }

    /// Adds a tensor whose floats are lent by `provide` at write time (it must pass a buffer of exactly
    /// the element count to its argument).
    mutating func addTensor(_ name: String, dimensions: [Int], type: GGUFFloatType,
                            provide: @escaping ((UnsafeBufferPointer<Float>) throws -> Void) throws -> Void) {
        append(Tensor(name: name, dimensions: dimensions, type: type, source: .borrowed(provide)))
    }

    private mutating func append(_ t: Tensor) {
        precondition((1...GGUFFormat.maxDimensions).contains(t.dimensions.count) && t.dimensions.allSatisfy { $0 >= 0 },
                     "tensor \(t.name): invalid dimensions \(t.dimensions)")
        precondition(!tensors.contains { $0.name == t.name }, "tensor \(t.name) added twice")
        tensors.append(t)
    }

    /// The whole file as bytes (for tests and small files).
    public func serialized() throws -> [UInt8] {
        var sink = ArraySink()
        try write(into: &sink, file: "<memory>")
        return sink.bytes
    }

    /// Writes the file atomically (`AtomicFile`: a temporary beside `path`, flushed, renamed over it).
    public func write(to path: String) throws {
        do {
            try AtomicFile.write(to: path) { out in try write(into: &out, file: path) }
        } catch let e as AtomicFile.WriteError {
            throw GGUFError.writeFailed(file: path, reason: e.reason)
        }
    }

    private func write<S: ByteSink>(into sink: inout S, file: String) throws {
        var header = HeaderBuffer()
        header.put(GGUFFormat.magic)
        header.put(GGUFFormat.writtenVersion)
        header.put(UInt64(tensors.count))
        header.put(UInt64(entries.count))
        for (key, value) in entries {
            header.putString(key)
            header.put(value.type.rawValue)
            try header.putValue(value, key: key, file: file)
        }
        var offset = 0
        for t in tensors {
            header.putString(t.name)
            header.put(UInt32(t.dimensions.count))
            for d in t.dimensions { header.put(UInt64(d)) }
            header.put(t.type.ggmlType.rawValue)
            header.put(UInt64(offset))
            offset = padded(offset + t.byteCount)
        }
        header.writer.append(contentsOf: [UInt8](repeating: 0, count: padded(header.bytes.count) - header.bytes.count))
        try header.bytes.withUnsafeBytes { try sink.write($0) }

        for t in tensors {
            let count = t.elementCount
            let emit = { (values: UnsafeBufferPointer<Float>) throws in
                guard values.count == count else {
                    throw GGUFError.invalidWrite(file: file, reason: "tensor '\(t.name)' provided \(values.count) values, expected \(count)")
                }
                try Self.encode(values, as: t.type, into: &sink)
            }
            switch t.source {
            case let .array(a): try a.withUnsafeBufferPointer(emit)
            case let .borrowed(provide): try provide(emit)
            }
            let pad = padded(t.byteCount) - t.byteCount
            if pad > 0 { try [UInt8](repeating: 0, count: pad).withUnsafeBytes { try sink.write($0) } }
        }
    }

    private func padded(_ n: Int) -> Int {
        (n + alignment - 1) / alignment * alignment
    }

    /// Little-endian encoding in chunks, so a big tensor never needs a second full-size buffer.
    private static func encode<S: ByteSink>(_ values: UnsafeBufferPointer<Float>, as type: GGUFFloatType, into sink: inout S) throws {
        let chunk = 1 << 16
        var start = 0
        switch type {
        case .f32:
            var scratch = [UInt32](repeating: 0, count: min(chunk, values.count))
            while start < values.count {
                let n = min(chunk, values.count - start)
                for i in 0..<n { scratch[i] = values[start + i].bitPattern.littleEndian }
                try scratch.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<(4 * n)])) }
                start += n
            }
        case .f16:
            var scratch = [UInt16](repeating: 0, count: min(chunk, values.count))
            while start < values.count {
                let n = min(chunk, values.count - start)
                for i in 0..<n { scratch[i] = Half.fromFloat(values[start + i]).littleEndian }
                try scratch.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<(2 * n)])) }
                start += n
            }
        }
    }
}

/// Header bytes under construction.
private struct HeaderBuffer {
    var writer = ByteWriter()
    var bytes: [UInt8] { writer.bytes }

    mutating func put<T: FixedWidthInteger>(_ v: T) { writer.append(v) }

    mutating func putString(_ s: String) {
        let utf8 = Array(s.utf8)
        put(UInt64(utf8.count))
        writer.append(contentsOf: utf8)
    }

    mutating func putValue(_ value: GGUFValue, key: String, file: String) throws {
        switch value {
        case let .uint8(v): put(v)
        case let .int8(v): put(v)
        case let .uint16(v): put(v)
        case let .int16(v): put(v)
        case let .uint32(v): put(v)
        case let .int32(v): put(v)
        case let .uint64(v): put(v)
        case let .int64(v): put(v)
        case let .float32(v): put(v.bitPattern)
        case let .float64(v): put(v.bitPattern)
        case let .bool(v): put(UInt8(v ? 1 : 0))
        case let .string(s): putString(s)
        case let .array(items):
            let elementType = items.first?.type ?? .uint8
            if let odd = items.first(where: { $0.type != elementType }) {
                throw GGUFError.invalidWrite(file: file, reason: "array '\(key)' mixes \(elementType) and \(odd.type) values")
            }
            put(elementType.rawValue)
            put(UInt64(items.count))
            for (i, item) in items.enumerated() {
                try putValue(item, key: elementType == .array ? "\(key)[\(i)]" : key, file: file)
            }
        }
    }
}

protocol ByteSink {
    mutating func write(_ bytes: UnsafeRawBufferPointer) throws
}

private struct ArraySink: ByteSink {
    var bytes: [UInt8] = []
    mutating func write(_ b: UnsafeRawBufferPointer) throws { bytes += b }
}

/// The file output buffers and writes to the temporary file.
extension AtomicFile.Output: ByteSink {}
