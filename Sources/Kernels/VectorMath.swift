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

/// 16 floats, the width the row loops below work in (one AVX-512 register, two AVX ones, four SSE ones).
typealias Float16x = SIMD16<Float>

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> Float16x { UnsafeRawPointer(p).loadUnaligned(as: Float16x.self) }

@inline(__always)
func store16(_ v: Float16x, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float16x.self) }

/// `expApprox` on 16 lanes: the same operations in the same order, so every lane is bit-identical to the
/// scalar function (Swift does not fuse multiply-adds unless asked).
@inline(__always)
func expApprox(_ x0: Float16x) -> Float16x {
    let lo = Float16x(repeating: -87.3), hi = Float16x(repeating: 88.7)
    let x = x0.replacing(with: lo, where: x0 .< lo).replacing(with: hi, where: x0 .> hi)
    let t = x * 1.442_695_04 + 12_582_912
    let n = t - 12_582_912
    var r = x - n * 0.693_359_375
    r = r + n * 2.121_944_4e-4
    var p = Float16x(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_1e-1
    p = p * r * r + r + 1
    let bits = (unsafeBitCast(t, to: SIMD16<UInt32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    let v = p * unsafeBitCast(bits, to: Float16x.self)
    return v.replacing(with: 0, where: x0 .< lo)
}

/// The lanes of `v` added in lane order (a fixed order, so results do not depend on the compiler's choice).
@inline(__always)
func laneSum(_ v: Float16x) -> Float {
    var s: Float = 0
    for i in 0..<16 { s += v[i] }
    return s
}

/// 16-lane `expApprox` for tests.
public func fastExp16(_ x: SIMD16<Float>) -> SIMD16<Float> { expApprox(x) }

/// Maximum of `count` floats (NaNs are skipped, as `>` skips them).
@inline(__always)
func rowMax(_ row: UnsafePointer<Float>, _ count: Int) -> Float {
    var j = 0
    var m16 = Float16x(repeating: -.infinity)
    while j + 16 <= count {
        let x = load16(row + j)
        m16 = m16.replacing(with: x, where: x .> m16)
        j += 16
    }
    var m = -Float.infinity
    for i in 0..<16 where m16[i] > m { m = m16[i] }
    while j < count {
        if row[j] > m { m = row[j] }
        j += 1
    }
    return m
}

/// Sum of exp(row[j] - shift); with `write`, row[j] becomes exp(row[j] - shift).
/// Sixteen lanes of partial sums, then the tail, in a fixed order.
@inline(__always)
func rowExpSum(_ row: UnsafeMutablePointer<Float>, _ count: Int, shift: Float, write: Bool) -> Float {
    var s16 = Float16x()
    let sh = Float16x(repeating: shift)
    var j = 0
    while j + 16 <= count {
        let e = expApprox(load16(row + j) - sh)
        if write { store16(e, row + j) }
        s16 += e
        j += 16
    }
    var s = laneSum(s16)
    while j < count {
        let e = expApprox(row[j] - shift)
        if write { row[j] = e }
        s += e
        j += 1
    }
    return s
}

/// Sum of a[j] * b[j] over `count` floats: sixteen lanes of partial sums, then the tail, in a fixed order.
@inline(__always)
func rowDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
    var s16 = Float16x()
    var j = 0
    while j + 16 <= count {
        s16 += load16(a + j) * load16(b + j)
        j += 16
    }
    var s = laneSum(s16)
    while j < count {
        s += a[j] * b[j]
        j += 1
    }
    return s
}
