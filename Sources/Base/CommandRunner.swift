import Foundation

/// A command that could not be run, failed, was stopped, or wrote bad output.
public enum CommandError: Error, Equatable, CustomStringConvertible {
    case failed(command: String, reason: String)
    /// Stopped because the user stopped AlignScope (`StopRequest`).
    case interrupted(command: String)
    /// Its output is not what was expected at `line`.
    case output(command: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case let .failed(command, reason): return "command \(command): \(reason)"
        case let .interrupted(command): return "command \(command): stopped (AlignScope was interrupted)"
        case let .output(command, line, reason): return "command \(command): output line \(line): \(reason)"
        }
    }
}

/// Runs `argv` (no shell) with `input` on stdin and returns its stdout, which must be UTF-8.
/// stdin, stdout and stderr are temporary files unlinked as soon as they are open (a child that
/// writes before it has read everything cannot deadlock us, and nothing is left on disk whatever
/// happens to either process). The child dies with AlignScope, is stopped after `timeout` seconds or
/// when `StopRequest` is set (SIGTERM to its process group, SIGKILL 2 s later). A non-zero exit is
/// an error carrying the last line of stderr.
public func runCommand(_ argv: [String], input: String, timeout: Double) throws(CommandError) -> String {
    precondition(!argv.isEmpty, "runCommand needs an argv")
    let name = argv.joined(separator: " ")
    let executable = try resolveExecutable(argv[0], command: name)
    var fds: [Int32] = []
    defer { for fd in fds { close(fd) } }
    for _ in 0..<3 {
        guard let fd = unlinkedTemporaryFile() else {
            throw .failed(command: name, reason: "cannot create a temporary file (\(String(cString: strerror(errno))))")
        }
        fds.append(fd)
    }
    let bytes = Array(input.utf8)
    guard writeAll(fds[0], bytes), lseek(fds[0], 0, SEEK_SET) == 0 else {
        throw .failed(command: name, reason: "cannot write its input (\(String(cString: strerror(errno))))")
    }
    guard let pid = ChildProcess.spawn(executable, arguments: Array(argv.dropFirst()),
                                       environment: ProcessInfo.processInfo.environment,
                                       stdin: fds[0], stdout: fds[1], stderr: fds[2], newGroup: true) else {
        throw .failed(command: name, reason: "cannot run it (\(String(cString: strerror(errno))))")
    }
    let deadline = Date().addingTimeInterval(timeout)
    let ending: ChildProcess.Ending
    while true {
        if let end = ChildProcess.poll(pid) {
            ending = end
            break
        }
        if StopRequest.isSet {
            ChildProcess.terminate(pid, group: true)
            throw .interrupted(command: name)
        }
        if Date() > deadline {
            ChildProcess.terminate(pid, group: true)
            throw .failed(command: name, reason: "no answer within its timeout of \(JSONValue.format(timeout)) s (stopped; raise \"timeout\" in its generate spec)")
        }
        usleep(5_000)
    }
    let errText = String(decoding: readAll(fds[2]), as: UTF8.self)
    switch ending {
    case .signaled(let sig):
        throw .failed(command: name, reason: "killed by signal \(sig)\(lastLine(errText))")
    case .exited(let code) where code != 0:
        throw .failed(command: name, reason: "exit status \(code)\(lastLine(errText))")
    default:
        break
    }
    let out = readAll(fds[1])
    if let offset = TextFile.firstInvalidUTF8(out) {
        throw .output(command: name, line: 1 + out[..<offset].filter { $0 == 0x0A }.count,
                             reason: "invalid UTF-8 at byte offset \(offset) of its output")
    }
    return String(decoding: out, as: UTF8.self)
}

private func unlinkedTemporaryFile() -> Int32? {
    var template = Array((NSTemporaryDirectory() + "/alignscope-gen-XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else { return nil }
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    return fd
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if n < 0 { if errno == EINTR { continue }; return false }
        done += n
    }
    return true
}

private func readAll(_ fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    guard lseek(fd, 0, SEEK_SET) == 0 else { return out }
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return out }
        out += buffer[0..<n]
    }
}

private func lastLine(_ text: String) -> String {
    guard let line = TextFile.lines(text).last(where: { !$0.text.allSatisfy(\.isWhitespace) }) else { return "" }
    return ": " + line.text.trimmingCharacters(in: .whitespaces)
}

/// `name` itself when it contains a "/", otherwise the first executable file of that name in PATH.
public func resolveExecutable(_ name: String, command: String) throws(CommandError) -> String {
    let fm = FileManager.default
    if name.contains("/") {
        guard fm.isExecutableFile(atPath: name) else {
            throw .failed(command: command, reason: "\(name) is not an executable file")
        }
        return name
    }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") where !dir.isEmpty {
        let candidate = "\(dir)/\(name)"
        if fm.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw .failed(command: command, reason: "\(name) not found in PATH")
}
