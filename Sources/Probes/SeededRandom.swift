/// SplitMix64 (Steele, Lea & Flood 2014): a small seeded generator whose output depends only on the
/// seed, so derived categories are the same on every machine and every Swift version. All uniform
/// draws below are our own (not the standard library's `random(in:using:)`, whose algorithm may change).
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

    private static func mix(_ value: UInt64) -> UInt64 {
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

    /// Fisher–Yates shuffle in place.
    mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            let j = uniform(i + 1)
            if i != j { items.swapAt(i, j) }
        }
    }
}

/// A seeded derangement of 0..<count: `p[i] != i` for every i, and the same `p` for the same seed.
/// Uniform over derangements: shuffles are drawn until one has no fixed point (about e ≈ 2.7 draws),
/// and `acceptable(i, p[i])` lets the caller also refuse pairs (e.g. two probes with the same text);
/// when no acceptable derangement shows up in `attempts` draws, the last plain derangement is used.
/// `count` must not be 1 (there is no derangement of one element); 0 gives [].
func seededDerangement(count: Int, seed: UInt64, attempts: Int = 200,
                       acceptable: (Int, Int) -> Bool = { _, _ in true }) -> [Int] {
    precondition(count != 1, "a derangement needs at least two elements")
    guard count > 1 else { return [] }
    var rng = SplitMix64(seed: seed)
    var fallback: [Int]?
    var tries = 0
    while true {
        var p = Array(0..<count)
        rng.shuffle(&p)
        tries += 1
        guard !p.indices.contains(where: { p[$0] == $0 }) else { continue }
        if p.indices.allSatisfy({ acceptable($0, p[$0]) }) { return p }
        if fallback == nil { fallback = p }
        if tries >= attempts, let plain = fallback { return plain }
    }
}

/// The whitespace-separated words of `text` in a seeded random order, joined by single spaces.
/// When the text has at least two distinct words the result differs from the words in their
/// original order (if the shuffle gives that order back, the first word is swapped with the first
/// word that differs from it).
func shuffledWords(_ text: String, rng: inout SplitMix64) -> String {
    let words = text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
    var shuffled = words
    rng.shuffle(&shuffled)
    if shuffled == words, let j = shuffled.firstIndex(where: { $0 != shuffled[0] }) {
        shuffled.swapAt(0, j)
    }
    return shuffled.joined(separator: " ")
}
