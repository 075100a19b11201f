import Base
import Foundation
import Model

/// One training example's term of a step's gradient: its sequences alone, sliced from its micro-batch as the step
/// packed them, with dLoss/dlogprob at each position as the step's loss gave it (scaled by the micro-batch's share of
/// the step). The gradients of a step's terms sum to the step's gradient before clipping (in exact arithmetic: each is
/// computed by its own backward pass, so in float32 the sum differs from the step's by rounding).
public struct ExampleTerm: Sendable {
    /// The example's index in the trainer's data (the data file's examples in order, from 0).
    public var example: Int
    public var batch: TokenBatch
    public var dLogprobs: [Float]

    /// The terms of one micro-batch: example `indices[k]` owns the `perExample` consecutive sequences from `spans[k *
    /// perExample]` (its sequence, or its chosen and rejected ones).
    static func slice(_ batch: TokenBatch, spans: [SequenceSpan], dLogprobs: UnsafeBufferPointer<Float>, indices: [Int],
                      perExample: Int) -> [ExampleTerm] {
        indices.enumerated().map { k, example in
            let own = spans[(k * perExample)..<((k + 1) * perExample)]
            var tokens: [Int32] = [], targets: [Int32] = [], starts: [Int] = [], d: [Float] = []
            for span in own {
                starts.append(tokens.count)
                tokens += batch.tokens[span.range]
                targets += batch.targets[span.range]
                d += dLogprobs[span.range]
            }
            return ExampleTerm(example: example, batch: TokenBatch(tokens: tokens, targets: targets, sequenceStarts: starts), dLogprobs: d)
        }
    }
}

/// CountSketch (Charikar, Chen & Farach-Colton 2002): coordinate k of a P-dimensional vector is added, with sign s(k),
/// into bucket h(k) of D. s and h are a hash of (seed, k), computed where they are used and never stored, so
/// projecting costs one pass over the vector and D floats of memory. For any a, b the estimate <S a, S b> is unbiased
/// and its variance is (|a|^2 |b|^2 + <a,b>^2 - 2 sum_k a_k^2 b_k^2) / D <= (|a|^2 |b|^2 + <a,b>^2) / D: the same bound
/// as a dense Gaussian projection to D dimensions (as LESS uses), at O(P) instead of O(P D) per vector.
public struct CountSketch: Sendable {
    public let dimension: Int
    public let seed: UInt64

    public init(dimension: Int, seed: UInt64) {
        precondition(dimension >= 1, "CountSketch: dimension must be at least 1")
        self.dimension = dimension
        self.seed = seed
    }

    /// Bucket and sign of coordinate k.
    @inline(__always) public func slot(_ k: Int) -> (bucket: Int, sign: Float) {
        let x = SplitMix64.mix(seed ^ (UInt64(truncatingIfNeeded: k) &* 0x9e37_79b9_7f4a_7c15))
        return (Int(((x >> 32) &* UInt64(dimension)) >> 32), (x & 1) == 0 ? 1 : -1)
    }

    /// S x, summed over fixed chunks in order (the result does not depend on the thread count).
    public func project(_ x: UnsafeBufferPointer<Float>) -> [Double] {
        var out = [Double](repeating: 0, count: dimension)
        Attribution.chunked(x.count, width: dimension, block: 1 << 18) { range, partial in
            for k in range {
                let (b, s) = slot(k)
                partial[b] += s * x[k]
            }
        } combine: { partial in
            for j in 0..<dimension { out[j] += Double(partial[j]) }
        }
        return out
    }

    /// The estimate's standard deviation for vectors with these norms and inner product: sqrt((|a|^2 |b|^2 + <a,b>^2) / D).
    public func standardError(normA: Double, normB: Double, inner: Double) -> Double {
        ((normA * normA * normB * normB + inner * inner) / Double(dimension)).squareRoot()
    }
}

