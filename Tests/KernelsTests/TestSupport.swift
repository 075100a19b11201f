import XCTest

/// Deterministic test data.
struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-scale, scale).
    mutating func float(_ scale: Float = 1) -> Float { (Float(next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
    mutating func array(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in float(scale) } }
}

/// Checks `analytic` (dL/dx) against central finite differences of `loss` at x, entry by entry.
///
/// The kernels are fp32, the loss is summed in Double. With step h the central difference has a truncation
/// error O(h^2) (third derivative) and a rounding error of about (fp32 eps * |terms of L|) / h; for the O(1)
/// values used here (h = 1e-2) both stay below 1e-3, while a wrong backward is off by O(0.1 |g|) or more.
/// A NaN or infinite gradient (analytic or numeric) is a failure: the comparison is written so that NaN
/// cannot pass it.
func checkGradient(
    _ label: String, _ x: inout [Float], analytic: [Float], h: Float = 1e-2, atol: Double = 1e-3, rtol: Double = 1e-2,
    file: StaticString = #filePath, line: UInt = #line, _ loss: ([Float]) -> Double
) {
    if let failure = gradientMismatch(label, &x, analytic: analytic, h: h, atol: atol, rtol: rtol, loss) {
        XCTFail(failure, file: file, line: line)
    }
}

/// The first entry where `analytic` and the central difference disagree (or either is not finite), as a
/// message; nil when every entry agrees. `checkGradient` fails the test with it.
func gradientMismatch(
    _ label: String, _ x: inout [Float], analytic: [Float], h: Float = 1e-2, atol: Double = 1e-3, rtol: Double = 1e-2,
    _ loss: ([Float]) -> Double
) -> String? {
    guard x.count == analytic.count else { return "\(label): \(analytic.count) gradients for \(x.count) inputs" }
    for i in x.indices {
        let keep = x[i]
        x[i] = keep + h
        let up = loss(x)
        x[i] = keep - h
        let down = loss(x)
        x[i] = keep
        let numeric = (up - down) / Double(2 * h)
        let err = abs(numeric - Double(analytic[i]))
        guard analytic[i].isFinite, numeric.isFinite, err <= atol + rtol * abs(numeric) else {
            return "\(label)[\(i)]: analytic \(analytic[i]) vs numeric \(numeric)"
        }
    }
    return nil
}

func dot(_ a: [Float], _ b: [Float]) -> Double {
    var s = 0.0
    for i in a.indices { s += Double(a[i]) * Double(b[i]) }
    return s
}
