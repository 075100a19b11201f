/// exp(x) in fp32 without a libm call, after Cephes' expf: x = n ln2 + r with |r| <= ln2/2, exp(r) by a
/// degree-7 polynomial, 2^n through the exponent bits. Relative error below 5e-7 (tested); inputs below
/// -87.3 give 0 (no denormals), inputs above 88.7 are clamped. Branch-free, so loops calling it vectorise.
@inline(__always)
func expApprox(_ x0: Float) -> Float {
    let x = x0 < -87.3 ? -87.3 : (x0 > 88.7 ? 88.7 : x0)
    let t = x * 1.442_695_04 + 12_582_912  // adding 1.5 * 2^23 rounds x / ln2 to an integer
    let n = t - 12_582_912
    var r = x - n * 0.693_359_375
    r = r + n * 2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_1e-1
    p = p * r * r + r + 1
    let bits = (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23
    let v = p * Float(bitPattern: bits)
    return x0 < -87.3 ? 0 : v
}

/// The kernels' exp, exposed for tests.
public func fastExp(_ x: Float) -> Float { expApprox(x) }

/// Maximum of `count` floats.
@inline(__always)
func rowMax(_ row: UnsafePointer<Float>, _ count: Int) -> Float {
    var m = -Float.infinity
    for j in 0..<count where row[j] > m { m = row[j] }
    return m
}

/// Sum of exp(row[j] - shift); with `write`, row[j] becomes exp(row[j] - shift).
/// Four interleaved partial sums (combined in a fixed order) let the loop vectorise.
@inline(__always)
func rowExpSum(_ row: UnsafeMutablePointer<Float>, _ count: Int, shift: Float, write: Bool) -> Float {
    var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
    var j = 0
    while j + 4 <= count {
        let e0 = expApprox(row[j] - shift), e1 = expApprox(row[j + 1] - shift)
        let e2 = expApprox(row[j + 2] - shift), e3 = expApprox(row[j + 3] - shift)
        if write { row[j] = e0; row[j + 1] = e1; row[j + 2] = e2; row[j + 3] = e3 }
        s0 += e0; s1 += e1; s2 += e2; s3 += e3
        j += 4
    }
    var s = (s0 + s1) + (s2 + s3)
    while j < count {
        let e = expApprox(row[j] - shift)
        if write { row[j] = e }
        s += e
        j += 1
    }
    return s
}
