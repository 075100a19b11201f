import Foundation

/// Reading the text files AlignScope is given (specs, JSONL data, generator output) the same way
/// everywhere: only regular files are opened (a FIFO or a device would block or never end), the bytes
/// must be UTF-8 (the first bad byte is named by offset, never replaced by U+FFFD), and lines end at
/// LF, CRLF or a lone CR.
public enum TextFile {
    /// What can be wrong with a file given to AlignScope; each case renders as one line.
    public enum FileError: Error, Equatable, CustomStringConvertible {
        case unreadable(file: String, reason: String)
        /// The bytes at `offset` are not valid UTF-8.
        case invalidText(file: String, offset: Int)

        public var description: String {
            switch self {
            case let .unreadable(file, reason): return "\(file): cannot read the file (\(reason))"
            case let .invalidText(file, offset): return "\(file): invalid UTF-8 at byte offset \(offset); expected UTF-8 text"
            }
        }
    }

    /// The bytes of a regular file. Non-regular files are refused before they are opened.
    public static func read(_ path: String) throws(FileError) -> Data {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw .unreadable(file: path, reason: errno == ENOENT ? "no such file" : String(cString: strerror(errno)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw .unreadable(file: path, reason: "not a regular file (\(kindName(st.st_mode)))")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(file: path, reason: "permission denied")
        }
        return data
    }

    /// `read`, decoded as UTF-8.
    public static func readText(_ path: String) throws(FileError) -> String {
        try decode(read(path), source: path)
    }

    /// The bytes as a String, or an error naming the byte offset of the first invalid UTF-8 sequence.
    public static func decode<C: Collection>(_ bytes: C, source: String) throws(FileError) -> String where C.Element == UInt8 {
        if let offset = firstInvalidUTF8(bytes) {
            throw .invalidText(file: source, offset: offset)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Byte offset of the first byte that does not start or continue a valid UTF-8 sequence, or nil.
    public static func firstInvalidUTF8<C: Collection>(_ bytes: C) -> Int? where C.Element == UInt8 {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    /// The lines of a text with their 1-based numbers. A line ends at "\n", "\r\n" or a lone "\r";
    /// the terminators are not part of the line. A final terminator does not start another line.
    public static func lines(_ text: String) -> [(number: Int, text: Substring)] {
        var out: [(number: Int, text: Substring)] = []
        let utf8 = text.utf8
        var start = utf8.startIndex
        var i = start
        var number = 0
        while i != utf8.endIndex {
            let b = utf8[i]
            if b == 0x0A || b == 0x0D {
                number += 1
                out.append((number, Substring(utf8[start..<i])))
                var next = utf8.index(after: i)
                if b == 0x0D, next != utf8.endIndex, utf8[next] == 0x0A { next = utf8.index(after: next) }
                start = next
                i = next
            } else {
                i = utf8.index(after: i)
            }
        }
        if start != utf8.endIndex { out.append((number + 1, Substring(utf8[start..<utf8.endIndex]))) }
        return out
    }

    public static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "a FIFO"
        case S_IFDIR: return "a directory"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a plain file"
        }
    }
}
