import Base

/// The order in which training examples are visited: a fresh seeded permutation per epoch, so the
/// examples of any step are a pure function of (seed, step) and resuming needs no cursor beyond
/// the step itself.
public struct DataOrder {
    let count: Int
    let seed: UInt64
    private var cache: [Int: [Int]] = [:]

    public init(count: Int, seed: Int) {
        precondition(count > 0)
        self.count = count
        self.seed = UInt64(seed)
    }

    /// The example index at global position `g` (0-based, over all epochs).
    public mutating func index(at g: Int) -> Int {
        let epoch = g / count
        if cache[epoch] == nil {
            var rng = SplitMix64(seed: seed, stream: UInt64(epoch))
            var perm = Array(0..<count)
            rng.shuffle(&perm)
            cache = [epoch: perm]
        }
        return cache[epoch]![g % count]
    }
}
