import Base
import XCTest
@testable import Kernels

final class MatmulTests: XCTestCase {
    /// Every transpose combination, with row strides wider than the rows, alpha and beta.
    func testMatmulMatchesNaiveForEveryTransposeCombination() {
        var rng = TestRNG(1)
        let m = 7, n = 5, k = 9
        for transA in [false, true] {
            for transB in [false, true] {
                for (alpha, beta) in [(Float(1), Float(0)), (Float(0.5), Float(1)), (Float(-2), Float(0.25))] {
                    let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 2, ldc = n + 4
                    let a = rng.array((transA ? k : m) * lda), b = rng.array((transB ? n : k) * ldb)
                    let c0 = rng.array(m * ldc)
                    var c1 = c0, c2 = c0
                    matmul(&c1, a, b, m: m, n: n, k: k, transA: transA, transB: transB,
                           lda: lda, ldb: ldb, ldc: ldc, alpha: alpha, beta: beta)
                    matmulReference(&c2, a, b, m: m, n: n, k: k, transA: transA, transB: transB,
                                    lda: lda, ldb: ldb, ldc: ldc, alpha: alpha, beta: beta)
                    for i in 0..<m {
                        for j in 0..<n {
                            XCTAssertEqual(c1[i * ldc + j], c2[i * ldc + j], accuracy: 1e-5,
                                           "transA \(transA) transB \(transB) (\(i),\(j))")
                        }
                        // Padding past column n is untouched.
                        for j in n..<ldc { XCTAssertEqual(c1[i * ldc + j], c0[i * ldc + j]) }
                    }
                }
            }
        }
    }

    /// m == 1 goes through sgemv: every transpose combination, strides, alpha and beta; beta 0 ignores NaN in C.
    func testSingleRowMatchesNaive() {
        var rng = TestRNG(2)
        let n = 37, k = 23
        for transA in [false, true] {
            for transB in [false, true] {
                for (alpha, beta) in [(Float(1), Float(0)), (Float(0.5), Float(1)), (Float(-2), Float(0.25))] {
                    let lda = transA ? 3 : k, ldb = (transB ? k : n) + 2
                    let a = rng.array(transA ? k * lda : k), b = rng.array((transB ? n : k) * ldb)
                    var c0 = rng.array(n)
                    if beta == 0 { c0[3] = .nan }
                    var c1 = c0, c2 = c0
                    matmul(&c1, a, b, m: 1, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb,
                           alpha: alpha, beta: beta)
                    matmulReference(&c2, a, b, m: 1, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb,
                                    alpha: alpha, beta: beta)
                    for j in 0..<n {
                        XCTAssertEqual(c1[j], c2[j], accuracy: 1e-5, "transA \(transA) transB \(transB) beta \(beta) j \(j)")
                    }
                }
            }
        }
    }

