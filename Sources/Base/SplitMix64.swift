import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014): a small seeded generator whose output depends only on the
/// seed, so initial weights, data orders and derived probe categories are the same on every machine and
/// every Swift version. All uniform draws below are our own (not the standard library's `random(in:using:)`, whose algorithm may change).
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    /// A generator for one sub-stream, e.g. (seed, probe index): the two words are mixed, not added,
    /// so (s, i+1) and (s+1, i) give unrelated streams.
    public init(seed: UInt64, stream: UInt64) {
        var mixer = SplitMix64(seed: seed)
        state = mixer.next() ^ SplitMix64.mix(stream &+ 0x9e37_79b9_7f4a_7c15)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        return SplitMix64.mix(state)
    }

    /// SplitMix64's output function: a bijective mix of 64 bits (also a stateless hash of an index, `CountSketch`).
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform integer in 0..<bound, without modulo bias (rejection of the top partial range).
    public mutating func uniform(_ bound: Int) -> Int {
        precondition(bound > 0, "uniform(_:) needs a positive bound")
        let n = UInt64(bound)
        let limit = UInt64.max - UInt64.max % n
        while true {
            let x = next()
            if x < limit { return Int(x % n) }
        }
    }


    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Standard normal (Box-Muller, one value per call).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 0x1.0p-60), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

extension SplitMix64 {
    /// Fisher–Yates shuffle in place (from the last index down, each swapped with a uniform earlier one):
    /// the one shuffle of the project (data order, derived probe categories).
    public mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            let j = uniform(i + 1)
            if i != j { items.swapAt(i, j) }
        }
    }
}
