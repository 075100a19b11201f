import Base
import CBLAS

/// `C = alpha * op(A) * op(B) + beta * C`, row-major.
///
/// Products of at least `Products.largeSize` multiply-adds and more than one row, and every bf16 product,
/// run on oneDNN's matmul primitive on `Threads.count` threads (`Products`); bf16 inputs are rounded
/// copies, accumulation and C stay float32. The other float32 products run on OpenBLAS: `cblas_sgemv`
/// for one row, one single-threaded `cblas_sgemm` in the calling thread otherwise. With
/// `Products.backend == .openblas` large products are split into `Threads.count` blocks of C, one
/// single-threaded sgemm per block (the engine before oneDNN, kept as the benchmark baseline). beta must
/// be 0 or 1 for oneDNN; other values go to OpenBLAS.
///
/// Shapes: op(A) is (m, k), op(B) is (k, n), C is (m, n).
/// - `transA == false`: A is stored (m, k) with row stride `lda` (default k);
///   `transA == true`: A is stored (k, m) with row stride `lda` (default m) and used transposed.
/// - `transB == false`: B is stored (k, n) with row stride `ldb` (default n);
///   `transB == true`: B is stored (n, k) with row stride `ldb` (default k) and used transposed.
/// - C has row stride `ldc` (default n).
///
/// The model uses: y = x W^T (`transB: true`, W stored (out, in)), dx = dy W (no transpose),
/// dW += dy^T x (`transA: true`, beta 1).
///
/// `roundedB`: B already rounded to bf16 (`roundToBF16`), dense in its stored layout (`ldb` must be the
/// default). A bf16 product on oneDNN reads it instead of rounding `b` again (the same values: a weight
/// matrix rounded once and read by many products); every other product reads `b`.
public func matmul(
    _ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
    lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil, alpha: Float = 1, beta: Float = 0,
    precision: Precision = .fp32, roundedB: UnsafePointer<UInt16>? = nil
) {
    if m == 0 || n == 0 { return }
    let lda = lda ?? (transA ? m : k)
    let ldb = ldb ?? (transB ? k : n)
    let ldc = ldc ?? n
    precondition(roundedB == nil || ldb == (transB ? k : n), "matmul: roundedB must be dense in its stored layout")
    if k == 0 {
        if beta == 1 { return }
        for i in 0..<m {
            for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
        }
        return
    }
    let large = m * n * k >= Products.largeSize
    if Products.backend == .onednn && (large && m > 1 || precision == .bf16)
        && OneDNN.shared.run(c, a, b, m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb,
                             ldc: ldc, alpha: alpha, beta: beta, precision: precision, roundedB: roundedB) {
        return
    }
    _ = Threads.blasConfigured
    if m == 1 {
        // One row (decoding a token): OpenBLAS 0.3.21's sgemm packs all of B for it, which costs more than the
        // product; sgemv streams B once (5-7x faster for the model's weight shapes). Decoding calls it back to
        // back, 120 times per SmolLM2 token, where OpenBLAS's spinning pool answers faster than waking a
        // Dispatch thread per call (splitting here made generation 29% slower), so sgemv gets OpenBLAS's threads.
        // Only the transB form (c = B a, B stored (n, k), what decoding runs) splits its outputs whatever the thread
        // count; OpenBLAS's other form sums partial dot products per thread, which changed ~10% of the outputs at 8
        // threads (issue 40), so it runs on one.
        openblas_set_num_threads(Int32(transB ? max(1, Threads.count) : 1))
        matvecRow(c, a, b, n: n, k: k, incA: transA ? lda : 1, transB: transB, ldb: ldb, alpha: alpha, beta: beta)
        openblas_set_num_threads(1)
        return
    }
    sgemm(c, a, b, m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc,
          alpha: alpha, beta: beta, split: large)
}