    /// Products large enough to be split across threads (by rows of C when m >= n, else by columns), every
    /// transpose combination, with 1, 2 and 3 threads, against the naive product.
    func testSplitProductsMatchNaiveForAnyThreadCount() {
        var rng = TestRNG(3)
        let saved = Threads.count
        defer { Threads.count = saved }
        for (m, n, k) in [(151, 120, 121), (120, 151, 121)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n + 3
                    let a = rng.array((transA ? k : m) * lda), b = rng.array((transB ? n : k) * ldb)
                    let c0 = rng.array(m * ldc)
                    var expected = c0
                    matmulReference(&expected, a, b, m: m, n: n, k: k, transA: transA, transB: transB,
                                    lda: lda, ldb: ldb, ldc: ldc, alpha: 0.5, beta: 0.25)
                    for threads in [1, 2, 3] {
                        Threads.count = threads
                        var c = c0
                        matmul(&c, a, b, m: m, n: n, k: k, transA: transA, transB: transB,
                               lda: lda, ldb: ldb, ldc: ldc, alpha: 0.5, beta: 0.25)
                        XCTAssertLessThan(worstError(c, expected, untouched: c0, m: m, n: n, ldc: ldc), 1e-4,
                                          "\(m)x\(n)x\(k) transA \(transA) transB \(transB) threads \(threads)")
                    }
                }
            }
        }
    }

    /// Large products go to oneDNN (primitives are created for each new shape's blocks, the same for every thread count) and
    /// match the naive product for every transpose combination, strides, alpha and beta 0 or 1; the
    /// OpenBLAS baseline does too.
    func testLargeProductsMatchNaiveOnBothBackends() {
        var rng = TestRNG(4)
        let saved = Products.backend, savedThreads = Threads.count
        defer { Products.backend = saved; Threads.count = savedThreads }
        let m = 131, n = 129, k = 127  // 2.15M multiply-adds >= Products.largeSize
        XCTAssertGreaterThanOrEqual(m * n * k, Products.largeSize)
        for threads in [1, 2, 3] {
            Threads.count = threads
            for backend in Products.Backend.allCases {
                Products.backend = backend
                for transA in [false, true] {
                    for transB in [false, true] {
                        for (alpha, beta) in [(Float(1), Float(0)), (Float(0.5), Float(1))] {
                            let lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n + 3
                            let a = rng.array((transA ? k : m) * lda), b = rng.array((transB ? n : k) * ldb)
                            var c0 = rng.array(m * ldc)
                            if beta == 0 { c0[5] = .nan }  // beta 0 ignores C
                            var expected = c0, c = c0
                            matmulReference(&expected, a, b, m: m, n: n, k: k, transA: transA, transB: transB,
                                            lda: lda, ldb: ldb, ldc: ldc, alpha: alpha, beta: beta)
                            let before = Products.primitivesCreated
                            matmul(&c, a, b, m: m, n: n, k: k, transA: transA, transB: transB,
                                   lda: lda, ldb: ldb, ldc: ldc, alpha: alpha, beta: beta)
                            if backend == .onednn && threads == 1 {
                                XCTAssertGreaterThan(Products.primitivesCreated, before, "a new shape creates primitives")
                            } else if backend == .onednn {
                                // planned for one thread per block: every thread count runs the same primitives
                                XCTAssertEqual(Products.primitivesCreated, before, "threads \(threads) reuse the primitives")
                            } else {
                                XCTAssertEqual(Products.primitivesCreated, before, "OpenBLAS creates none")
                            }
                            XCTAssertLessThan(worstError(c, expected, untouched: c0, m: m, n: n, ldc: ldc), 1e-4,
                                              "\(backend) threads \(threads) transA \(transA) transB \(transB) alpha \(alpha) beta \(beta)")
                        }
                    }
                }
            }
        }
        // The same shape again reuses its primitive.
        Products.backend = .onednn
        let a = rng.array(m * k), b = rng.array(k * n)
        var c = [Float](repeating: 0, count: m * n)
        matmul(&c, a, b, m: m, n: n, k: k)
        let created = Products.primitivesCreated
        matmul(&c, a, b, m: m, n: n, k: k)
        XCTAssertEqual(Products.primitivesCreated, created)
    }

    /// bf16 products: exactly the naive product of the bf16-rounded inputs, up to float32 accumulation.
    func testBF16ProductsAreTheProductOfRoundedInputs() throws {
        try XCTSkipUnless(Products.bf16Supported, "no native bf16 on this CPU (\(Products.isaName))")
        var rng = TestRNG(5)
        let m = 140, n = 130, k = 120
        for transA in [false, true] {
            for transB in [false, true] {
                for beta in [Float(0), 1] {
                    let lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n
                    let a = rng.array((transA ? k : m) * lda), b = rng.array((transB ? n : k) * ldb)
                    let c0 = rng.array(m * ldc)
                    var c = c0, exact = c0, rounded = c0
                    matmul(&c, a, b, m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb,
                           beta: beta, precision: .bf16)
                    matmulReference(&exact, a, b, m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, beta: beta)
                    matmulReference(&rounded, a.map(bf16Naive), b.map(bf16Naive), m: m, n: n, k: k,
                                    transA: transA, transB: transB, lda: lda, ldb: ldb, beta: beta)
                    XCTAssertLessThan(worstError(c, rounded, untouched: c0, m: m, n: n, ldc: ldc), 1e-4,
                                      "transA \(transA) transB \(transB) beta \(beta)")
                    let worstExact = worstError(c, exact, untouched: c0, m: m, n: n, ldc: ldc)
                    // and it is not the float32 product: the inputs really were rounded
                    XCTAssertGreaterThan(worstExact, 1e-3)
                }
            }
        }
    }

    /// A bf16 product given B already rounded (`roundedB`, as the model's weight copy is) gives the product
    /// that rounds B itself, bit for bit; an fp32 product ignores it. The parallel rounding is the serial one.
    func testRoundedBGivesTheSameBF16Product() throws {
        try XCTSkipUnless(Products.bf16Supported, "no native bf16 on this CPU (\(Products.isaName))")
        var rng = TestRNG(8)
        let m = 70, n = 150, k = 90
        for transB in [false, true] {
            let a = rng.array(m * k), b = rng.array(k * n)
            var serial = [UInt16](repeating: 0, count: b.count), parallel = serial
            roundToBF16(&serial, b, count: b.count)
            roundToBF16Parallel(&parallel, b, count: b.count)
            XCTAssertEqual(parallel, serial)
            var own = [Float](repeating: 0, count: m * n), given = own, fp32 = own, fp32Given = own
            matmul(&own, a, b, m: m, n: n, k: k, transB: transB, precision: .bf16)
            matmul(&given, a, b, m: m, n: n, k: k, transB: transB, precision: .bf16, roundedB: serial)
            XCTAssertEqual(given.map(\.bitPattern), own.map(\.bitPattern), "transB \(transB)")
            matmul(&fp32, a, b, m: m, n: n, k: k, transB: transB)
            matmul(&fp32Given, a, b, m: m, n: n, k: k, transB: transB, roundedB: serial)
            XCTAssertEqual(fp32Given.map(\.bitPattern), fp32.map(\.bitPattern))
            XCTAssertNotEqual(fp32, own)
        }
        let long = rng.array((1 << 17) + 5)
        var serial = [UInt16](repeating: 0, count: long.count), parallel = serial
        roundToBF16(&serial, long, count: long.count)
        roundToBF16Parallel(&parallel, long, count: long.count)
        XCTAssertEqual(parallel, serial)
    }

    /// Rounding to bf16 against a naive rule in Double: the nearer of the two neighbouring bf16 values,
    /// ties to the even one; infinities kept, NaN stays NaN. The special values sit at the start (the 16-wide
    /// vector loop, where the CPU has AVX-512) and in the tail (one value at a time) of arrays of many lengths.
    func testRoundToBF16MatchesNaiveRounding() {
        var rng = TestRNG(6)
        let specials: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
                                 -.leastNormalMagnitude, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
                                 Float(bitPattern: 0x3F80_8001), Float(bitPattern: 0x7F7F_FFFF), Float(bitPattern: 0xFF80_0001)]
        var checked = 0
        for length in [1, 5, 15, 16, 17, 31, 33, 64, 5000] {
            let body = rng.array(length).map { $0 * 1000 }
            for values in [specials + body, body + specials] {
                var out = [UInt16](repeating: 0, count: values.count)
                roundToBF16(&out, values, count: values.count)
                for (v, r) in zip(values, out) {
                    let got = floatFromBF16(r), want = bf16Naive(v)
                    if v.isNaN {
                        XCTAssertTrue(got.isNaN, "NaN \(v.bitPattern) at length \(length)")
                        XCTAssertEqual(r & 0x8000, UInt16(truncatingIfNeeded: v.bitPattern >> 16) & 0x8000, "a NaN keeps its sign")
                        continue
                    }
                    XCTAssertEqual(got.bitPattern, want.bitPattern, "\(v) at length \(length)")
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 10_000)
        print("roundToBF16 vectorized here: \(roundToBF16IsVectorized)")
    }

    func testReferenceMatmulByHand() {
        // [[1,2],[3,4]] x [[5,6],[7,8]] = [[19,22],[43,50]]
        var c = [Float](repeating: 0, count: 4)
        matmulReference(&c, [1, 2, 3, 4], [5, 6, 7, 8], m: 2, n: 2, k: 2)
        XCTAssertEqual(c, [19, 22, 43, 50])
        matmul(&c, [1, 2, 3, 4], [5, 6, 7, 8], m: 2, n: 2, k: 2, transA: true)  // A^T B
        XCTAssertEqual(c, [26, 30, 38, 44])
    }
}

