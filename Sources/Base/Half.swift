/// IEEE 754 half and bfloat16 conversions done on bit patterns (Swift's `Float16` is not available
/// on every platform this package targets).
public enum Half {
    /// binary16 bits -> Float (exact).
    @inline(__always)
    public static func toFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1f
        let mant = UInt32(h & 0x3ff)
        if exp == 0 {
            // Zero or subnormal: mant * 2^-24, exact in Float.
            let v = Float(mant) * 0x1p-24
            return Float(bitPattern: v.bitPattern | sign)
        }
        if exp == 31 {
            return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13))
        }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// Float -> binary16 bits, rounding to nearest, ties to even; overflow gives infinity.
    public static func fromFloat(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xff)
        let mant = x & 0x7f_ffff
        if exp == 0xff {
            // Infinity stays infinity; NaN stays a (quiet) NaN.
            return sign | 0x7c00 | (mant != 0 ? 0x200 | UInt16(truncatingIfNeeded: mant >> 13) : 0)
        }
        let e = exp - 112  // rebias 127 -> 15
        if e >= 31 { return sign | 0x7c00 }
        if e <= 0 {
            // Result is a half subnormal (or zero): mantissa = (1.mant) * 2^(exp-126) in units of 2^-24.
            let shift = 126 - exp
            if shift > 24 { return sign }
            let m = mant | 0x80_0000
            var h = m >> UInt32(shift)
            let rem = m & ((1 << UInt32(shift)) - 1)
            let halfway = UInt32(1) << UInt32(shift - 1)
            if rem > halfway || (rem == halfway && h & 1 == 1) { h += 1 }
            return sign | UInt16(h)
        }
        var h = (UInt32(e) << 10) | (mant >> 13)
        let rem = mant & 0x1fff
        if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) { h += 1 }  // a carry may step into the exponent / infinity: correct
        return sign | UInt16(h)
    }

    /// bfloat16 bits -> Float (exact: bf16 is the top half of a Float).
    @inline(__always)
    public static func bf16ToFloat(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }
}
