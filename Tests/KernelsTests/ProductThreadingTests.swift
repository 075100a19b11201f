import Base
import Kernels
import XCTest

/// Issue 40: a product's result must not depend on the thread count. Every product shape the model runs (the block's
/// weight products and their gradients, the output head, single rows of decoding), on both engines, with 1, 2 and 3
/// threads, bit for bit.
final class ProductThreadingTests: XCTestCase {
    static let counts = [1, 2, 3, 4, 8, 16]
    /// The OpenBLAS engine (`Products.backend = .openblas`): split products and single rows.
    func testOpenBLASProductsDoNotDependOnThreadCount() {
        assertProductsDoNotDependOnThreadCount(.openblas)
    }

    /// The default engine (oneDNN for large products, OpenBLAS for small ones and single rows). Before the fixed blocks
    /// (`OneDNN.run`), oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, as on Zen 3) changed 0.3-10% of the tiny
    /// preset's products' elements between thread counts; `make test` runs this at both ISAs.
    func testOneDNNProductsDoNotDependOnThreadCount() {
        assertProductsDoNotDependOnThreadCount(.onednn)
    }

    func assertProductsDoNotDependOnThreadCount(_ backend: Products.Backend) {
        var rng = TestRNG(40)
        let saved = Threads.count, savedBackend = Products.backend
        defer { Threads.count = saved; Products.backend = savedBackend }
        // (m, n, k, transA, transB, label)
        let shapes: [(Int, Int, Int, Bool, Bool, String)] = [
            (1024, 576, 576, false, true, "x Wq^T"),
            (1024, 1536, 576, false, true, "x Wgate^T"),
            (1024, 576, 1536, false, false, "dY W"),
            (1536, 576, 1024, true, false, "dY^T X (dW)"),
            (576, 576, 1024, true, false, "dW of o"),
            (512, 8192, 576, false, true, "head"),
            (8192, 576, 512, true, false, "head dW"),
            (1, 1536, 576, false, true, "one row x W^T"),
            (1, 576, 1536, false, false, "one row dY W"),
            (3, 576, 576, false, true, "three rows"),
            (300, 259, 64, false, true, "tiny head"),
            (259, 64, 300, true, false, "tiny head dW"),
            (300, 64, 259, false, false, "tiny head dx"),
            (400, 128, 64, false, true, "tiny x Wgate^T"),
            (128, 64, 400, true, false, "tiny dW gate"),
            (192, 49152, 576, false, true, "SmolLM2 head, 192 rows"),
            (192, 576, 49152, false, false, "SmolLM2 head dx, 192 rows"),
        ]
        var failures: [String] = []
        do {
            Products.backend = backend
            for (m, n, k, tA, tB, label) in shapes {
                let a = rng.array(m * k), b = rng.array(k * n)
                let c0 = rng.array(m * n)
                var results: [[Float]] = []
                for threads in Self.counts {
                    Threads.count = threads
                    for beta: Float in [0, 1] {
                        var c = c0
                        matmul(&c, a, b, m: m, n: n, k: k, transA: tA, transB: tB, beta: beta)
                        results.append(c)
                    }
                }
                for (i, r) in results.enumerated().dropFirst(2) where r != results[i % 2] {
                    let differing = zip(r, results[i % 2]).filter { $0 != $1 }.count
                    failures.append("\(backend) \(label) \(m)x\(n)x\(k) beta \(i % 2): \(Self.counts[i / 2]) threads differ from 1 in \(differing) of \(r.count)")
                }
            }
        }
        XCTAssertTrue(failures.isEmpty, failures.joined(separator: "\n"))
    }
}
