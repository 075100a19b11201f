/// A GGUF file (version 2 or 3, little-endian) opened for reading.
///
/// The header (metadata and tensor infos) is parsed and validated up front; tensor data stays in a
/// read-only memory mapping and is only touched when a tensor is dequantised. Every count, length and
/// offset is checked against the file size, so a corrupt file gives a `GGUFError`, never a crash.
public struct GGUFFile: Sendable {
    /// The path the file was opened from (used in error messages).
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32 when absent.
    public let alignment: Int
    /// Absolute byte offset of the data section.
    public let dataOffset: Int

    let bytes: FileBytes
    private let tensorIndex: [String: Int]

    /// Opens and memory-maps the file at `path`.
    public init(path: String) throws {
        try self.init(bytes: FileBytes(mapping: path), name: path)
    }

    /// Parses an in-memory image of a GGUF file (used by tests); `name` stands for the path in errors.
    init(bytes raw: [UInt8], name: String) throws {
        try self.init(bytes: FileBytes(copying: raw), name: name)
    }

    private init(bytes: FileBytes, name file: String) throws {
        self.path = file
        self.bytes = bytes
        var c = ByteCursor(bytes: bytes, file: file)

        let magic = try c.read(UInt32.self, "magic")
        guard magic == GGUFFormat.magic else { throw GGUFError.badMagic(file: file, found: magic) }
        version = try c.read(UInt32.self, "version")
        guard GGUFFormat.supportedVersions.contains(version) else {
            throw GGUFError.unsupportedVersion(file: file, version: version)
        }
        let rawTensorCount = try c.read(UInt64.self, "tensor count")
        let rawKVCount = try c.read(UInt64.self, "metadata count")

        // Smallest key/value: empty key (8) + type (4) + one byte of value.
        let kvCount = try c.checkedCount(rawKVCount, minSize: 13, "metadata entries")
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            let key = try c.readString("key of metadata entry \(i)")
            let typeOffset = c.offset
            let rawType = try c.read(UInt32.self, "value type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw GGUFError.invalidValueType(file: file, offset: typeOffset, key: key, type: rawType)
            }
            let value = try Self.readValue(type, key: key, cursor: &c, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw GGUFError.duplicateKey(file: file, key: key)
            }
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = GGUFFormat.defaultAlignment
        if let a = metadata[GGUFKeys.alignment] {
            guard case let .uint32(v) = a, v > 0, v & (v - 1) == 0 else {
                throw GGUFError.invalidAlignment(file: file, value: "\(a.type) \(a)")
            }
            alignment = Int(v)
        }
        self.alignment = alignment

        // Smallest tensor info: empty name (8) + n_dims (4) + one dimension (8) + type (4) + offset (8).
        let tensorCount = try c.checkedCount(rawTensorCount, minSize: 32, "tensor infos")
        var infos: [GGUFTensorInfo] = []
        var rawOffsets: [UInt64] = []
        infos.reserveCapacity(tensorCount)
        var index: [String: Int] = [:]
        for i in 0..<tensorCount {
            let (info, rawOffset) = try Self.readTensorInfo(number: i, alignment: alignment, cursor: &c)
            guard index.updateValue(infos.count, forKey: info.name) == nil else {
                throw GGUFError.duplicateTensor(file: file, tensor: info.name)
            }
            infos.append(info)
            rawOffsets.append(rawOffset)
        }

        let dataOffset = (c.offset + alignment - 1) / alignment * alignment
        for i in infos.indices {
            let size = UInt64(infos[i].byteCount)
            let (start, overflow1) = UInt64(dataOffset).addingReportingOverflow(rawOffsets[i])
            let (end, overflow2) = start.addingReportingOverflow(size)
            if overflow1 || overflow2 || end > UInt64(bytes.count) {
                throw GGUFError.offsetBeyondFile(
                    file: file, tensor: infos[i].name, start: overflow1 ? UInt64.max : start, size: size, fileSize: bytes.count)
            }
            infos[i].offset = Int(rawOffsets[i])
        }
        self.dataOffset = dataOffset
        self.tensors = infos
        self.tensorIndex = index
    }

