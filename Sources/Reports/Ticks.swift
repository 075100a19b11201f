import Foundation

/// Axis ticks at round numbers: multiples of a step 1, 2 or 5 × 10^k that enclose `min...max`.
///
/// - The first tick is <= `min` and the last >= `max`, so the ticks can serve as the axis domain.
/// - About `count` ticks (between roughly `count / 2` and `2 * count`); `count` must be >= 2.
/// - A single point or an empty range (`min == max`) is widened by 10% of its magnitude (or by 1
///   around 0) on each side. `min > max` is treated as `max...min`.
/// - Ticks are computed as integer multiples of the step, so 0.1 steps give 0.3, not 0.30000000000000004.
/// - Non-finite input, or a range whose width overflows a Double, gives `[min, max]` (sorted) when
///   both are finite and `[]` otherwise.
public func niceTicks(min lower: Double, max upper: Double, count: Int = 5) -> [Double] {
    precondition(count >= 2, "niceTicks needs count >= 2, got \(count)")
    guard lower.isFinite, upper.isFinite else { return [] }
    var a = Swift.min(lower, upper)
    var b = Swift.max(lower, upper)
    if a == b {
        let pad = a == 0 ? 1 : abs(a) * 0.1
        a -= pad
        b += pad
    }
    let span = b - a
    guard span.isFinite, span > 0 else { return [a, b] }
    let step = TickStep(approximately: span / Double(count - 1))
    let size = step.value
    // A tiny tolerance keeps 0.3 / 0.1 = 2.9999999999999996 from adding a tick below 0.3.
    let first = (a / size + 1e-9).rounded(.down)
    let last = (b / size - 1e-9).rounded(.up)
    // Beyond 2^52 consecutive multiples of the step are no longer distinct doubles.
    guard abs(first) < 4.5e15, abs(last) < 4.5e15, last - first < 10_000 else { return [a, b] }
    return (Int64(first)...Int64(last)).map { step.multiple($0) }
}

/// A tick step `mantissa × 10^exponent` with mantissa 1, 2 or 5.
struct TickStep: Equatable {
    var mantissa: Int64
    var exponent: Int

    /// The round step nearest (in ratio) to `raw` > 0: 1, 2 or 5 × 10^k.
    init(approximately raw: Double) {
        precondition(raw > 0 && raw.isFinite)
        var exponent = Int(log10(raw).rounded(.down))
        var fraction = raw / TickStep.power(exponent)
        if fraction >= 10 {
            fraction /= 10
            exponent += 1
        } else if fraction < 1 {
            fraction *= 10
            exponent -= 1
        }
        // Thresholds at the geometric means of neighbouring round numbers.
        switch fraction {
        case ..<1.414: mantissa = 1
        case ..<3.162: mantissa = 2
        case ..<7.071: mantissa = 5
        default:
            mantissa = 1
            exponent += 1
        }
        self.exponent = exponent
    }

    var value: Double { multiple(1) }

    /// `k × mantissa × 10^exponent`, correctly rounded when 10^|exponent| is exact (|exponent| <= 22).
    func multiple(_ k: Int64) -> Double {
        let units = Double(k * mantissa)
        return exponent >= 0 ? units * TickStep.power(exponent) : units / TickStep.power(-exponent)
    }

    /// 10^k, exact for 0 <= k <= 22.
    static func power(_ k: Int) -> Double {
        if (0...22).contains(k) { return NumberFormat.pow10(k) }
        return pow(10, Double(k))
    }
}

/// Labels for ticks from `niceTicks`: just enough decimals for the step (`0.5`, `1.0`, `1.5`), and
/// exponent notation per label (`5e-5`, `1e-4`, `1.5e-4`) when every tick is below 1e-3 in
/// magnitude, one reaches 1e6, or the step needs more than 9 decimals (then zero is `0`).
func tickLabels(_ ticks: [Double]) -> [String] {
    guard ticks.count >= 2 else { return ticks.map { NumberFormat.general($0) } }
    var step = Double.infinity
    for i in 1..<ticks.count { step = Swift.min(step, abs(ticks[i] - ticks[i - 1])) }
    guard step > 0, step.isFinite else { return ticks.map { NumberFormat.general($0) } }
    let stepExponent = Int((log10(step) + 1e-9).rounded(.down))
    let largest = ticks.map(abs).max() ?? 0
    let decimals = Swift.max(0, -stepExponent)
    if decimals <= 9 && largest >= 1e-3 && largest < 1e6 {
        return ticks.map { NumberFormat.fixed($0, decimals: decimals, trim: false) }
    }
    return ticks.map { value in
        if abs(value) < step / 2 { return "0" }
        let exponent = Int((log10(abs(value)) + 1e-9).rounded(.down))
        let mantissa = value / TickStep.power(exponent)
        let decimals = Swift.min(9, Swift.max(0, exponent - stepExponent))
        return NumberFormat.fixed(mantissa, decimals: decimals) + "e" + String(exponent)
    }
}
