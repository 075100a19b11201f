import Base
import CBLAS
import CDNNL
import CKernels
import Foundation

/// The library behind the large matrix products, and what this CPU can do with it.
///
/// Products of at least `Products.largeSize` multiply-adds (the model's weight products, the output head)
/// and every bf16 product go through oneDNN's matmul primitive: it picks its kernels at run time for the
/// CPU it finds (AVX2 on Zen 3, AVX-512 on Zen 4 and 5, AVX512-BF16 for bf16 inputs), so one binary runs
/// the best kernel on each host. Attention's per-head blocks, run inside our own parallel loops, go to oneDNN's
/// `dnnl_sgemm` on one thread each (`matmulInThread`). Smaller float32 products and single-row ones (decoding) stay on
/// OpenBLAS in the calling thread, where they were as fast or faster; docs/PERFORMANCE.md has the measurements.
public enum Products {
    public enum Backend: String, Sendable, CaseIterable {
        case onednn, openblas
    }

    /// Which library runs the large products. `alignscope bench` switches it to measure the OpenBLAS
    /// baseline in the same run; everything else leaves it at `.onednn`. Set it only between products.
    /// With `.openblas` every product is float32 (bf16 requests included).
    nonisolated(unsafe) public static var backend: Backend = .onednn
    /// oneDNN products split into fixed blocks of C, each a one-thread primitive (`OneDNN.run`), so that the numbers do
    /// not depend on the thread count; false runs each as one primitive planned for `Threads.count` threads (the
    /// benchmarks' baseline). Set it before starting work.
    nonisolated(unsafe) public static var blocked = true

    /// Products below this many multiply-adds run on OpenBLAS in the calling thread.
    public static let largeSize = 1 << 21

    /// Whether oneDNN runs bf16 products natively here (AVX512-BF16 or AMX); without it oneDNN would
    /// emulate them slowly, so `precision: "bf16"` is refused instead.
    public static var bf16Supported: Bool { (isa.rawValue & dnnl_cpu_isa_avx512_core_bf16.rawValue) == dnnl_cpu_isa_avx512_core_bf16.rawValue }

    /// oneDNN's name for the instruction set it uses on this CPU.
    public static var isaName: String {
        switch isa {
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx2: return "avx2"
        default: return "isa 0x" + String(isa.rawValue, radix: 16)
        }
    }

    static var isa: dnnl_cpu_isa_t { dnnl_get_effective_cpu_isa() }

    /// oneDNN's version as the loaded library reports it ("2.6.3").
    public static var oneDNNVersion: String {
        guard let v = dnnl_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }

    /// OpenBLAS's build line and the kernels it picked for this CPU ("OpenBLAS 0.3.21 ... (kernels COOPERLAKE)").
    public static var openBLASConfig: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        return "\(config.trimmingCharacters(in: .whitespaces)) (kernels \(openBLASKernels))"
    }

    /// The kernels OpenBLAS picked for this CPU ("Zen", "SkylakeX", ...; "Prescott", its SSE3 fallback, for a CPU it does not
    /// know: OpenBLAS 0.3.21 on a Xeon of family 6 model 207, whose small single-thread products then ran at a quarter of
    /// SkylakeX's kernels' rate).
    public static var openBLASKernels: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// Makes oneDNN's OpenMP workers sleep between products instead of spinning (libgomp's default spins
    /// for a while after each parallel region, and the spinning workers took the cores from our own
    /// kernels' threads: 10% of a training step, docs/PERFORMANCE.md). libgomp reads OMP_WAIT_POLICY once,
    /// when it is loaded, before `main`; so when the variable is unset this sets it to "passive" and
    /// executes the program again, once, with the same arguments (same pid, descriptors, signal mask). A
    /// value the user set is kept. If the re-execution fails the program goes on as it is.
    public static func preparePassiveOpenMP() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "passive", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// Frees the primitives, the scratchpad and the bf16 staging buffers (they are made again as needed):
    /// for a benchmark that measures memory after measuring products of other shapes.
    public static func releaseBuffers() {
        OneDNN.shared.withLock { $0.release() }
    }

    /// Primitives created so far (each shape, transpose, type and accumulate flag is created once).
    public static var primitivesCreated: Int { OneDNN.shared.withLock { $0.created } }
}