/// `matmul` in float32 as one single-threaded call in the calling thread, for products computed inside a parallel
/// loop (attention's per-head blocks), where starting more threads would oversubscribe: oneDNN's `dnnl_sgemm` with the
/// calling thread's OpenMP team set to one thread (with `Products.backend == .onednn`), else OpenBLAS's sgemm. oneDNN
/// picks its kernels for the CPU it finds; OpenBLAS 0.3.21 does not know every CPU we get and falls back to SSE3
/// kernels on some (its "Prescott" on the Xeon of PERFORMANCE rounds 11-14: 192 x 256 x 64 at 27 GFLOP/s on one thread,
/// oneDNN 139). Either way one call computes the whole product in one thread, so the result does not depend on the
/// thread count.
public func matmulInThread(
    _ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
    lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil, alpha: Float = 1, beta: Float = 0
) {
    if m == 0 || n == 0 { return }
    if k == 0 || m == 1 {
        matmul(c, a, b, m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc,
               alpha: alpha, beta: beta)
        return
    }
    let lda = lda ?? (transA ? m : k), ldb = ldb ?? (transB ? k : n), ldc = ldc ?? n
    if Products.backend == .onednn
        && OneDNN.sgemmInThread(c, a, b, m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc,
                                alpha: alpha, beta: beta) {
        return
    }
    _ = Threads.blasConfigured
    sgemm(c, a, b, m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc, alpha: alpha, beta: beta,
          split: false)
}

/// The rows or columns of C that `sgemm` splits by (a multiple of every OpenBLAS sgemm kernel's unroll).
let splitBlock = 64

/// OpenBLAS's sgemm, single-threaded. With `split`, the product is split into row blocks of C (m >= n) or
/// column blocks, one sgemm per range of blocks on its own thread: each element of C is still one call's dot product
/// over the whole k. The blocks are `splitBlock` rows or columns whatever the thread count: OpenBLAS computes a
/// block's ragged edge (rows or columns short of its kernel's unroll) with other kernels, whose sums round
/// differently, so splitting at m / 3 changed about 0.2% of the elements against one call (issue 40); at multiples
/// of 64 every element is the one call's. Without, one call in the calling thread.
private func sgemm(
    _ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    m: Int, n: Int, k: Int, transA: Bool, transB: Bool, lda: Int, ldb: Int, ldc: Int,
    alpha: Float, beta: Float, split: Bool
) {
    let rows = m >= n, extent = rows ? m : n
    let ap = SendablePointer(a), bp = SendablePointer(b), cp = SendablePointer(c)
    let blocks = (extent + splitBlock - 1) / splitBlock
    parallelFor(blocks, grain: split ? 1 : blocks) { range in
        let part = (range.lowerBound * splitBlock)..<min(extent, range.upperBound * splitBlock)
        var a = ap.p, b = bp.p, c = cp.p, m = m, n = n
        if rows {
            a += transA ? part.lowerBound : part.lowerBound * lda
            c += part.lowerBound * ldc
            m = part.count
        } else {
            b += transB ? part.lowerBound * ldb : part.lowerBound
            c += part.lowerBound
            n = part.count
        }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// c (1, n) = alpha * a (1, k) op(B) + beta * c, as one sgemv over B. a's elements are `incA` apart.
private func matvecRow(
    _ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    n: Int, k: Int, incA: Int, transB: Bool, ldb: Int, alpha: Float, beta: Float
) {
    // beta 0 means "ignore c" in sgemm; make it so for sgemv too even if c holds NaN.
    if beta == 0 { c.update(repeating: 0, count: n) }
    if transB {
        // B stored (n, k): c = B a, row-major no-transpose.
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb), a, Int32(incA), beta, c, 1)
    } else {
        // B stored (k, n): c = B^T a.
        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb), a, Int32(incA), beta, c, 1)
    }
}

/// The naive triple loop with the same meaning as `matmul`, accumulating in Double. For tests.
public func matmulReference(
    _ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
    lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil, alpha: Float = 1, beta: Float = 0
) {
    let lda = lda ?? (transA ? m : k)
    let ldb = ldb ?? (transB ? k : n)
    let ldc = ldc ?? n
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let av = transA ? a[p * lda + i] : a[i * lda + p]
                let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                s += Double(av) * Double(bv)
            }
            let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
            c[i * ldc + j] = Float(Double(alpha) * s + old)
        }
    }
}

extension Threads {
    /// Makes sure OpenBLAS runs single-threaded before the first BLAS call (`Threads` splits the work).
    static let blasConfigured: Bool = {
        openblas_set_num_threads(1)
        return true
    }()
}
