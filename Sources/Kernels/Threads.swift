import CBLAS
import Dispatch

/// Thread count used by the kernels and by OpenBLAS.
///
/// Non-BLAS kernels split their work into at most `count` contiguous chunks, and every output element is
/// computed by exactly one chunk with the same arithmetic whatever the split, so results are bit-identical
/// from run to run (and do not depend on scheduling). Setting `count` also sets OpenBLAS's thread count.
public enum Threads {
    /// Default 2 (the target machine has 2 cores). Set it before starting work, not while kernels run.
    nonisolated(unsafe) public static var count: Int = 2 {
        didSet { openblas_set_num_threads(Int32(max(1, count))) }
    }

    /// Makes sure OpenBLAS uses `count` threads before the first BLAS call.
    static let blasConfigured: Bool = {
        openblas_set_num_threads(Int32(max(1, count)))
        return true
    }()
}

/// A pointer that may be captured by the closures of `concurrentPerform`. Kernels only hand disjoint
/// ranges to each chunk, which is what makes this sound.
struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
    init(_ p: UnsafePointer<T>) { self.p = UnsafeMutablePointer(mutating: p) }
}

/// Runs `body` over `0..<n` split into at most `Threads.count` contiguous ranges of at least `grain` items.
/// The split changes nothing in the results: callers make each index's output independent of the others.
@inline(__always)
func parallelFor(_ n: Int, grain: Int, _ body: (Range<Int>) -> Void) {
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

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