/// oneDNN's engine, stream and scratchpad, the primitive cache and the bf16 staging buffers, behind one
/// lock: the large products run one at a time, each on all `Threads.count` threads.
final class OneDNN: @unchecked Sendable {
    static let shared = OneDNN()

    struct Key: Hashable {
        var m, n, k: Int
        var transA, transB: Bool
        var lda, ldb, ldc: Int
        var bf16, accumulate: Bool
        var alpha: Float
        /// OpenMP threads the primitive is planned for (`Threads.count` when it was made).
        var threads = max(1, Threads.count)
    }

    private let lock = NSLock()
    /// nil when oneDNN could not start (every product then falls back to OpenBLAS).
    private let engine: dnnl_engine_t?, stream: dnnl_stream_t?
    /// One stream per thread of a blocked product (`run`), the first being `stream`.
    private var streams: [dnnl_stream_t?] = []
    private var cache: [Key: dnnl_primitive_t] = [:]
    private(set) var created = 0
    /// Each thread's scratchpad (ours, not oneDNN's global one), and the bf16 copies of A and B.
    private var scratch: [GrowableBuffer] = [], stageA = GrowableBuffer(), stageB = GrowableBuffer()
    /// At most this many primitives are kept; oneDNN keeps its own cache of compiled kernels behind them,
    /// so recreating an evicted one is cheap.
    static let capacity = 256
    /// The blocks of C a product is split into, each one single-threaded primitive (`run`).
    static let blockRows = 256, blockColumns = 512

    private init() {
        var e: dnnl_engine_t?, s: dnnl_stream_t?
        if dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success, let e,
           dnnl_stream_create(&s, e, UInt32(dnnl_stream_default_flags.rawValue)) == dnnl_success, let s {
            engine = e
            stream = s
            streams = [s]
        } else {
            engine = nil
            stream = nil
        }
    }

