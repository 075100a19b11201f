import Base

/// One safetensors file, memory-mapped. Layout (the format's definition): an 8-byte little-endian
/// header length N, N bytes of UTF-8 JSON mapping each tensor name to `{dtype, shape, data_offsets:
/// [begin, end]}` (offsets into the data that follows the header; an optional `__metadata__` entry holds
/// strings), then the data, row-major, little-endian. F32, F16 and BF16 tensors are read; F32 is copied
/// straight from the mapping, the others converted element by element (exactly: every F16 and BF16 value
/// is a Float).
public final class SafetensorsFile: @unchecked Sendable {
    public struct Tensor: Sendable, Equatable {
        public var dtype: String
        public var shape: [Int]
        /// Byte offsets in the file.
        public var bytes: Range<Int>
        public var count: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let tensors: [String: Tensor]
    private let file: MappedFile

    static let elementSizes = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
                               "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8]
    /// The types this reader converts to Float.
    public static let readableTypes: Set<String> = ["F32", "F16", "BF16"]

    public init(path: String) throws(HFError) {
        self.path = path
        do {
            file = try MappedFile(path: path)
        } catch {
            throw HFError.file(path: path, reason: error.reason)
        }
        guard file.count >= 8, let base = file.base else { throw HFError.file(path: path, reason: "too short for a safetensors file (\(file.count) bytes)") }
        let headerLength = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(file.count - 8) else {
            throw HFError.file(path: path, reason: "header length \(headerLength) runs past the end of the file (\(file.count) bytes)")
        }
        let dataStart = 8 + Int(headerLength)
        let headerBytes = UnsafeRawBufferPointer(start: base + 8, count: Int(headerLength))
        let entries = try JSONFile.object(headerBytes, path: path, what: "header")
        var tensors: [String: Tensor] = [:]
        for (name, entry) in entries where name != "__metadata__" {
            guard case let .object(fields) = entry, case let .string(dtype)? = fields["dtype"], case let .array(dims)? = fields["shape"],
                  case let .array(offsets)? = fields["data_offsets"], offsets.count == 2 else {
                throw HFError.entry(path: path, key: name, reason: "expected {dtype, shape, data_offsets: [begin, end]}")
            }
            var shape: [Int] = []
            for d in dims {
                guard case let .number(x) = d, let n = Int(exactly: x), n >= 0 else {
                    throw HFError.entry(path: path, key: name, reason: "shape entries must be non-negative integers")
                }
                shape.append(n)
            }
            guard case let .number(b) = offsets[0], case let .number(e) = offsets[1], let begin = Int(exactly: b), let end = Int(exactly: e),
                  begin >= 0, end >= begin, end <= file.count - dataStart else {
                throw HFError.entry(path: path, key: name, reason: "data_offsets \(offsets.map(\.canonical)) are outside the data (\(file.count - dataStart) bytes)")
            }
            guard let size = Self.elementSizes[dtype] else { throw HFError.entry(path: path, key: name, reason: "unknown dtype \(dtype)") }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw HFError.entry(path: path, key: name, reason: "shape \(shape) is too large") }
                count = p
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow else { throw HFError.entry(path: path, key: name, reason: "shape \(shape) of \(dtype) is too large (more than 2^63 bytes)") }
            guard bytes == end - begin else {
                throw HFError.entry(path: path, key: name, reason: "shape \(shape) of \(dtype) needs \(bytes) bytes, data_offsets give \(end - begin)")
            }
            tensors[name] = Tensor(dtype: dtype, shape: shape, bytes: dataStart + begin..<dataStart + end)
        }
        // no two tensors may share bytes (a file that claims so would read one tensor's data as another's)
        let spans = tensors.map { (name: $0.key, range: $0.value.bytes) }.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(spans, spans.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw HFError.entry(path: path, key: b.name, reason: "data_offsets overlap those of \(a.name) (bytes \(b.range.lowerBound - dataStart) < \(a.range.upperBound - dataStart))")
        }
        self.tensors = tensors
    }

    /// Copies tensor `name` into `out` as Float (row-major, as stored).
    /// - Throws: when the tensor is absent, of a type other than F32/F16/BF16, or of another element count.
    public func read(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws(HFError) {
        guard let t = tensors[name] else { throw HFError.entry(path: path, key: name, reason: "missing") }
        guard Self.readableTypes.contains(t.dtype) else {
            throw HFError.entry(path: path, key: name, reason: "dtype \(t.dtype) is not supported (F32, F16, BF16)")
        }
        guard t.count == out.count else { throw HFError.entry(path: path, key: name, reason: "\(t.count) values, expected \(out.count)") }
        guard t.count > 0, let base = file.base else { return }
        let src = base + t.bytes.lowerBound, dst = out.baseAddress!
        switch t.dtype {
        case "F32":
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: t.count * 4)
            #if _endian(big)
            for i in 0..<t.count { dst[i] = Float(bitPattern: UInt32(littleEndian: dst[i].bitPattern)) }
            #endif
        case "F16":
            for i in 0..<t.count { dst[i] = Half.toFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        default:  // BF16
            for i in 0..<t.count { dst[i] = Half.bf16ToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        }
    }
}
