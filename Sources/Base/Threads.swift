import CProcess
import Dispatch
import Foundation

/// Thread count used by the kernels, including the matrix products.
///
/// Non-BLAS kernels split their work into at most `count` contiguous chunks, and every output element is
/// computed by exactly one chunk with the same arithmetic whatever the split; the matrix products are split into
/// fixed blocks of C whatever the count (module Kernels). So results are bit-identical from run to run and across
/// thread counts (and do not depend on scheduling).
///
/// OpenBLAS itself is held at one thread: `matmul` splits large products into fixed 64-row or -column blocks of C
/// and runs them on Dispatch's threads, like every other kernel.
/// With OpenBLAS's own pool, its worker threads spin (sched_yield) for up to 2^28 cycles after each product
/// and took the second core from the kernels that run between products; one pool made a SmolLM2 training
/// step about 6% faster and saved 57 MiB of OpenBLAS buffers (docs/PERFORMANCE.md).
public enum Threads {
    /// The threads the kernels use. Results do not depend on it (every split is by fixed blocks of the data,
    /// docs/RELIABILITY.md), only speed does. Default `automatic`. Set it before starting work, not while kernels run.
    nonisolated(unsafe) public static var count: Int = automatic

    /// The variable through which `run --jobs N` gives each worker process its share of the cores.
    public static let shareVariable = "ALIGNSCOPE_THREADS"

    /// A run's thread count when its spec does not set `threads`: the share `shareVariable` names (a `--jobs` worker),
    /// else every core this process may use (`available`).
    public static var automatic: Int {
        if let v = ProcessInfo.processInfo.environment[shareVariable], let n = Int(v), n >= 1 { return min(n, 256) }
        return available
    }

    /// The cores this process may use: the CPUs of its affinity mask (`taskset`, Slurm's cpuset), capped by its cgroup's
    /// CPU quota rounded up (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us` over `cpu.cfs_period_us`, the tightest along the
    /// cgroup's path: a container's or a Slurm job's limit), never the machine's count alone. At least 1.
    public static var available: Int {
        var cpus = Int(alignscope_affinity_cpus())
        if cpus < 1 { cpus = ProcessInfo.processInfo.activeProcessorCount }
        if let quota = cgroupQuota() { cpus = min(cpus, quota) }
        return max(1, min(cpus, 256))
    }

    /// The whole CPUs the cgroup quota of this process allows (rounded up), or nil when there is no quota.
    static func cgroupQuota(root: String = "/sys/fs/cgroup", membership: String? = nil) -> Int? {
        guard let lines = membership ?? (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) else { return nil }
        var best: Int?
        func consider(_ q: Int?) { if let q { best = min(best ?? q, q) } }
        for line in lines.split(separator: "\n") {
            // hierarchy-id:controllers:path
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let controllers = parts[1].split(separator: ","), path = String(parts[2])
            for dir in ancestors(path) {
                if parts[0] == "0" && controllers.isEmpty {
                    consider(cpuMax(read(root + dir + "/cpu.max")))  // v2
                } else if controllers.contains("cpu") {
                    for mount in ["cpu", "cpu,cpuacct", "cpuacct,cpu"] {
                        let base = root + "/" + mount + dir
                        consider(cfsQuota(quota: read(base + "/cpu.cfs_quota_us"), period: read(base + "/cpu.cfs_period_us")))
                    }
                }
            }
        }
        return best
    }

    /// "/a/b" -> ["/a/b", "/a", ""] (the cgroup's own folder and each above it, up to the mount's root).
    private static func ancestors(_ path: String) -> [String] {
        var out: [String] = [], p = path.hasSuffix("/") ? String(path.dropLast()) : path
        while true {
            out.append(p)
            guard let slash = p.lastIndex(of: "/") else { break }
            p = String(p[..<slash])
        }
        return out
    }

