import Base
import XCTest
import Model
@testable import Probes

final class SeededRandomTests: XCTestCase {
    /// SplitMix64 reference outputs for seed 1234567 (from the published C reference implementation).
    func testSplitMix64ReferenceStream() {
        var rng = SplitMix64(seed: 1_234_567)
        XCTAssertEqual((0..<5).map { _ in rng.next() },
                       [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
                        4_593_380_528_125_082_431, 16_408_922_859_458_223_821])
    }

    func testUniformStaysInRangeAndCoversIt() {
        var rng = SplitMix64(seed: 9)
        var seen = Set<Int>()
        for _ in 0..<2000 {
            let x = rng.uniform(7)
            XCTAssertTrue((0..<7).contains(x))
            seen.insert(x)
        }
        XCTAssertEqual(seen.count, 7)
    }

    func testDerangementHasNoFixedPointForManySizesAndSeeds() {
        for n in [0, 2, 3, 4, 5, 7, 10, 31, 64, 101] {
            for seed in UInt64(0)..<40 {
                let p = seededDerangement(count: n, seed: seed)
                XCTAssertEqual(p.sorted(), Array(0..<n), "n=\(n) seed=\(seed): not a permutation")
                for i in 0..<n { XCTAssertNotEqual(p[i], i, "n=\(n) seed=\(seed): fixed point \(i)") }
            }
        }
    }

    func testDerangementIsDeterministicAndDependsOnTheSeed() {
        XCTAssertEqual(seededDerangement(count: 50, seed: 3), seededDerangement(count: 50, seed: 3))
        XCTAssertNotEqual(seededDerangement(count: 50, seed: 3), seededDerangement(count: 50, seed: 4))
        let distinct = Set((UInt64(0)..<20).map { seededDerangement(count: 6, seed: $0) })
        XCTAssertGreaterThan(distinct.count, 10, "seeds should give varied derangements")
        // n = 2 has exactly one derangement.
        XCTAssertEqual(seededDerangement(count: 2, seed: 77), [1, 0])
    }

    func testDerangementHonoursTheAcceptablePredicate() {
        // Items 0 and 1 share a text: neither may be sent to the other.
        let texts = ["a", "a", "b", "c", "d"]
        for seed in UInt64(0)..<30 {
            let p = seededDerangement(count: texts.count, seed: seed) { texts[$0] != texts[$1] }
            for i in texts.indices { XCTAssertNotEqual(texts[p[i]], texts[i], "seed \(seed)") }
        }
    }

    func testShuffledWordsKeepsTheWordsAndChangesTheOrder() {
        let text = "the quick brown fox jumps"
        for seed in UInt64(0)..<50 {
            var rng = SplitMix64(seed: seed)
            let shuffled = shuffledWords(text, rng: &rng)
            XCTAssertNotEqual(shuffled, text, "seed \(seed)")
            XCTAssertEqual(shuffled.split(separator: " ").sorted(), text.split(separator: " ").sorted())
        }
        // Two words: always the only other order (a plain shuffle would give the original half the time).
        for seed in UInt64(0)..<20 {
            var rng = SplitMix64(seed: seed)
            XCTAssertEqual(shuffledWords("hello   world", rng: &rng), "world hello", "seed \(seed)")
            XCTAssertNotEqual(shuffledWords("to be or", rng: &rng), "to be or", "seed \(seed)")
            XCTAssertNotEqual(shuffledWords("la la di", rng: &rng), "la la di", "seed \(seed)")
        }
        var rng = SplitMix64(seed: 5)
        // Nothing to change: identical words, one word, no words.
        XCTAssertEqual(shuffledWords("la la la", rng: &rng), "la la la")
        XCTAssertEqual(shuffledWords("single", rng: &rng), "single")
        XCTAssertEqual(shuffledWords("  ", rng: &rng), "")
        // Deterministic for a seed.
        var a = SplitMix64(seed: 11), b = SplitMix64(seed: 11)
        XCTAssertEqual(shuffledWords("one two three four five six", rng: &a), shuffledWords("one two three four five six", rng: &b))
    }
}
