import Foundation

/// Mean, standard error and intervals of a sample, summed in the given order (deterministic).
struct SampleSummary: Equatable {
    var n: Int
    var mean: Double
    /// Sample standard deviation (n − 1 denominator); nil for n < 2.
    var sd: Double?

    init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        n = values.count
        mean = values.reduce(0, +) / Double(n)
        if n >= 2 {
            let m = mean
            let squares = values.reduce(0) { $0 + ($1 - m) * ($1 - m) }
            sd = (squares / Double(n - 1)).squareRoot()
        }
    }

    /// Standard error of the mean; nil for n < 2.
    var sem: Double? { sd.map { $0 / Double(n).squareRoot() } }

    /// Half-width of the normal-approximation 95% interval of the mean (1.96 × sem), for means
    /// over many probes.
    var normalHalfWidth: Double? { sem.map { 1.96 * $0 } }

    /// Half-width of the Student-t 95% interval of the mean (t(0.975, n − 1) × sem), for means
    /// over a few seeds.
    var tHalfWidth: Double? { sem.map { studentT975(degreesOfFreedom: n - 1) * $0 } }
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (two-sided 95%): tabulated to
/// 3 decimals for df <= 30, the Cornish–Fisher expansion around the normal quantile beyond
/// (error < 1e-4 for df > 30).
func studentT975(degreesOfFreedom df: Int) -> Double {
    precondition(df >= 1, "t quantile needs df >= 1")
    let table: [Double] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ]
    if df <= table.count { return table[df - 1] }
    let z = 1.959963984540054
    let v = Double(df)
    let z3 = z * z * z
    let z5 = z3 * z * z
    let z7 = z5 * z * z
    return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v)
        + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v)
}