    private static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// cgroup v2 `cpu.max`: "QUOTA PERIOD" (microseconds) or "max PERIOD" (no quota).
    static func cpuMax(_ text: String?) -> Int? {
        guard let f = text?.split(whereSeparator: { $0 == " " || $0 == "\n" }), f.count >= 2 else { return nil }
        return wholeCPUs(quota: Double(f[0]), period: Double(f[1]))
    }

    /// cgroup v1: `cpu.cfs_quota_us` (-1: no quota) over `cpu.cfs_period_us`.
    static func cfsQuota(quota: String?, period: String?) -> Int? {
        func number(_ s: String?) -> Double? { s.flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) } }
        return wholeCPUs(quota: number(quota), period: number(period))
    }

    /// A quota over its period in whole CPUs, rounded up; nil without a positive quota and period.
    private static func wholeCPUs(quota: Double?, period: Double?) -> Int? {
        guard let q = quota, let p = period, q > 0, p > 0 else { return nil }
        return max(1, Int((q / p).rounded(.up)))
    }

    /// Worker k of `jobs` (0-based): its share of `cores`, the shares summing to `cores` (at least 1 each).
    public static func share(of cores: Int, jobs: Int, worker k: Int) -> Int {
        max(1, (cores + k) / max(jobs, 1))
    }
}

/// A pointer that may be captured by the closures of `concurrentPerform`. Kernels only hand disjoint
/// ranges to each chunk, which is what makes this sound.
public struct SendablePointer<T>: @unchecked Sendable {
    public let p: UnsafeMutablePointer<T>
    @inlinable public init(_ p: UnsafeMutablePointer<T>) { self.p = p }
    @inlinable public init(_ p: UnsafePointer<T>) { self.p = UnsafeMutablePointer(mutating: p) }
}

/// Runs `body` over `0..<n` split into at most `Threads.count` contiguous ranges of at least `grain` items.
/// The split changes nothing in the results: callers make each index's output independent of the others.
@inlinable
public func parallelFor(_ n: Int, grain: Int, _ body: (Range<Int>) -> Void) {
    if n <= 0 { return }
    let chunks = max(1, min(Threads.count, n / max(grain, 1)))
    if chunks == 1 {
        body(0..<n)
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UncheckedBox(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            box.value((n * i / chunks)..<(n * (i + 1) / chunks))
        }
    }
}

/// Splits tasks 0..<costs.count into `chunks` (at least 1, at most costs.count) contiguous runs of about equal total
/// cost: chunk i is bounds[i] ..< bounds[i + 1] (chunks + 1 bounds, the first 0, the last costs.count). Depends only
/// on the costs and `chunks`.
public func costBounds(_ costs: [Int], chunks: Int) -> [Int] {
    let count = costs.count, total = costs.reduce(0, +)
    var bounds = [0]
    var acc = 0, next = 1
    for (i, c) in costs.enumerated() {
        acc += c
        // close chunk `next` once its share of the cost is reached, leaving a task for every later chunk
        while next < chunks && acc * chunks >= total * next && i + 1 <= count - (chunks - next) {
            bounds.append(i + 1)
            next += 1
        }
    }
    while bounds.count < chunks { bounds.append(count) }
    bounds.append(count)
    return bounds
}

/// Runs tasks 0..<costs.count split into at most `Threads.count` contiguous chunks of about equal total cost
/// (the split depends only on the costs and the thread count), each chunk in its own thread. The chunks'
/// small products stay below `matmul`'s split size, so they run side by side. `body` gets the task range
/// and the chunk number (0 runs on the calling thread's side of the split).
public func parallelTasks(costs: [Int], _ body: (Range<Int>, Int) -> Void) {
    let count = costs.count
    if count == 0 { return }
    let chunks = max(1, min(Threads.count, count))
    if chunks == 1 {
        body(0..<count, 0)
        return
    }
    let limits = costBounds(costs, chunks: chunks)
    withoutActuallyEscaping(body) { body in
        let box = UncheckedBox(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            box.value(limits[i]..<limits[i + 1], i)
        }
    }
}

public struct UncheckedBox<T>: @unchecked Sendable {
    public let value: T
    @inlinable public init(_ value: T) { self.value = value }
}
