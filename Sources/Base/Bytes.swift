/// Little-endian binary reading and writing, shared by the GGUF reader and writer, checkpoints and the
/// reference log-probability cache. Reads check the remaining length and return nil when the bytes end
/// early; each caller turns that into its own error naming the file, the offset and what was due.

/// A bounds-checked little-endian reader over bytes that outlive it (a mapped file, an array in a
/// `withUnsafeBytes` scope).
public struct ByteReader {
    public let base: UnsafeRawBufferPointer
    /// Bytes consumed so far.
    public private(set) var offset = 0

    public init(_ base: UnsafeRawBufferPointer) {
        self.base = base
    }

    public var remaining: Int { base.count - offset }

    /// The next `T`, or nil (nothing consumed) when fewer than its size remain.
    public mutating func read<T: FixedWidthInteger>(_: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard size <= remaining, let start = base.baseAddress else { return nil }
        defer { offset += size }
        return T(littleEndian: start.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// The next `n` bytes, or nil (nothing consumed) when fewer remain.
    public mutating func bytes(_ n: Int) -> UnsafeRawBufferPointer? {
        guard n >= 0, n <= remaining else { return nil }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: base[offset..<offset + n])
    }
}

/// Little-endian bytes under construction.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes += $0 }
    }

    public mutating func append<S: Sequence>(contentsOf raw: S) where S.Element == UInt8 {
        bytes += raw
    }

    /// `text`'s UTF-8 in exactly `width` bytes: cut, or padded with zeros.
    public mutating func appendFixed(_ text: String, width: Int) {
        let utf8 = Array(text.utf8.prefix(width))
        bytes += utf8 + [UInt8](repeating: 0, count: width - utf8.count)
    }
}
