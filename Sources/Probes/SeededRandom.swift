import Base
import Base

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
