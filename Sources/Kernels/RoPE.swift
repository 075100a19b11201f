import Base
import Foundation

/// Rotary tables: cos and sin, each (positions, headDim / 2); entry (p, i) is for angle p * base^(-2i / headDim).
/// Angles are computed in Double and rounded once.
public func ropeTable(positions: Int, headDim: Int, base: Float) -> (cos: [Float], sin: [Float]) {
    let half = headDim / 2
    var c = [Float](repeating: 0, count: positions * half)
    var s = [Float](repeating: 0, count: positions * half)
    for p in 0..<positions {
        for i in 0..<half {
            let theta = Double(p) * pow(Double(base), -2.0 * Double(i) / Double(headDim))
            c[p * half + i] = Float(Foundation.cos(theta))
            s[p * half + i] = Float(Foundation.sin(theta))
        }
    }
    return (c, s)
}

/// x: (n, heads * headDim) with row stride `rowStride` (default heads * headDim), rotated in place.
/// Adjacent pairs (2i, 2i+1), 2i < rotaryDims (default headDim), of every head of row t are rotated by the
/// angle of position positions[t] (tables from `ropeTable` for `rotaryDims`); the rest of each head is left.
public func ropeForward(
    _ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, n: Int, heads: Int, headDim: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, rowStride: Int? = nil, rotaryDims: Int? = nil
) {
    rope(x, positions, n, heads, headDim, rotaryDims ?? headDim, cos, sin, sign: 1, rowStride ?? heads * headDim)
}

/// dx: (n, heads * headDim) with row stride `rowStride`, in place: the transpose (inverse) rotation of
/// `ropeForward`.
public func ropeBackward(
    _ dx: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, n: Int, heads: Int, headDim: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, rowStride: Int? = nil, rotaryDims: Int? = nil
) {
    rope(dx, positions, n, heads, headDim, rotaryDims ?? headDim, cos, sin, sign: -1, rowStride ?? heads * headDim)
}

private func rope(
    _ x: UnsafeMutablePointer<Float>, _ positions: UnsafePointer<Int32>, _ n: Int, _ heads: Int, _ headDim: Int, _ rotaryDims: Int,
    _ cos: UnsafePointer<Float>, _ sin: UnsafePointer<Float>, sign: Float, _ ld: Int
) {
    let half = rotaryDims / 2, width = heads * headDim
    let xp = SendablePointer(x), pp = SendablePointer(positions), cp = SendablePointer(cos), sp = SendablePointer(sin)
    parallelFor(n, grain: max(1, 8192 / max(width, 1))) { rows in
        for t in rows {
            let pos = Int(pp.p[t])
            let ct = cp.p + pos * half, st = sp.p + pos * half
            for h in 0..<heads {
                let v = xp.p + t * ld + h * headDim
                for i in 0..<half {
                    let c = ct[i], s = sign * st[i]
                    let a = v[2 * i], b = v[2 * i + 1]
                    v[2 * i] = a * c - b * s
                    v[2 * i + 1] = a * s + b * c
                }
            }
        }
    }
}
