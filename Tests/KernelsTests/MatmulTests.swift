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
                        var worst: Float = 0
                        for i in 0..<m {
                            for j in 0..<n { worst = max(worst, abs(c[i * ldc + j] - expected[i * ldc + j])) }
                            for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "padding untouched") }
                        }
                        XCTAssertLessThan(worst, 1e-4, "\(m)x\(n)x\(k) transA \(transA) transB \(transB) threads \(threads)")
                    }
                }
            }
        }
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
