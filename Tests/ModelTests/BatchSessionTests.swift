import Base
import XCTest
@testable import Model

final class BatchSessionTests: XCTestCase {
    private func model() -> LlamaModel {
        let m = LlamaModel(config: .tiny(), maxTokens: 256)
        m.initializeRandom(seed: 5, std: 0.1)
        return m
    }

    private func tokens(_ n: Int, seed: UInt64) -> [Int32] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % 256) }
    }

    /// The measures' scoring pass gives the very log-probabilities of the plain one (bit for bit: the
    /// recorded `logprob` does not move because measures are computed beside it), and its argmax at each
    /// position is the token `argmax(at:)` picks there.
    func testDistributionScoringKeepsTheLogprobsAndFindsTheArgmax() {
        let m = model()
        let items: [(prompt: [Int32], responses: [[Int32]])] = [
            (tokens(9, seed: 1), [tokens(5, seed: 4), tokens(1, seed: 5), tokens(17, seed: 6), []]),
            (tokens(23, seed: 2), [tokens(3, seed: 7)]),
            (tokens(40, seed: 10), [tokens(20, seed: 11), tokens(20, seed: 12)]),
        ]
        let batch = BatchSession(model: m, slots: 90, rows: 16, context: 64)
        let plain = batch.scoreResponses(items)
        let shaped = batch.scoreDistributions(items)
        for p in items.indices {
            for r in items[p].responses.indices {
                XCTAssertEqual(shaped[p][r].map(\.logprob.bitPattern), plain[p][r].map(\.bitPattern), "probe \(p) response \(r)")
            }
        }
        // argmax: lay one probe out again and ask the head directly at each response position
        let (prompt, responses) = items[2]
        let response = responses[0]
        batch.append([BatchSession.Segment(start: 0, tokens: prompt + response.dropLast())])
        let direct = batch.argmax(at: (0..<response.count).map { prompt.count - 1 + $0 })
        XCTAssertEqual(shaped[2][0].map(\.argmax), direct)
        XCTAssertEqual(shaped[2][0].map(\.targetIsMax), zip(direct, response).map { $0 == $1 })
    }

    /// Several prompts and their responses, laid out in a cache small enough to need three fillings and
    /// run in passes of 16 rows (so segments are split across passes and responses share a pass with
    /// their prompt), give the log-probabilities `InferenceSession.score` gives for each pair.
    func testSharedPrefixScoringMatchesInferenceSession() {
        let m = model()
        let items: [(prompt: [Int32], responses: [[Int32]])] = [
            (tokens(9, seed: 1), [tokens(5, seed: 4), tokens(1, seed: 5), tokens(17, seed: 6), []]),
            (tokens(23, seed: 2), [tokens(3, seed: 7)]),
            (tokens(1, seed: 3), [tokens(12, seed: 8), tokens(2, seed: 9)]),
            (tokens(40, seed: 10), [tokens(20, seed: 11), tokens(20, seed: 12)]),
        ]
        let batch = BatchSession(model: m, slots: 90, rows: 16, context: 64)
        let got = batch.scoreResponses(items)

        let session = InferenceSession(model: m, capacity: 64)
        for (p, item) in items.enumerated() {
            session.reset()
            _ = session.append(item.prompt)
            for (r, response) in item.responses.enumerated() {
                let expected = session.score(response)
                XCTAssertEqual(got[p][r].count, expected.count)
                for i in expected.indices {
                    XCTAssertEqual(got[p][r][i], expected[i], accuracy: 1e-4, "probe \(p) response \(r) token \(i)")
                }
            }
        }
        // Each response is scored given its own prompt: swapping the prompts changes the numbers.
        let swapped = batch.scoreResponses([(items[1].prompt, items[0].responses)])
        XCTAssertNotEqual(swapped[0][0][0], got[0][0][0], accuracy: 1e-3)
    }

    /// `scorePairs` returns, in the pairs' order, what the training forward (an independent path:
    /// `LlamaModel.forward` over each prompt + response) gives, for pairs that repeat a prompt (shared in
    /// the cache), an empty response, and more pairs than one filling of the cache holds.
    func testScorePairsMatchesTheTrainingForwardInOrder() {
        checkScorePairs(model())
    }

    /// The same for GPT-NeoX blocks (parallel and sequential residuals, partial RoPE, every bias and LayerNorm
    /// parameter random): the KV-cache path and the training forward run the one block implementation.
    func testGPTNeoXScoringMatchesTheTrainingForward() {
        for parallel in [true, false] {
            let m = LlamaModel(config: .tinyNeoX(parallelResidual: parallel), maxTokens: 256)
            m.initializeRandom(seed: 8, std: 0.1)
            var rng = SplitMix64(seed: 9)
            for (name, shape) in m.parameterTable where shape.count == 1 {
                let t = m.parameter(name)
                for i in 0..<t.count { t[i] = (name.hasSuffix(".bias") ? 0 : 1) + Float(rng.normal()) * 0.2 }
            }
            checkScorePairs(m)
        }
    }

    private func checkScorePairs(_ m: LlamaModel, file: StaticString = #filePath, line: UInt = #line) {
        let p1 = tokens(12, seed: 31), p2 = tokens(5, seed: 32)
        var pairs: [(prompt: [Int32], response: [Int32])] = [
            (p1, tokens(7, seed: 33)), (p2, tokens(3, seed: 34)), (p1, tokens(9, seed: 35)), (p2, []), (p1, tokens(1, seed: 36)),
        ]
        // Enough further pairs (each with its own prompt) to need more than one filling of 4096 slots.
        for k in 0..<70 { pairs.append((tokens(40, seed: 100 + UInt64(k)), tokens(30, seed: 200 + UInt64(k)))) }
        let got = BatchSession.scorePairs(model: m, pairs)
        XCTAssertEqual(got.count, pairs.count)
        for (k, pair) in pairs.enumerated() {
            XCTAssertEqual(got[k].count, pair.response.count, "pair \(k)")
            if pair.response.isEmpty { continue }
            let lp = m.forward(TokenBatch.scoring([(pair.prompt, pair.response)]), training: false)
            let expected = (0..<pair.response.count).map { lp[pair.prompt.count - 1 + $0] }
            for i in expected.indices {
                XCTAssertEqual(got[k][i], expected[i], accuracy: 1e-4, "pair \(k) token \(i)", file: file, line: line)
            }
        }
        // The prompt matters: the same response after another prompt scores differently.
        let other = BatchSession.scorePairs(model: m, [(p2, pairs[0].response)])
        XCTAssertNotEqual(other[0][0], got[0][0], accuracy: 1e-3, file: file, line: line)
    }

    /// Several samples of several prompts decoded in lock step (prompts shared as prefixes, in more than one
    /// filling of the cache) give, sample by sample, the tokens `generate` gives for that prompt alone with the
    /// sample's seed (`sampleSeed`): temperature and top-p sampling, stop tokens included. Reproducible; another
    /// seed gives other samples.
    func testLockStepSamplingMatchesGenerate() {
        let m = model()
        let prompts = [tokens(4, seed: 41), tokens(20, seed: 42), tokens(9, seed: 43)]
        var options = SamplingOptions(maxTokens: 10, temperature: 1.3, topP: 0.9, seed: 77)
        let session = InferenceSession(model: m, capacity: 64)
        func alone(_ i: Int, _ j: Int) -> [Int32] {
            session.reset()
            var o = options
            o.seed = BatchSession.sampleSeed(options.seed, prompt: i, sample: j)
            return generate(session: session, prompt: prompts[i], options: o) { _ in true }
        }
        let free = (0..<3).map { i in (0..<4).map { alone(i, $0) } }
        options.stop = [free[1][2][3]]  // sample 2 of prompt 1 stops before its fourth token
        let expected = (0..<3).map { i in (0..<4).map { alone(i, $0) } }
        XCTAssertEqual(expected[1][2].count, free[1][2].firstIndex(of: free[1][2][3])!)
        let batch = BatchSession(model: m, slots: 100, rows: 32, context: 64)  // two prompts' samples per filling
        let got = batch.sample(prompts: prompts, count: 4, options: options)
        XCTAssertEqual(got, expected)
        XCTAssertEqual(batch.sample(prompts: prompts, count: 4, options: options), got, "reproducible")
        XCTAssertGreaterThan(Set(got.flatMap { $0 }).count, 8, "samples differ from one another")
        options.seed = 78
        XCTAssertNotEqual(batch.sample(prompts: prompts, count: 4, options: options), got)
        // temperature 0 is greedy, whatever the seed
        let greedy = batch.sample(prompts: prompts, count: 2, options: SamplingOptions(maxTokens: 6, temperature: 0, seed: 5))
        let single = batch.greedy(prompts: prompts, maxTokens: 6, stop: [])
        for i in prompts.indices { XCTAssertEqual(greedy[i], [single[i], single[i]]) }
    }

    /// Traced sampling draws the very tokens of `sample` (stop token kept at the end when drawn) and reads, per
    /// token, the log-probability the model gives it (as scoring the finished response gives it, to float rounding)
    /// and the entropy of the whole next-token distribution (against -sum p log p in Double over a scored row).
    func testTracedSamplingKeepsTheTokensAndReadsLogprobsAndEntropies() {
        let m = model()
        let prompts = [tokens(4, seed: 51), tokens(15, seed: 52), tokens(8, seed: 53)]
        var options = SamplingOptions(maxTokens: 9, temperature: 1.2, topP: 0.95, seed: 13)
        let batch = BatchSession(model: m, slots: 100, rows: 32, context: 64)
        let free = batch.sample(prompts: prompts, count: 3, options: options)
        options.stop = [free[0][1][2], free[2][0][4]]
        let plain = batch.sample(prompts: prompts, count: 3, options: options)
        let traced = batch.sampleTraced(prompts: prompts, count: 3, options: options)
        var ended = 0
        for i in prompts.indices {
            for j in 0..<3 {
                let t = traced[i][j]
                XCTAssertEqual(t.ended ? Array(t.tokens.dropLast()) : t.tokens, plain[i][j])
                XCTAssertEqual(t.ended, plain[i][j].count < 9, "\(i) \(j)")
                if t.ended { ended += 1; XCTAssertTrue(options.stop.contains(t.tokens.last!)) }
                XCTAssertEqual(t.logprobs.count, t.tokens.count)
                XCTAssertEqual(t.entropies.count, t.tokens.count)
                let scored = BatchSession.scorePairs(model: m, [(prompts[i], t.tokens)])[0]
                for (a, b) in zip(t.logprobs, scored) { XCTAssertEqual(a, b, accuracy: 1e-4) }
                // the first token's entropy from the prompt's own distribution
                let one = BatchSession(model: m, slots: 64, context: 64)
                one.append([BatchSession.Segment(start: 0, tokens: prompts[i])])
                let row = one.logSoftmax(at: prompts[i].count - 1)
                let h = -row.reduce(0.0) { $0 + exp(Double($1)) * Double($1) }
                XCTAssertEqual(Double(t.entropies[0]), h, accuracy: 1e-4)
                XCTAssertTrue(t.entropies.allSatisfy { $0 > 0 && $0 <= log(Float(m.config.vocabSize)) + 1e-3 })
            }
        }
        XCTAssertGreaterThan(ended, 0, "some samples met a stop token")
        XCTAssertLessThan(ended, 9, "and some were cut at max tokens")
    }

    /// Greedy decoding of several prompts in lock step (in two fillings of the cache) gives the tokens
    /// `generate` gives for each prompt alone, stop tokens included.
    func testLockStepGreedyMatchesGenerate() {
        let m = model()
        let prompts = [tokens(4, seed: 21), tokens(30, seed: 22), tokens(11, seed: 23), tokens(7, seed: 24)]
        let steps = 12
        let session = InferenceSession(model: m, capacity: 64)
        func decode(_ prompt: [Int32], stop: Set<Int32>) -> [Int32] {
            session.reset()
            return generate(session: session, prompt: prompt, options: SamplingOptions(maxTokens: steps, stop: stop)) { _ in true }
        }
        let free = prompts.map { decode($0, stop: []) }
        // A stop token that the third prompt meets at its fifth token.
        let stop: Set<Int32> = [free[2][4]]
        let expected = prompts.map { decode($0, stop: stop) }
        XCTAssertEqual(expected[2].count, free[2].firstIndex(of: free[2][4])!)

        let batch = BatchSession(model: m, slots: 70, rows: 32, context: 64)
        XCTAssertEqual(batch.greedy(prompts: prompts, maxTokens: steps, stop: stop), expected)
        XCTAssertEqual(batch.greedy(prompts: prompts, maxTokens: 0, stop: stop), [[], [], [], []])
        // The decodes differ between prompts (the test would not notice a mix-up otherwise).
        XCTAssertNotEqual(expected[0], expected[1])
    }
}
