import Base

/// A bounds-checked little-endian reader over `FileBytes`. Every read checks the remaining length
/// first and throws `GGUFError.truncated` naming the offset and what was being read.
struct ByteCursor {
    let bytes: FileBytes
    let file: String
    private var reader: ByteReader

    init(bytes: FileBytes, file: String) {
        self.bytes = bytes
        self.file = file
        reader = ByteReader(UnsafeRawBufferPointer(start: bytes.base, count: bytes.count))
    }

    var offset: Int { reader.offset }
    var remaining: Int { reader.remaining }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        guard let v = reader.read(T.self) else {
            throw GGUFError.truncated(file: file, offset: offset, needed: MemoryLayout<T>.size, available: remaining, what: what())
        }
        return v
    }

    /// Checks that `count` items of at least `minSize` bytes each can fit in the rest of the file
    /// (before anything is allocated for them) and returns the count as `Int`. A count that cannot fit
    /// is reported as truncation at the start of the items.
    func checkedCount(_ count: UInt64, minSize: Int, _ what: @autoclosure () -> String) throws -> Int {
        guard count <= UInt64(remaining / minSize) else {
            let (needed, overflow) = count.multipliedReportingOverflow(by: UInt64(minSize))
            throw GGUFError.truncated(file: file, offset: offset, needed: overflow ? Int.max : Int(clamping: needed),
                                      available: remaining, what: "\(count) \(what())")
        }
        return Int(count)
    }

    /// A GGUF string: uint64 byte length, then UTF-8 bytes (no terminator).
    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let start = offset
        let length = try read(UInt64.self, "length of " + what())
        guard length <= UInt64(remaining) else {
            throw GGUFError.truncated(file: file, offset: offset, needed: Int(clamping: length), available: remaining, what: what())
        }
        let buffer = reader.bytes(Int(length))!
        guard let s = String(validating: buffer, as: UTF8.self) else {
            throw GGUFError.invalidString(file: file, offset: start, what: what())
        }
        return s
    }
}