/// Per-step attribution (`eval.attribution`): how one optimizer step moved each probe response's log-probability, and
/// which training examples moved it.
///
/// With g_o = grad log pi_theta_t(y_o | x_o) and the step's update Delta theta = theta_{t+1} - theta_t:
/// - `predicted` = <g_o, Delta theta>, the first-order change, beside `observed` = log pi_{t+1}(y_o) - log pi_t(y_o).
/// - AdamW's update with its denominators D = sqrt(v_t / (1 - beta2^t)) + eps held fixed is linear in this step's
///   gradient: Delta theta = carried + sum_i u_i, u_i = -lr (1 - beta1) / (1 - beta1^t) * c * g_i / D (g_i example i's term of
///   the step's gradient, `ExampleTerm`; c the clipping factor), carried = -lr wd theta_t - lr beta1 m_{t-1} / ((1 -
///   beta1^t) D) (the momentum of earlier steps and the weight decay). So predicted = <g_o, carried> + sum_i <g_o, u_i>:
///   one contribution per example, one carried row.
/// - cos(g_o, -g_i): the normalised empirical-NTK entry of the probe response and the example, signed so that +1 means
///   the example's descent direction is the direction that raises the response fastest (for SFT, -g_i is a positive
///   multiple of grad log pi(y_i | x_i): an example that is the response itself has cosine 1).
/// Delta theta is the update in Double as AdamW computes it from m_t and v_t (θ_{t+1}'s float32 rounding, about 1e-7 of each
/// weight, is left out), so the rows sum to `predicted` up to float32 rounding of the gradients.
///
/// With a `CountSketch`, contributions and cosines are estimated from D-dimensional sketches of the gradients (memory D
/// floats per example instead of P); `predicted`, `observed`, the carried row and the norms stay exact.
public final class Attribution {
    public struct Response {
        /// log pi_t(y | x) before the step.
        public var logprob: Double
        public var predicted: Double
        public var observed: Double
        /// <g_o, carried>: the momentum of earlier steps and the weight decay.
        public var carried: Double
        /// Per example term, in the order of the step's terms.
        public var contributions: [Double]
        public var cosines: [Double]
    }

    let model: LlamaModel
    public let sketch: CountSketch?
    /// Seconds the last `attribute` spent: the forwards over the responses before and after the step, the examples'
    /// gradients, and the responses' gradients with their passes over the parameters.
    public private(set) var timings: (scoring: Double, examples: Double, responses: Double) = (0, 0, 0)
    /// Of `timings.responses`, the seconds spent in the passes over the parameters (the rest: the responses' gradients).
    public private(set) var passSeconds = 0.0
    /// theta_t (captured by `begin`), swapped with the model's weights while the probes' gradients are taken.
    private let start: UnsafeMutableBufferPointer<Float>
    /// m_{t-1} (captured by `begin`).
    private let previousMoment: UnsafeMutableBufferPointer<Float>
    /// The examples' gradients (or sketches), kept from one attributed step to the next (their pages stay mapped).
    private var examples = UnsafeMutableBufferPointer<Float>.allocate(capacity: 0)
    /// The session `observed` is scored with (fp32, each prompt once for all of its responses), made at first use.
    private var session: BatchSession?

    /// Keep one attribution for a run's attributed steps: its buffers (4 bytes a parameter for theta_t, m_{t-1} and each
    /// example's gradient) are made once.
    public init(model: LlamaModel, sketch: CountSketch?) {
        self.model = model
        self.sketch = sketch
        start = .allocate(capacity: model.parameterCount)
        previousMoment = .allocate(capacity: model.parameterCount)
    }

    deinit {
        start.deallocate()
        previousMoment.deallocate()
        examples.deallocate()
    }

    /// Bytes this attribution holds besides the model: theta_t and m_{t-1}, and per example term P floats (exact) or D.
    public static func memoryBytes(parameters: Int, examples: Int, sketch: Int?) -> Int {
        4 * (2 * parameters + examples * (sketch ?? parameters))
    }

    /// Before the step: keeps theta_t and m_{t-1}.
    public func begin(optimizer: AdamW) {
        _ = start.update(fromContentsOf: model.parameters)
        _ = previousMoment.update(fromContentsOf: optimizer.m)
    }

