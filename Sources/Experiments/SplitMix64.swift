/// SplitMix64: a small seeded generator for data order. Swift's default generator is not seedable.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The order in which training examples are visited: a fresh seeded permutation per epoch, so the
/// examples of any step are a pure function of (seed, step) and resuming needs no cursor beyond
/// the step itself.
struct DataOrder {
    let count: Int
    let seed: UInt64
    private var cache: [Int: [Int]] = [:]

    init(count: Int, seed: Int) {
        precondition(count > 0)
        self.count = count
        self.seed = UInt64(seed)
    }

    /// The example index at global position `g` (0-based, over all epochs).
    mutating func index(at g: Int) -> Int {
        let epoch = g / count
        if cache[epoch] == nil {
            var rng = SplitMix64(seed: seed &* 1_000_003 &+ UInt64(epoch))
            var perm = Array(0..<count)
            for i in stride(from: count - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                perm.swapAt(i, j)
            }
            cache = [epoch: perm]
        }
        return cache[epoch]![g % count]
    }
}
