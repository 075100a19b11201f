#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be mapped.
public struct MappedFileError: Error, Sendable, Equatable {
    public var path: String
    public var reason: String
}

/// The read-only bytes of a file: memory-mapped from disk, or an owned copy (for files built in memory
/// by tests). Never mutated after init, so sharing it across threads is safe. Model files (GGUF,
/// safetensors) are read through it without copying them into memory first.
public final class MappedFile: @unchecked Sendable {
    public let base: UnsafeRawPointer?
    public let count: Int
    private let isMapped: Bool

    public init(path: String) throws(MappedFileError) {
        // O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; a regular file ignores the flag
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw MappedFileError(path: path, reason: Self.errnoText()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw MappedFileError(path: path, reason: Self.errnoText()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw MappedFileError(path: path, reason: "not a regular file (\(TextFile.kindName(st.st_mode)))") }
        let size = Int(st.st_size)
        if size == 0 {
            base = nil
            count = 0
            isMapped = false
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw MappedFileError(path: path, reason: "mmap: " + Self.errnoText()) }
        base = UnsafeRawPointer(p)
        count = size
        isMapped = true
    }

    public init(copying bytes: [UInt8]) {
        count = bytes.count
        isMapped = false
        if bytes.isEmpty {
            base = nil
        } else {
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
            bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            base = UnsafeRawPointer(p)
        }
    }

    deinit {
        guard let base else { return }
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            base.deallocate()
        }
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
