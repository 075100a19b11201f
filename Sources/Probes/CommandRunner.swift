import Foundation

/// Runs `argv` (no shell) with `input` on stdin and returns its stdout. stdin, stdout and stderr go
/// through temporary files, so a child that writes before it has read everything cannot deadlock us.
/// A non-zero exit is an error carrying the last line of stderr.
func runCommand(_ argv: [String], input: String) throws(ProbesError) -> String {
    precondition(!argv.isEmpty, "runCommand needs an argv")
    let name = argv.joined(separator: " ")
    let executable = try resolveExecutable(argv[0], command: name)
    let fm = FileManager.default
    let dir = fm.temporaryDirectory.appendingPathComponent("alignscope-gen-\(UUID().uuidString)")
    do {
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
    } catch {
        throw .commandFailed(command: name, reason: "cannot create a temporary directory (\(error.localizedDescription))")
    }
    defer { try? fm.removeItem(at: dir) }
    let inURL = dir.appendingPathComponent("stdin")
    let outURL = dir.appendingPathComponent("stdout")
    let errURL = dir.appendingPathComponent("stderr")

    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = Array(argv.dropFirst())
    do {
        try Data(input.utf8).write(to: inURL)
        try Data().write(to: outURL)
        try Data().write(to: errURL)
        let stdin = try FileHandle(forReadingFrom: inURL)
        let stdout = try FileHandle(forWritingTo: outURL)
        let stderr = try FileHandle(forWritingTo: errURL)
        defer {
            try? stdin.close()
            try? stdout.close()
            try? stderr.close()
        }
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        process.waitUntilExit()
    } catch {
        throw .commandFailed(command: name, reason: "cannot run it (\(error.localizedDescription))")
    }
    let errText = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    if process.terminationReason == .uncaughtSignal {
        throw .commandFailed(command: name, reason: "killed by signal \(process.terminationStatus)\(lastLine(errText))")
    }
    if process.terminationStatus != 0 {
        throw .commandFailed(command: name, reason: "exit status \(process.terminationStatus)\(lastLine(errText))")
    }
    guard let data = try? Data(contentsOf: outURL) else {
        throw .commandFailed(command: name, reason: "cannot read its output")
    }
    return String(decoding: data, as: UTF8.self)
}

private func lastLine(_ text: String) -> String {
    guard let line = text.split(separator: "\n").last(where: { !$0.allSatisfy(\.isWhitespace) }) else { return "" }
    return ": " + line.trimmingCharacters(in: .whitespaces)
}

/// `name` itself when it contains a "/", otherwise the first executable file of that name in PATH.
private func resolveExecutable(_ name: String, command: String) throws(ProbesError) -> String {
    let fm = FileManager.default
    if name.contains("/") {
        guard fm.isExecutableFile(atPath: name) else {
            throw .commandFailed(command: command, reason: "\(name) is not an executable file")
        }
        return name
    }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") where !dir.isEmpty {
        let candidate = "\(dir)/\(name)"
        if fm.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw .commandFailed(command: command, reason: "\(name) not found in PATH")
}