    private static func readValue(_ type: GGUFValueType, key: String, cursor c: inout ByteCursor, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try c.read(UInt8.self, "value of '\(key)'"))
        case .int8: return .int8(try c.read(Int8.self, "value of '\(key)'"))
        case .uint16: return .uint16(try c.read(UInt16.self, "value of '\(key)'"))
        case .int16: return .int16(try c.read(Int16.self, "value of '\(key)'"))
        case .uint32: return .uint32(try c.read(UInt32.self, "value of '\(key)'"))
        case .int32: return .int32(try c.read(Int32.self, "value of '\(key)'"))
        case .uint64: return .uint64(try c.read(UInt64.self, "value of '\(key)'"))
        case .int64: return .int64(try c.read(Int64.self, "value of '\(key)'"))
        case .float32: return .float32(Float(bitPattern: try c.read(UInt32.self, "value of '\(key)'")))
        case .float64: return .float64(Double(bitPattern: try c.read(UInt64.self, "value of '\(key)'")))
        case .bool:
            let at = c.offset
            let b = try c.read(UInt8.self, "value of '\(key)'")
            guard b <= 1 else {
                throw GGUFError.invalidMetadata(file: c.file, key: key, reason: "bool at byte offset \(at) is \(b), expected 0 or 1")
            }
            return .bool(b == 1)
        case .string: return .string(try c.readString("value of '\(key)'"))
        case .array:
            guard depth < GGUFFormat.maxArrayNesting else {
                throw GGUFError.invalidMetadata(file: c.file, key: key, reason: "arrays nested deeper than \(GGUFFormat.maxArrayNesting) at byte offset \(c.offset)")
            }
            let typeOffset = c.offset
            let rawType = try c.read(UInt32.self, "element type of '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw GGUFError.invalidValueType(file: c.file, offset: typeOffset, key: key, type: rawType)
            }
            let rawCount = try c.read(UInt64.self, "length of '\(key)'")
            let count = try c.checkedCount(rawCount, minSize: minimumSize(of: elementType), "items of array '\(key)'")
            var items: [GGUFValue] = []
            items.reserveCapacity(count)
            for i in 0..<count {
                // Only build the element's key for nested arrays, where it is needed for messages.
                let elementKey = elementType == .array ? "\(key)[\(i)]" : key
                items.append(try readValue(elementType, key: elementKey, cursor: &c, depth: depth + 1))
            }
            return .array(items)
        }
    }

    /// The fewest bytes a value of `type` can take in the file.
    private static func minimumSize(of type: GGUFValueType) -> Int {
        switch type {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8
        case .array: 12
        }
    }

    /// A tensor info with `offset` still unset, and its raw data offset (checked against the file later).
    private static func readTensorInfo(number i: Int, alignment: Int, cursor c: inout ByteCursor) throws -> (GGUFTensorInfo, UInt64) {
        let file = c.file
        let name = try c.readString("name of tensor \(i)")
        let nDims = try c.read(UInt32.self, "dimension count of tensor '\(name)'")
        guard (1...UInt32(GGUFFormat.maxDimensions)).contains(nDims) else {
            throw GGUFError.invalidTensorDimensions(file: file, tensor: name, dimensions: [], reason: "\(nDims) dimensions at byte offset \(c.offset - 4), expected 1 to \(GGUFFormat.maxDimensions)")
        }
        var raw: [UInt64] = []
        for d in 0..<Int(nDims) {
            raw.append(try c.read(UInt64.self, "dimension \(d) of tensor '\(name)'"))
        }
        var count = 1
        for d in raw {
            guard d <= UInt64(Int.max), case let (p, false) = count.multipliedReportingOverflow(by: Int(d)) else {
                throw GGUFError.invalidTensorDimensions(file: file, tensor: name, dimensions: raw, reason: "element count overflows")
            }
            count = p
        }
        let rawType = try c.read(UInt32.self, "type of tensor '\(name)'")
        guard let type = GGMLType(rawValue: rawType) else {
            throw GGUFError.unknownTensorType(file: file, tensor: name, type: rawType)
        }
        let offset = try c.read(UInt64.self, "data offset of tensor '\(name)'")
        let block = type.blockLayout
        guard raw[0] % UInt64(block.elements) == 0 else {
            throw GGUFError.invalidTensorDimensions(file: file, tensor: name, dimensions: raw, reason: "first dimension is not a multiple of the \(type) block size \(block.elements)")
        }
        guard case let (byteCount, false) = (count / block.elements).multipliedReportingOverflow(by: block.bytes) else {
            throw GGUFError.invalidTensorDimensions(file: file, tensor: name, dimensions: raw, reason: "byte size overflows")
        }
        guard offset % UInt64(alignment) == 0 else {
            throw GGUFError.misalignedTensorOffset(file: file, tensor: name, offset: offset, alignment: alignment)
        }
        return (GGUFTensorInfo(name: name, dimensions: raw.map { Int($0) }, type: type, offset: 0, elementCount: count, byteCount: byteCount), offset)
    }

    /// The info of the tensor called `name`, if present.
    public func tensorInfo(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The info of the tensor called `name`; throws `missingTensor` when absent.
    public func tensor(_ name: String) throws -> GGUFTensorInfo {
        guard let info = tensorInfo(name) else { throw GGUFError.missingTensor(file: path, tensor: name) }
        return info
    }

    /// The raw bytes of a tensor (valid as long as this file value, or a copy of it, is alive).
    func data(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytes.base.map { $0 + dataOffset + info.offset }, count: info.byteCount)
    }
}