    /// C = alpha op(A) op(B) + beta C (row-major) as oneDNN's `dnnl_sgemm` on the calling thread alone (its OpenMP team
    /// set to one thread: the call starts none). No primitive, no lock: the call is thread-safe, its kernels are
    /// generated once per shape class and cached by oneDNN. False when oneDNN refuses the call.
    static func sgemmInThread(_ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                              m: Int, n: Int, k: Int, transA: Bool, transB: Bool, lda: Int, ldb: Int, ldc: Int,
                              alpha: Float, beta: Float) -> Bool {
        omp_set_num_threads(1)
        let no = CChar(UInt8(ascii: "N")), yes = CChar(UInt8(ascii: "T"))
        return dnnl_sgemm(transA ? yes : no, transB ? yes : no, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb),
                          beta, c, Int64(ldc)) == dnnl_success
    }

    func withLock<T>(_ body: (OneDNN) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(self)
    }

    /// The primitive for `key`, created on first use (planned for the calling thread's OpenMP thread
    /// count, which `run` sets to `key.threads`); nil when oneDNN refuses the shape.
    private func primitive(_ key: Key, engine: dnnl_engine_t, evicting: Bool = true) -> dnnl_primitive_t? {
        if let p = cache[key] { return p }
        if evicting && cache.count >= Self.capacity { destroyPrimitives() }
        var status = dnnl_success
        guard let p = alignscope_matmul_create(
            engine, Int64(key.m), Int64(key.n), Int64(key.k), key.transA ? 1 : 0, key.transB ? 1 : 0,
            Int64(key.lda), Int64(key.ldb), Int64(key.ldc), key.bf16 ? 1 : 0, key.accumulate ? 1 : 0,
            key.alpha, &status)
        else { return nil }
        cache[key] = p
        created += 1
        return p
    }

    func release() {
        destroyPrimitives()
        scratch = []
        stageA = GrowableBuffer()
        stageB = GrowableBuffer()
    }

    private func destroyPrimitives() {
        for (_, old) in cache { dnnl_primitive_destroy(old) }
        cache.removeAll(keepingCapacity: true)
    }

    /// C = alpha op(A) op(B) (+ C when beta == 1), as `matmul` defines it. Returns false (nothing done)
    /// when oneDNN cannot run it, so the caller falls back to OpenBLAS.
    ///
    /// Threads, and why the numbers do not depend on their count (issue 40): C is split into fixed blocks of
    /// `blockRows` x `blockColumns` (whatever the thread count), each block one primitive planned for ONE thread (so
    /// oneDNN never splits k, and each element's sum is the block's kernel's, fixed by the block's shape); the blocks
    /// run on `Threads.count` OpenMP threads (`alignscope_matmul_blocks`: libgomp's parallel region, inside which
    /// oneDNN runs each primitive on its calling thread), contiguous runs of blocks of about equal size per thread.
    /// Planned for all threads instead, oneDNN's AVX2 kernels changed 0.3-10% of a product's elements between 1, 2,
    /// 3 and 4 threads (its AVX-512 ones did not, on the shapes tried). The workers sleep between products instead of
    /// spinning against our kernels' threads when OMP_WAIT_POLICY is passive, which `Products.preparePassiveOpenMP`
    /// arranges (spinning cost 10% of a training step). (Running the primitives from our own Dispatch threads
    /// instead corrupted the heap now and then: Debian's oneDNN 2.6, OpenMP build.)
    func run(_ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
             m: Int, n: Int, k: Int, transA: Bool, transB: Bool, lda: Int, ldb: Int, ldc: Int,
             alpha: Float, beta: Float, precision: Precision, roundedB: UnsafePointer<UInt16>? = nil) -> Bool {
        guard beta == 0 || beta == 1 else { return false }
        lock.lock()
        defer { lock.unlock() }
        guard let engine, let stream else { return false }
        let bf16 = precision == .bf16
        let (ap, la, bp, lb) = inputs(a, b, m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb,
                                      bf16: bf16, roundedB: roundedB)
        let width = bf16 ? 2 : 4
        func blockKey(m: Int, n: Int, threads: Int) -> Key {
            Key(m: m, n: n, k: k, transA: transA, transB: transB, lda: la, ldb: lb, ldc: ldc, bf16: bf16,
                accumulate: beta == 1, alpha: alpha, threads: threads)
        }
        guard Products.blocked else {
            // the product as one primitive planned for `Threads.count` threads (before issue 40): the benchmarks'
            // baseline for what the fixed blocks cost
            let key = blockKey(m: m, n: n, threads: max(1, Threads.count))
            omp_set_num_threads(Int32(key.threads))
            guard let p = primitive(key, engine: engine) else { return false }
            if scratch.isEmpty { scratch.append(GrowableBuffer()) }
            let status = alignscope_matmul_execute(p, engine, stream, ap, bp, c, scratch[0].reserve(alignscope_scratchpad_size(p)))
            precondition(status == dnnl_success, "oneDNN matmul \(m)x\(n)x\(k): status \(status.rawValue)")
            return true
        }
        omp_set_num_threads(1)  // the blocks' primitives are planned for one thread
        // At most four block shapes: make room for them first, so that no primitive of this product is evicted
        // (destroyed) while its blocks are being listed.
        if cache.count + 4 > Self.capacity { destroyPrimitives() }
        var blocks: [alignscope_block_t] = [], sizes: [Int] = [], primitives: [dnnl_primitive_t] = []
        for i0 in stride(from: 0, to: m, by: Self.blockRows) {
            for j0 in stride(from: 0, to: n, by: Self.blockColumns) {
                let key = blockKey(m: min(Self.blockRows, m - i0), n: min(Self.blockColumns, n - j0), threads: 1)
                guard let p = primitive(key, engine: engine, evicting: false) else { return false }
                primitives.append(p)
                sizes.append(key.m * key.n)
                // the block's first row of op(A), first column of op(B), and its first element of C
                blocks.append(alignscope_block_t(prim: p, a: ap + (transA ? i0 : i0 * la) * width,
                                                 b: bp + (transB ? j0 * lb : j0) * width, c: c + i0 * ldc + j0))
            }
        }
        // contiguous runs of blocks of about equal size, one per thread
        let threads = max(1, min(Threads.count, blocks.count))
        let bounds = costBounds(sizes, chunks: threads).map { Int32($0) }
        while streams.count < threads {
            var s: dnnl_stream_t?
            guard dnnl_stream_create(&s, engine, UInt32(dnnl_stream_default_flags.rawValue)) == dnnl_success, s != nil else { return false }
            streams.append(s)
        }
        let scratchBytes = primitives.map { alignscope_scratchpad_size($0) }.max() ?? 0
        while scratch.count < threads { scratch.append(GrowableBuffer()) }
        var scratchPointers: [UnsafeMutableRawPointer?] = (0..<threads).map { scratch[$0].reserve(scratchBytes) }
        var status = [dnnl_status_t](repeating: dnnl_success, count: threads)
        let result = alignscope_matmul_blocks(engine, &streams, blocks, bounds, &scratchPointers, Int32(threads), &status)
        precondition(result == dnnl_success, "oneDNN matmul \(m)x\(n)x\(k): status \(result.rawValue)")
        return true
    }

    /// The product's inputs as the primitives read them, with their row strides: bf16 inputs staged densely in their
    /// stored layout (A as (m, k) or (k, m), B as (k, n) or (n, k); `roundedB` when given), float32 ones as they are.
    private func inputs(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, m: Int, n: Int, k: Int, transA: Bool,
                        transB: Bool, lda: Int, ldb: Int, bf16: Bool, roundedB: UnsafePointer<UInt16>?)
        -> (a: UnsafeRawPointer, lda: Int, b: UnsafeRawPointer, ldb: Int) {
        guard bf16 else { return (UnsafeRawPointer(a), lda, UnsafeRawPointer(b), ldb) }
        let sa = stageBF16(a, rows: transA ? k : m, cols: transA ? m : k, ld: lda, into: stageA)
        let sb = roundedB ?? UnsafePointer(stageBF16(b, rows: transB ? n : k, cols: transB ? k : n, ld: ldb, into: stageB))
        return (UnsafeRawPointer(sa), transA ? m : k, UnsafeRawPointer(sb), transB ? k : n)
    }
}