/// The largest |c - expected| over the (m, n) block (row stride ldc) of a product; the padding past
/// column n must keep c0's bits (a product writes only its block). NaN in the block counts as infinite.
func worstError(_ c: [Float], _ expected: [Float], untouched c0: [Float], m: Int, n: Int, ldc: Int,
                file: StaticString = #filePath, line: UInt = #line) -> Float {
    var worst: Float = 0
    for i in 0..<m {
        for j in 0..<n {
            let e = abs(c[i * ldc + j] - expected[i * ldc + j])
            worst = max(worst, e.isNaN ? .infinity : e)
        }
        for j in n..<ldc {
            XCTAssertEqual(c[i * ldc + j].bitPattern, c0[i * ldc + j].bitPattern, "padding untouched", file: file, line: line)
        }
    }
    return worst
}

/// bf16 rounding the slow way: the two bf16 neighbours of v, compared in Double (IEEE rounding: past the
/// largest finite value, the upper neighbour is infinity, at the distance 2^128 would be).
func bf16Naive(_ v: Float) -> Float {
    if v.isNaN || v.isInfinite { return v }
    let low = Float(bitPattern: v.bitPattern & 0xFFFF_0000)
    let high = Float(bitPattern: (v.bitPattern & 0xFFFF_0000) &+ 0x1_0000)
    let highValue = high.isInfinite ? (high < 0 ? -1 : 1) * 0x1p128 : Double(high)
    let dl = abs(Double(v) - Double(low)), dh = abs(highValue - Double(v))
    if dl < dh { return low }
    if dh < dl { return high }
    return (low.bitPattern >> 16) & 1 == 0 ? low : high
}