    /// After the step (the model holds theta_{t+1}, the optimizer m_t and v_t): every response's attribution.
    /// - Parameters:
    ///   - lr, weightDecay: the step's rate and AdamW's decay; clipScale: the factor the step's gradient was clipped by (1: none).
    ///   - terms: the step's example terms (`Trainer.lastExampleTerms`).
    ///   - responses: (context, continuation) token ids; each must fit the model's activations alone.
    public func attribute(optimizer: AdamW, lr: Double, clipScale: Float, terms: [ExampleTerm],
                          responses: [(context: [Int32], continuation: [Int32])]) -> [Response] {
        let clock = Date()
        let after = score(responses)
        swapWeights()
        defer { swapWeights() }
        let before = score(responses)
        let scored = Date()
        let n = model.parameterCount
        let cfg = optimizer.config, t = Double(optimizer.t)
        let c1 = 1 / (1 - pow(cfg.beta1, t))
        let coefficients = Coefficients(
            c2: Float(1 / (1 - pow(cfg.beta2, t))), eps: Float(cfg.eps),
            decay: Float(-lr * cfg.weightDecay), moment: Float(-lr * c1), carriedMoment: Float(-lr * c1 * cfg.beta1),
            gradient: Float(-lr * c1 * (1 - cfg.beta1)) * clipScale)
        // each example's gradient (or its sketch) and norm
        let width = sketch?.dimension ?? n
        if examples.count < terms.count * width {
            examples.deallocate()
            examples = .allocate(capacity: terms.count * width)
        }
        var exampleNorms: [Double] = []
        for (i, term) in terms.enumerated() {
            model.zeroGradients()
            _ = model.forward(term.batch, training: true)
            term.dLogprobs.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
            let g = UnsafeBufferPointer(model.gradients)
            exampleNorms.append(Self.dot(g, g).squareRoot())
            let row = UnsafeMutableBufferPointer(rebasing: examples[(i * width)..<((i + 1) * width)])
            if let sketch {
                for (j, x) in sketch.project(g).enumerated() { row[j] = Float(x) }
            } else {
                _ = row.update(fromContentsOf: g)
            }
        }
        let examplesDone = Date()
        passSeconds = 0
        var out: [Response] = []
        defer {
            timings = (scored.timeIntervalSince(clock), examplesDone.timeIntervalSince(scored), Date().timeIntervalSince(examplesDone))
        }
        for (r, response) in responses.enumerated() {
            model.zeroGradients()
            let packed = TokenBatch.pack([[(response.context, false), (response.continuation, true)]])
            _ = model.forward(packed.batch, training: true)
            packed.weights.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
            let passStart = Date()
            defer { passSeconds += Date().timeIntervalSince(passStart) }
            let sums = reduce(UnsafeBufferPointer(model.gradients), examples: UnsafeBufferPointer(examples), count: terms.count,
                              optimizer: optimizer, coefficients)
            let norm = sums.norm.squareRoot()
            out.append(Response(
                logprob: before[r], predicted: sums.predicted, observed: after[r] - before[r], carried: sums.carried,
                contributions: sums.contributions,
                cosines: zip(sums.dots, exampleNorms).map { dot, other in norm > 0 && other > 0 ? -dot / (norm * other) : 0 }))
        }
        return out
    }

    /// AdamW's per-coordinate coefficients of the step (see the type's formulas).
    struct Coefficients {
        var c2: Float, eps: Float
        /// -lr wd, -lr c1, -lr c1 beta1, -lr c1 (1 - beta1) c
        var decay: Float, moment: Float, carriedMoment: Float, gradient: Float
    }

    struct Sums {
        var predicted = 0.0, carried = 0.0, norm = 0.0
        var contributions: [Double], dots: [Double]
    }

    /// One pass over g_o (the model's gradient now): <g_o, Delta theta>, <g_o, carried>, |g_o|^2 and per example
    /// <g_o, u_i> and <g_o, g_i> (exact), or the sketches of g_o and of g_o times each coordinate's factor of u_i, whose
    /// products with the examples' sketches estimate them. Each chunk of 2^18 coordinates sums blocks of 256 in float and
    /// the blocks in Double (kept as two floats, high and low part, in the chunk's partials); the chunks are added in
    /// order. The scalars are the same numbers with or without a sketch.
    private func reduce(_ g: UnsafeBufferPointer<Float>, examples: UnsafeBufferPointer<Float>, count: Int,
                        optimizer: AdamW, _ k: Coefficients) -> Sums {
        let theta = UnsafeBufferPointer(start), mOld = UnsafeBufferPointer(previousMoment)
        let m = UnsafeBufferPointer(optimizer.m), v = UnsafeBufferPointer(optimizer.v)
        let n = g.count
        let exact = sketch == nil ? count : 0, d = sketch?.dimension ?? 0
        let scalars = 3 + 2 * exact
        var sums = Sums(contributions: [Double](repeating: 0, count: count), dots: [Double](repeating: 0, count: count))
        var sg = [Double](repeating: 0, count: d), sa = [Double](repeating: 0, count: d)
        let sketch = self.sketch
        Self.chunked(n, width: 2 * scalars + 2 * d, block: 1 << 18) { range, p in
            var total = [Double](repeating: 0, count: scalars)
            let block = UnsafeMutablePointer<Float>.allocate(capacity: scalars)
            defer { block.deallocate() }
            var lo = range.lowerBound
            while lo < range.upperBound {
                let hi = min(range.upperBound, lo + 256)
                block.update(repeating: 0, count: scalars)
                var f0: Float = 0, f1: Float = 0, f2: Float = 0
                for i in lo..<hi {
                    let denominator = (v[i] * k.c2).squareRoot() + k.eps
                    let go = g[i]
                    f0 += go * (k.decay * theta[i] + k.moment * m[i] / denominator)
                    f1 += go * (k.decay * theta[i] + k.carriedMoment * mOld[i] / denominator)
                    f2 += go * go
                    let a = go * k.gradient / denominator
                    for e in 0..<exact {
                        let x = examples[e * n + i]
                        block[3 + e] += a * x
                        block[3 + exact + e] += go * x
                    }
                    if let sketch {
                        let (b, s) = sketch.slot(i)
                        p[2 * scalars + b] += s * go
                        p[2 * scalars + d + b] += s * a
                    }
                }
                total[0] += Double(f0); total[1] += Double(f1); total[2] += Double(f2)
                for j in 3..<scalars { total[j] += Double(block[j]) }
                lo = hi
            }
            for j in 0..<scalars {
                let high = Float(total[j])
                p[2 * j] = high
                p[2 * j + 1] = Float(total[j] - Double(high))
            }
        } combine: { p in
            func scalar(_ j: Int) -> Double { Double(p[2 * j]) + Double(p[2 * j + 1]) }
            sums.predicted += scalar(0); sums.carried += scalar(1); sums.norm += scalar(2)
            for e in 0..<exact {
                sums.contributions[e] += scalar(3 + e)
                sums.dots[e] += scalar(3 + exact + e)
            }
            for j in 0..<d {
                sg[j] += Double(p[2 * scalars + j])
                sa[j] += Double(p[2 * scalars + d + j])
            }
        }
        for e in 0..<(sketch == nil ? 0 : count) {
            var dot = 0.0, contribution = 0.0
            for j in 0..<d {
                let x = Double(examples[e * d + j])
                dot += sg[j] * x
                contribution += sa[j] * x
            }
            sums.dots[e] = dot
            sums.contributions[e] = contribution
        }
        return sums
    }

