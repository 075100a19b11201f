import Foundation

/// Locale-independent, deterministic number formatting for SVG coordinates, tick labels and CSV.
///
/// Every number the module writes goes through here, so the same values always give the same bytes.
enum NumberFormat {
    /// `value` rounded half away from zero to `decimals` places (0...9), without exponent.
    /// With `trim`, trailing zeros of the fraction (and a bare ".") are dropped. Never "-0".
    /// Values too large for exact fixed notation (|value| * 10^decimals >= 9e15) fall back to `general`.
    static func fixed(_ value: Double, decimals: Int, trim: Bool = true) -> String {
        precondition((0...9).contains(decimals), "decimals out of range: \(decimals)")
        guard value.isFinite else { return general(value) }
        let scale = pow10(decimals)
        let scaled = (value * scale).rounded(.toNearestOrAwayFromZero)
        guard abs(scaled) < 9e15 else { return general(value) }
        let units = Int64(abs(scaled))
        if units == 0 {
            return trim || decimals == 0 ? "0" : "0." + String(repeating: "0", count: decimals)
        }
        let divisor = Int64(scale)
        var text = String(units / divisor)
        if decimals > 0 {
            var fraction = String(units % divisor)
            fraction = String(repeating: "0", count: decimals - fraction.count) + fraction
            if trim {
                while fraction.hasSuffix("0") { fraction.removeLast() }
            }
            if !fraction.isEmpty { text += "." + fraction }
        }
        return scaled < 0 ? "-" + text : text
    }

    /// A coordinate in an SVG file: two decimals, trimmed (`12.5`, `-3`, `0.25`).
    static func coordinate(_ value: Double) -> String {
        fixed(value, decimals: 2)
    }

    /// A measured value in a CSV file or table: up to 10 significant digits in the shortest of
    /// fixed or exponent notation (C's `%.10g`), `Inf`/`-Inf` for infinities and the empty
    /// string for NaN (read as missing by pandas and R).
    static func general(_ value: Double) -> String {
        if value.isNaN { return "" }
        if value.isInfinite { return value < 0 ? "-Inf" : "Inf" }
        if value == 0 { return "0" }
        return String(format: "%.10g", value)
    }

    /// `value` to `digits` significant digits (C's `%.Ng`: 0.00412, 1.23e-05), for numbers in sentences.
    static func significant(_ value: Double, digits: Int) -> String {
        if value.isNaN || value.isInfinite || value == 0 { return general(value) }
        return String(format: "%.\(digits)g", value)
    }

    /// 10^k for 0 <= k <= 22 exactly (every such power is a double without rounding).
    static func pow10(_ k: Int) -> Double {
        precondition((0...22).contains(k))
        var result = 1.0
        for _ in 0..<k { result *= 10 }
        return result
    }
}
