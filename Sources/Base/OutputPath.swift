#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The one rule for what a command writes: never over a file AlignScope did not create. An output path that
/// exists in any form (a file, a folder, a link, even a dangling one, a FIFO) is refused, unless the caller
/// recognises it as its own earlier output (`ours`: a label output with its inputs file, a probe set written by
/// `probes build`); and never the very file a command reads (`inputs`, compared by device and inode, so another
/// spelling or a link of the same file is caught too).
public enum OutputPath {
    public struct Refused: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Whether anything is at `path` (lstat: a dangling link counts).
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// (device, inode) of the file at `path` (following links), if it exists.
    public static func identity(_ path: String) -> (UInt64, UInt64)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Refuses `path` as an output when it is one of `inputs`, or exists and is not `ours`.
    /// - Parameter flag: how the user named the output (`--out`), for the message.
    public static func check(_ path: String, flag: String, inputs: [String] = [], ours: (String) -> Bool = { _ in false }) throws(Refused) {
        if let out = identity(path), let input = inputs.first(where: { identity($0).map { $0 == out } ?? false }) {
            throw Refused(path: path, reason: "\(flag) is the input \(input) itself; give another \(flag) (AlignScope never writes over what it reads)")
        }
        if exists(path), !ours(path) {
            throw Refused(path: path, reason: "exists and was not written by this command; give a new \(flag) (AlignScope never writes over a file it did not create)")
        }
    }
}

/// The one rule for names that become paths (results/<experiment>/<run folder>) and words of generated scripts:
/// 1 to `maxBytes` bytes, no '/', not starting with '.', no whitespace, control or format characters (a
/// right-to-left override U+202E or a zero-width space U+200B would make a name look like another). Shell
/// scripts quote every name as one word besides (`SlurmPlan.quoted`).
public enum SafeName {
    public static func isPathComponent(_ name: String, maxBytes: Int) -> Bool {
        !name.isEmpty && name.utf8.count <= maxBytes && !name.hasPrefix(".") && !name.contains("/")
            && !name.unicodeScalars.contains {
                $0.properties.isWhitespace || $0.properties.generalCategory == .control || $0.properties.generalCategory == .format
            }
    }

    /// A run name as AlignScope plans it: the experiment's name, then path-safe parts separated by '/'.
    public static func isRunName(_ name: String, experiment: String) -> Bool {
        guard name == experiment || name.hasPrefix(experiment + "/") else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { isPathComponent(String($0), maxBytes: 4096) }
    }
}
