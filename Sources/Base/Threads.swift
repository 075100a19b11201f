import Dispatch

/// Thread count used by the kernels, including the matrix products.
///
/// Non-BLAS kernels split their work into at most `count` contiguous chunks, and every output element is
/// computed by exactly one chunk with the same arithmetic whatever the split, so results are bit-identical
/// from run to run (and do not depend on scheduling).
///
/// OpenBLAS itself (module Kernels) is held at one thread (except inside single-row products, see `matmul`): `matmul` splits
/// large products into `count` blocks of C and runs them on Dispatch's threads, like every other kernel.
/// With OpenBLAS's own pool, its worker threads spin (sched_yield) for up to 2^28 cycles after each product
/// and took the second core from the kernels that run between products; one pool made a SmolLM2 training
/// step about 6% faster and saved 57 MiB of OpenBLAS buffers (docs/PERFORMANCE.md).
public enum Threads {
    /// Default 2 (the target machine has 2 cores). Set it before starting work, not while kernels run.
    nonisolated(unsafe) public static var count: Int = 2
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
