import CProcess
import Foundation

/// Set when the user asked the process to stop (the CLI's SIGINT/SIGTERM handlers): a run stops after
/// its step, and a generator command that is running is stopped with it. Written from a signal handler.
public enum StopRequest {
    nonisolated(unsafe) public static var isSet = false

    /// Makes SIGINT and SIGTERM set `isSet` (instead of ending the process).
    public static func installHandlers() {
        signal(SIGINT) { _ in StopRequest.isSet = true }
        signal(SIGTERM) { _ in StopRequest.isSet = true }
    }
}

/// Child processes that die with their parent (`alignscope_spawn`: even a SIGKILLed AlignScope leaves
/// none behind), waited for by polling so that a deadline or a stop request can end them.
public enum ChildProcess {
    public enum Ending: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
    }

    /// Starts `path` with `arguments` (argv[1...]; no shell) and `environment`. Descriptors of -1 are inherited.
    /// - Returns: the pid, or nil with `errno` set.
    public static func spawn(_ path: String, arguments: [String], environment: [String: String],
                             stdin: Int32 = -1, stdout: Int32 = -1, stderr: Int32 = -1, newGroup: Bool) -> pid_t? {
        let argv = [path] + arguments
        let envp = environment.keys.sorted().map { "\($0)=\(environment[$0]!)" }
        var cArgv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnvp: [UnsafeMutablePointer<CChar>?] = envp.map { strdup($0) } + [nil]
        defer {
            for p in cArgv { free(p) }
            for p in cEnvp { free(p) }
        }
        let pid = cArgv.withUnsafeMutableBufferPointer { a in
            cEnvp.withUnsafeMutableBufferPointer { e in
                alignscope_spawn(path, a.baseAddress, e.baseAddress, stdin, stdout, stderr, newGroup ? 1 : 0)
            }
        }
        return pid > 0 ? pid : nil
    }

    /// How the child ended, or nil while it runs.
    public static func poll(_ pid: pid_t) -> Ending? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == 0 { return nil }
        if r < 0 { return .exited(127) }  // not our child (already reaped)
        return ending(status)
    }

    /// Waits for the child to end.
    public static func wait(_ pid: pid_t) -> Ending {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .exited(127) }
        }
        return ending(status)
    }

    /// SIGTERM to the child (its whole group with `group`), SIGKILL after `grace` seconds, then reaped.
    public static func terminate(_ pid: pid_t, group: Bool, grace: Double = 2) {
        let target = group ? -pid : pid
        kill(target, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline {
            if poll(pid) != nil {
                if group { kill(target, SIGKILL) }  // whatever the leader left running
                return
            }
            usleep(10_000)
        }
        kill(target, SIGKILL)
        _ = wait(pid)
    }

    /// Makes this process receive `signal` when its parent exits; exits at once if it already has.
    public static func dieWithParent(signal: Int32, expectedParent: pid_t) {
        alignscope_die_with_parent(signal, expectedParent)
    }

    private static func ending(_ status: Int32) -> Ending {
        // WIFEXITED / WTERMSIG by hand: the macros are not imported into Swift.
        let sig = status & 0x7f
        return sig == 0 ? .exited((status >> 8) & 0xff) : .signaled(sig)
    }
}