    /// Runs `body` over the fixed blocks of `block` coordinates of `0..<n` (in parallel), each with its own zeroed float
    /// partial sums of `width`, then hands the blocks' partials to `combine` in order: the result depends on neither the
    /// thread count nor the scheduling.
    static func chunked(_ n: Int, width: Int, block: Int, _ body: (Range<Int>, UnsafeMutableBufferPointer<Float>) -> Void,
                        combine: (UnsafeBufferPointer<Float>) -> Void) {
        let blocks = (n + block - 1) / block
        // blocks per round, so that the partials of a round stay near 16 MB
        let perRound = max(1, (1 << 22) / max(width, 1))
        var first = 0
        while first < blocks {
            let count = min(blocks - first, perRound)
            let partials = UnsafeMutableBufferPointer<Float>.allocate(capacity: count * width)
            partials.initialize(repeating: 0)
            let pp = SendablePointer(partials.baseAddress!), base = first
            parallelFor(count, grain: 1) { r in
                for c in r {
                    let lo = (base + c) * block
                    body(lo..<min(n, lo + block), UnsafeMutableBufferPointer(start: pp.p + c * width, count: width))
                }
            }
            for c in 0..<count { combine(UnsafeBufferPointer(rebasing: partials[(c * width)..<((c + 1) * width)])) }
            partials.deallocate()
            first += count
        }
    }

    /// <a, b> over fixed blocks, in Double.
    static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Double {
        var total = 0.0
        chunked(a.count, width: 1, block: 256) { range, p in
            var s: Float = 0
            for i in range { s += a[i] * b[i] }
            p[0] = s
        } combine: { total += Double($0[0]) }
        return total
    }

    /// log pi(continuation | context) of each response under the model's weights now: a `BatchSession` in fp32, each run of
    /// responses with the same context laid out after it once (as an evaluation scores a probe's responses).
    func score(_ responses: [(context: [Int32], continuation: [Int32])]) -> [Double] {
        var items: [(prompt: [Int32], responses: [[Int32]])] = []
        for r in responses {
            if let last = items.last, last.prompt == r.context {
                items[items.count - 1].responses.append(r.continuation)
            } else {
                items.append((r.context, [r.continuation]))
            }
        }
        let need = items.map { $0.prompt.count + $0.responses.reduce(0) { $0 + $1.count } }.max() ?? 0
        let longest = responses.map { $0.context.count + $0.continuation.count }.max() ?? 0
        if session == nil || session!.slots < need || session!.context < longest + 1 {
            session = BatchSession(model: model, slots: max(4096, need), context: longest + 1)
        }
        return session!.scoreResponses(items).flatMap { $0.map { $0.reduce(0.0) { $0 + Double($1) } } }
    }

    /// Exchanges the model's weights with `start` (theta_{t+1} <-> theta_t).
    private func swapWeights() {
        let p = SendablePointer(model.parameters.baseAddress!), s = SendablePointer(start.baseAddress!)
        parallelFor(model.parameterCount, grain: 1 << 16) { r in
            for i in r { let x = p.p[i]; p.p[i] = s.p[i]; s.p[i] = x }
        }
    }
}
