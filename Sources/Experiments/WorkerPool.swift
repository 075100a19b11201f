import Base
import Foundation

/// `run --jobs N`: N processes of this executable, each running the same command with one job; they share the
/// store and claim runs from it, so no run is trained twice. SIGINT/SIGTERM to this process (`StopRequest`) is
/// passed on to the workers, which stop after their step; a worker dies with its parent (it checks
/// `parentVariable`). Worker k gets `Threads.share(of: cores, jobs: N, worker: k)` threads (about cores / N; the shares sum
/// to the cores this process may use) through `Threads.shareVariable`. The code is the largest of the workers' exit codes (a worker ended by a signal counts as 1).
public enum WorkerPool {
    /// The variable that names the parent to a worker.
    public static let parentVariable = "ALIGNSCOPE_WORKER_PARENT"

    public struct StartFailure: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "cannot start a worker process: \(reason)" }
    }

    /// Starts `count` workers running `argv` (the verb and its options) and waits for all of them.
    /// - Returns: the exit code, and whether a stop request was passed on.
    public static func run(argv: [String], count: Int) throws -> (code: Int32, stopped: Bool) {
        StopRequest.installHandlers()
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let environment = ProcessInfo.processInfo.environment.merging(
            ["ALIGNSCOPE_PLAIN_PROGRESS": "1", parentVariable: String(getpid())]) { $1 }
        var workers: [pid_t] = []
        let cores = Threads.automatic
        for k in 0..<count {
            // each worker's share of the cores, for runs whose spec does not set `threads`
            var env = environment
            env[Threads.shareVariable] = String(Threads.share(of: cores, jobs: count, worker: k))
            guard let pid = ChildProcess.spawn(exe, arguments: argv, environment: env, newGroup: false) else {
                let reason = String(cString: strerror(errno))
                for w in workers { ChildProcess.terminate(w, group: false, grace: 60) }
                throw StartFailure(reason: reason)
            }
            workers.append(pid)
        }
        var code: Int32 = 0
        var forwarded = false
        while !workers.isEmpty {
            if StopRequest.isSet && !forwarded {
                for w in workers { kill(w, SIGTERM) }
                forwarded = true
            }
            workers.removeAll { w in
                guard let end = ChildProcess.poll(w) else { return false }
                switch end {
                case .exited(let c): code = max(code, c)
                case .signaled: code = max(code, 1)
                }
                return true
            }
            usleep(20_000)
        }
        return (code, forwarded)
    }
}
