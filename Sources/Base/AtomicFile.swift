#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A file replaced in one step: written to a hidden temporary file beside it (`.<name>.tmp-<pid>-<n>`),
/// flushed to disk, then renamed over the destination. A reader sees the old file or the new one, never
/// part of one; a crash leaves only the temporary, which `removeLeftovers` deletes.
///
/// Every file AlignScope writes whole goes through here. (Foundation's `.atomic` option on Linux stages
/// the file in a `TemporaryDirectory.*` folder under /tmp that it never deletes, and when /tmp is another
/// filesystem its final move is a copy, not a rename.)
public enum AtomicFile {
    /// The marker in a temporary's name: `.<name>` + marker + `<pid>-<n>`.
    public static let tempMarker = ".tmp-"

    public struct WriteError: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Buffered writes to the temporary file (1 MiB pieces; larger writes go straight through).
    public struct Output {
        let fd: Int32
        let path: String
        var buffer: [UInt8] = []
        static let capacity = 1 << 20

        public mutating func write(_ bytes: UnsafeRawBufferPointer) throws(WriteError) {
            if buffer.count + bytes.count > Self.capacity { try flush() }
            if bytes.count >= Self.capacity {
                try writeAll(bytes)
            } else {
                buffer += bytes
            }
        }

        public mutating func write(_ bytes: [UInt8]) throws(WriteError) {
            try Self.withBytes(of: bytes) { (raw) throws(WriteError) in try write(raw) }
        }

        mutating func flush() throws(WriteError) {
            try Self.withBytes(of: buffer) { (raw) throws(WriteError) in try writeAll(raw) }
            buffer.removeAll(keepingCapacity: true)
        }

        /// `withUnsafeBytes` keeping `body`'s error type (the standard one only rethrows `any Error`).
        private static func withBytes(of bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(WriteError) -> Void) throws(WriteError) {
            var failure: WriteError?
            bytes.withUnsafeBytes { raw in
                do throws(WriteError) { try body(raw) } catch { failure = error }
            }
            if let failure { throw failure }
        }

        private func writeAll(_ b: UnsafeRawBufferPointer) throws(WriteError) {
            var done = 0
            while done < b.count {
                let n = Glibc.write(fd, b.baseAddress! + done, b.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw WriteError(path: path, reason: "cannot write: " + errnoText())
                }
                done += n
            }
        }
    }

    /// Writes `path` through `body` (creating missing parent folders when `createFolders`). If `body`
    /// throws, or anything fails, the temporary is removed, `path` is untouched, and the error is rethrown
    /// (`WriteError` for the file system's own failures).
    public static func write(to path: String, createFolders: Bool = false, _ body: (inout Output) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        if createFolders {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw WriteError(path: path, reason: "cannot create the folder \(dir)")
            }
        }
        let tmp = dir + "/." + url.lastPathComponent + tempMarker + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WriteError(path: path, reason: "cannot create \(tmp): " + errnoText()) }
        var out = Output(fd: fd, path: path)
        var isOpen = true
        do {
            try body(&out)
            try out.flush()
            guard fsync(fd) == 0 else { throw WriteError(path: path, reason: "fsync: " + errnoText()) }
            isOpen = false  // closed once, whatever close says
            guard close(fd) == 0 else { throw WriteError(path: path, reason: "close: " + errnoText()) }
        } catch {
            if isOpen { close(fd) }
            unlink(tmp)
            throw error
        }
        guard rename(tmp, path) == 0 else {
            let reason = errnoText()
            unlink(tmp)
            throw WriteError(path: path, reason: "cannot rename \(tmp) over it: " + reason)
        }
    }

    public static func write(_ bytes: [UInt8], to path: String, createFolders: Bool = false) throws(WriteError) {
        do {
            try write(to: path, createFolders: createFolders) { out in try out.write(bytes) }
        } catch let e as WriteError {
            throw e
        } catch {
            preconditionFailure("AtomicFile: \(error)")  // the body throws only WriteError
        }
    }

    public static func write(_ text: String, to path: String, createFolders: Bool = false) throws(WriteError) {
        try write(Array(text.utf8), to: path, createFolders: createFolders)
    }

    /// Deletes the temporaries in `directory` (left by a process killed while writing). Call it only where
    /// no other live process writes, e.g. a run's folder while holding the run's lease.
    public static func removeLeftovers(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".") && name.contains(tempMarker) {
            unlink(directory + "/" + name)
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