/// A buffer grown as needed (64-byte aligned, never shrunk).
final class GrowableBuffer {
    private var pointer: UnsafeMutableRawPointer?
    private var capacity = 0

    deinit { pointer?.deallocate() }

    /// At least `bytes` bytes (the old contents are not kept).
    func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes > capacity || pointer == nil {
            pointer?.deallocate()
            pointer = .allocate(byteCount: max(bytes, 1), alignment: 64)
            capacity = bytes
        }
        return pointer!
    }
}

/// `src` (rows, cols) with row stride `ld`, rounded to bf16 densely into `buffer`.
private func stageBF16(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int,
                       into buffer: GrowableBuffer) -> UnsafeMutablePointer<UInt16> {
    let dst = buffer.reserve(rows * cols * MemoryLayout<UInt16>.stride).assumingMemoryBound(to: UInt16.self)
    if ld == cols {
        roundToBF16Parallel(dst, src, count: rows * cols)
        return dst
    }
    let d = SendablePointer(dst), s = SendablePointer(src)
    parallelFor(rows, grain: max(1, 65536 / max(cols, 1))) { part in
        for i in part { roundToBF16(d.p + i * cols, s.p + i * ld, count: cols) }
    }
    return dst
}

/// `roundToBF16` over `count` values on `Threads.count` threads (each value rounded as `roundToBF16` does).
public func roundToBF16Parallel(_ dst: UnsafeMutablePointer<UInt16>, _ src: UnsafePointer<Float>, count: Int) {
    let d = SendablePointer(dst), s = SendablePointer(src), block = 1 << 16
    parallelFor((count + block - 1) / block, grain: 1) { part in
        for i in part { roundToBF16(d.p + i * block, s.p + i * block, count: min(block, count - i * block)) }
    }
}

/// bf16 values of `src`: float32's top 16 bits, rounded to nearest, ties to even (NaN stays NaN, quieted).
/// One implementation, in C (`alignscope_round_bf16`): AVX-512 integer instructions where the CPU has them
/// (3-4x the baseline x86-64 code Swift emits here on data in cache, 1.4-1.8x from memory; docs/PERFORMANCE.md
/// round 10), else one value at a time.
public func roundToBF16(_ dst: UnsafeMutablePointer<UInt16>, _ src: UnsafePointer<Float>, count: Int) {
    alignscope_round_bf16(dst, src, count)
}

/// Whether `roundToBF16` runs its AVX-512 loop on this CPU.
public var roundToBF16IsVectorized: Bool { alignscope_round_bf16_vectorized() != 0 }

/// The float32 value of bf16 bits.
@inlinable
public func floatFromBF16(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }
