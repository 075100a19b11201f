import Base
import XCTest
@testable import Model

final class InferenceTests: XCTestCase {
    private func model() -> LlamaModel {
        let m = LlamaModel(config: .tiny(), maxTokens: 256)
        m.initializeRandom(seed: 11, std: 0.1)
        return m
    }

    private func tokens(_ n: Int, seed: UInt64) -> [Int32] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % 256) }
    }

    func testScoringBatchLayout() {
        let b = TokenBatch.scoring([(context: [1, 2], continuation: [3, 4]), (context: [5], continuation: [6])])
        XCTAssertEqual(b.tokens, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(b.targets, [-1, 3, 4, -1, 6, -1])
        XCTAssertEqual(b.sequenceStarts, [0, 4])
    }

    /// Token-by-token appends, a long append (several internal chunks), and `score` all agree with the
    /// packed forward.
    func testIncrementalAppendAndScoreMatchPackedForward() {
        let m = model()
        let context = tokens(70, seed: 1), continuation = tokens(12, seed: 2)
        let batch = TokenBatch.scoring([(context: [256] + context, continuation: continuation)])
        let packed = Array(m.forward(batch, training: false))
        let all = [256] + context + continuation

        let session = InferenceSession(model: m, capacity: 128)
        var dist = session.append([256])
        for i in 1..<all.count {
            // dist is log-softmax after all[..<i]; compare where the packed batch has a target.
            if batch.targets[i - 1] >= 0 {
                XCTAssertEqual(dist[Int(all[i])], packed[i - 1], accuracy: 1e-4, "position \(i - 1)")
            }
            dist = session.append([all[i]])
        }
        XCTAssertEqual(session.length, all.count)
        // Log-softmax normalises.
        XCTAssertEqual(dist.reduce(0) { $0 + Double(exp($1)) }, 1, accuracy: 1e-4)

        session.reset()
        _ = session.append([256] + context)
        let scored = session.score(continuation)
        XCTAssertEqual(session.length, 71, "score leaves the cache as it was")
        let expected = (0..<continuation.count).map { packed[70 + $0] }
        for i in scored.indices { XCTAssertEqual(scored[i], expected[i], accuracy: 1e-4) }
        // Scoring twice gives the same numbers (nothing was kept in the cache).
        XCTAssertEqual(session.score(continuation), scored)

        // Truncate back into the prompt and score again.
        session.truncate(to: 30)
        let short = session.score(Array(all[30..<34]))
        let shortBatch = TokenBatch.scoring([(context: Array(all[..<30]), continuation: Array(all[30..<34]))])
        let shortPacked = Array(m.forward(shortBatch, training: false))
        for i in 0..<4 { XCTAssertEqual(short[i], shortPacked[29 + i], accuracy: 1e-4) }
    }

    func testGreedyGenerationFollowsArgmaxAndIsReproducible() {
        let m = model()
        let session = InferenceSession(model: m, capacity: 64)
        let prompt: [Int32] = [256, 104, 105]
        var seen: [Int32] = []
        let out = generate(session: session, prompt: prompt, options: SamplingOptions(maxTokens: 6)) {
            seen.append($0)
            return true
        }
        XCTAssertEqual(out.count, 6)
        XCTAssertEqual(out, seen)
        // Each greedy token is the argmax of a fresh forward over everything before it.
        let check = InferenceSession(model: m, capacity: 64)
        var context = prompt
        for tok in out {
            check.reset()
            let dist = check.append(context)
            XCTAssertEqual(Int32(dist.indices.max { dist[$0] < dist[$1] }!), tok)
            context.append(tok)
        }
        // Sampling with a seed is reproducible; a stop token ends generation; onToken can stop it.
        let opts = SamplingOptions(maxTokens: 8, temperature: 1, topP: 0.9, seed: 5)
        session.reset()
        let s1 = generate(session: session, prompt: prompt, options: opts) { _ in true }
        session.reset()
        let s2 = generate(session: session, prompt: prompt, options: opts) { _ in true }
        XCTAssertEqual(s1, s2)
        session.reset()
        let stopped = generate(session: session, prompt: prompt,
                               options: SamplingOptions(maxTokens: 6, stop: [out[2]])) { _ in true }
        XCTAssertEqual(stopped, Array(out.prefix(out.firstIndex(of: out[2])!)))
        session.reset()
        let two = generate(session: session, prompt: prompt, options: SamplingOptions(maxTokens: 6)) { _ in false }
        XCTAssertEqual(two, [out[0]])
    }
}
