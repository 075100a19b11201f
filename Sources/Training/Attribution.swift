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
/// Cost: the responses are packed into batches (up to `gradientSlots` of them, within the model's token capacity), and
/// one forward and one backward per batch gives each response its own gradient (`LlamaModel.backward(_:segments:)`);
/// one pass over the parameters per batch then takes every inner product of every response of the batch, so the
/// step's arrays (theta_t, m_{t-1}, m_t, v_t, the examples' gradients) are read once per batch, not once per response.
/// The examples' gradients come from one such backward over the step's terms. log pi_t and log pi_{t+1} are both read
/// off the same training forward (at theta_t the batch's own, at theta_{t+1} one forward more), so that `observed` is
/// 0 for a step that changes nothing.
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
    /// Seconds the last `attribute` spent: the forwards at theta_{t+1}, the examples' gradients, and the responses'
    /// gradients with their passes over the parameters.
    public private(set) var timings: (scoring: Double, examples: Double, responses: Double) = (0, 0, 0)
    /// Of `timings.responses`, the seconds spent in the passes over the parameters (the rest: the responses' gradients).
    public private(set) var passSeconds = 0.0
    /// theta_t (captured by `begin`), swapped with the model's weights while the probes' gradients are taken.
    private let start: UnsafeMutablePointer<Float>
    /// m_{t-1} (captured by `begin`).
    private let previousMoment: UnsafeMutablePointer<Float>
    /// The examples' gradients (or sketches), kept from one attributed step to the next (their pages stay mapped).
    private var examples = UnsafeMutableBufferPointer<Float>.allocate(capacity: 0)
    /// `slotCount` gradients of P floats: one per response of a batch (and per example term when sketching), made at
    /// first use and kept.
    private var slots = UnsafeMutableBufferPointer<Float>.allocate(capacity: 0)
    public let slotCount: Int

    /// Response gradients held at once for a model of `parameters` floats: at most 8, and at most 4.5 GB or an eighth of
    /// the machine's memory of them, whichever is less (at least 1): 8 for SmolLM2-135M on 24 GB, 2 on 8 GB.
    public static func gradientSlots(parameters: Int) -> Int {
        let machine = Double(ProcessInfo.processInfo.physicalMemory)
        let budget = min(4.5e9, machine / 8)
        return max(1, min(8, Int(budget / Double(max(1, 4 * parameters)))))
    }

    /// Keep one attribution for a run's attributed steps: its buffers (4 bytes a parameter for theta_t, m_{t-1}, each
    /// example's gradient and each gradient slot) are made once.
    public init(model: LlamaModel, sketch: CountSketch?) {
        self.model = model
        self.sketch = sketch
        slotCount = Self.gradientSlots(parameters: model.parameterCount)
        start = .allocate(capacity: model.parameterCount)
        previousMoment = .allocate(capacity: model.parameterCount)
    }

    deinit {
        start.deallocate()
        previousMoment.deallocate()
        examples.deallocate()
        slots.deallocate()
    }

    /// Bytes this attribution holds besides the model: theta_t and m_{t-1}, per example term P floats (exact) or D, and
    /// the response gradients' slots (`gradientSlots`).
    public static func memoryBytes(parameters: Int, examples: Int, sketch: Int?) -> Int {
        4 * (2 * parameters + examples * (sketch ?? parameters) + gradientSlots(parameters: parameters) * parameters)
    }

    /// Before the step: keeps theta_t and m_{t-1}.
    public func begin(optimizer: AdamW) {
        copy(from: model.parameters.baseAddress!, to: start)
        copy(from: optimizer.m.baseAddress!, to: previousMoment)
    }

    /// After the step (the model holds theta_{t+1}, the optimizer m_t and v_t): every response's attribution.
    /// - Parameters:
    ///   - lr, weightDecay: the step's rate and AdamW's decay; clipScale: the factor the step's gradient was clipped by (1: none).
    ///   - terms: the step's example terms (`Trainer.lastExampleTerms`).
    ///   - responses: (context, continuation) token ids; each must fit the model's activations alone.
    public func attribute(optimizer: AdamW, lr: Double, clipScale: Float, terms: [ExampleTerm],
                          responses: [(context: [Int32], continuation: [Int32])]) -> [Response] {
        let clock = Date()
        let n = model.parameterCount
        if slots.count < slotCount * n {
            slots.deallocate()
            slots = .allocate(capacity: slotCount * n)
        }
        let groups = Self.batches(responses.map { $0.context.count + $0.continuation.count }, capacity: model.maxTokens, count: slotCount)
        let packed = groups.map { group in
            TokenBatch.pack(group.map { [(responses[$0].context, false), (responses[$0].continuation, true)] })
        }
        // log pi_{t+1}: the forward of each batch at theta_{t+1}
        var after = [Double](repeating: 0, count: responses.count), before = after
        for (group, batch) in zip(groups, packed) {
            let lp = model.forward(batch.batch, training: true)
            for (k, r) in group.enumerated() { after[r] = Self.sum(lp, batch.spans[k]) }
        }
        swapWeights()
        defer { swapWeights() }
        let scored = Date()
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
        var exampleNorms = [Double](repeating: 0, count: terms.count)
        let termGroups = Self.batches(terms.map(\.batch.count), capacity: model.maxTokens, count: sketch == nil ? terms.count : slotCount)
        for group in termGroups {
            // exact: straight into the examples' rows; sketched: into the slots, then sketched
            let buffers = group.indices.map { k in
                sketch == nil ? examples.baseAddress! + group[k] * n : slots.baseAddress! + k * n
            }
            gradients(of: group.map { terms[$0] }, into: buffers)
            for (k, i) in group.enumerated() {
                let g = UnsafeBufferPointer(start: buffers[k], count: n)
                exampleNorms[i] = Self.dot(g, g).squareRoot()
                if let sketch {
                    for (j, x) in sketch.project(g).enumerated() { examples[i * width + j] = Float(x) }
                }
            }
        }
        let examplesDone = Date()
        passSeconds = 0
        var out: [Response?] = .init(repeating: nil, count: responses.count)
        for (group, batch) in zip(groups, packed) {
            let buffers = group.indices.map { slots.baseAddress! + $0 * n }
            let term = ExampleTerm(example: -1, batch: batch.batch, dLogprobs: batch.weights)
            let lp = gradients(of: [term], into: buffers, segments: batch.spans)
            for (k, r) in group.enumerated() { before[r] = Self.sum(lp, batch.spans[k]) }
            let passStart = Date()
            let sums = reduce(buffers.map { UnsafePointer($0) }, examples: UnsafeBufferPointer(examples), count: terms.count,
                              optimizer: optimizer, coefficients)
            passSeconds += Date().timeIntervalSince(passStart)
            for (k, r) in group.enumerated() {
                let norm = sums[k].norm.squareRoot()
                out[r] = Response(
                    logprob: before[r], predicted: sums[k].predicted, observed: after[r] - before[r], carried: sums[k].carried,
                    contributions: sums[k].contributions,
                    cosines: zip(sums[k].dots, exampleNorms).map { dot, other in norm > 0 && other > 0 ? -dot / (norm * other) : 0 })
            }
        }
        timings = (scored.timeIntervalSince(clock), examplesDone.timeIntervalSince(scored), Date().timeIntervalSince(examplesDone))
        return out.map { $0! }
    }

    /// The gradients of `terms` (their batches packed into one, which must fit the model), each term's into its
    /// buffer (written over), or with `segments` the one term's sequences split into those segments, each into its
    /// buffer. Returns the forward's log-probabilities.
    @discardableResult
    private func gradients(of terms: [ExampleTerm], into buffers: [UnsafeMutablePointer<Float>], segments: [SequenceSpan]? = nil) -> [Float] {
        var tokens: [Int32] = [], targets: [Int32] = [], starts: [Int] = [], d: [Float] = [], rows: [Range<Int>] = []
        for term in terms {
            let offset = tokens.count
            tokens += term.batch.tokens
            targets += term.batch.targets
            starts += term.batch.sequenceStarts.map { $0 + offset }
            d += term.dLogprobs
            rows.append(offset..<tokens.count)
        }
        if let segments { rows = segments.map(\.range) }
        precondition(rows.count == buffers.count, "Attribution: \(rows.count) segments for \(buffers.count) buffers")
        let lp = Array(model.forward(TokenBatch(tokens: tokens, targets: targets, sequenceStarts: starts), training: true))
        d.withUnsafeBufferPointer { p in
            model.backward(p.baseAddress!, segments: zip(rows, buffers).map { LlamaModel.GradientSegment(rows: $0, gradients: $1) })
        }
        return lp
    }

    /// Sum of a sequence's log-probabilities (0 at untargeted positions).
    private static func sum<C: Collection>(_ lp: C, _ span: SequenceSpan) -> Double where C.Element == Float, C.Index == Int {
        span.range.reduce(0.0) { $0 + Double(lp[lp.startIndex + $1]) }
    }

    /// Consecutive groups of items (`sizes` tokens each) of at most `count` items and `capacity` tokens (an item larger
    /// than the capacity alone is a group of its own, which the model refuses).
    static func batches(_ sizes: [Int], capacity: Int, count: Int) -> [[Int]] {
        var groups: [[Int]] = [], current: [Int] = [], tokens = 0
        for (i, size) in sizes.enumerated() {
            if !current.isEmpty && (current.count == count || tokens + size > capacity) {
                groups.append(current)
                current = []
                tokens = 0
            }
            current.append(i)
            tokens += size
        }
        if !current.isEmpty { groups.append(current) }
        return groups
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

    /// One pass over the gradients g_o of a batch of responses: for each, <g_o, Delta theta>, <g_o, carried>, |g_o|^2 and
    /// per example <g_o, u_i> and <g_o, g_i> (exact), or the sketches of g_o and of g_o times each coordinate's factor of
    /// u_i, whose products with the examples' sketches estimate them. The step's per-coordinate factors (Delta theta,
    /// carried, the u_i's factor and, exact, its products with the examples' gradients) are computed once per block of
    /// 256 coordinates for every response of the batch. Each inner product sums a block in 16 float lanes (`lanes`),
    /// the blocks lane by lane in Double, and the lanes at the end of a chunk of 2^18 coordinates, whose sum is kept as
    /// two floats (high and low part) in the chunk's partials; the chunks are added in order. The scalars are the same numbers with or without a sketch.
    private func reduce(_ grads: [UnsafePointer<Float>], examples: UnsafeBufferPointer<Float>, count: Int,
                        optimizer: AdamW, _ k: Coefficients) -> [Sums] {
        let theta = UnsafePointer(start), mOld = UnsafePointer(previousMoment)
        let m = UnsafePointer(optimizer.m.baseAddress!), v = UnsafePointer(optimizer.v.baseAddress!)
        let ex = examples.baseAddress!
        let n = model.parameterCount, responses = grads.count
        let exact = sketch == nil ? count : 0, d = sketch?.dimension ?? 0
        let scalars = 3 + 2 * exact
        let per = 2 * scalars + 2 * d  // one response's partials: scalars (high, low), then its two sketches
        var sums = [Sums](repeating: Sums(contributions: [Double](repeating: 0, count: count), dots: [Double](repeating: 0, count: count)),
                          count: responses)
        var sg = [[Double]](repeating: [Double](repeating: 0, count: d), count: responses), sa = sg
        let sketch = self.sketch
        let block = 256
        Self.chunked(n, width: responses * per, block: 1 << 18) { range, p in
            // per response and scalar: the block sums, widened to Double lane by lane (summed across lanes at the end)
            var total = [SIMD8<Double>](repeating: .zero, count: 2 * responses * scalars)
            // the step's factors over one block: Delta theta, carried, u's factor a, then a * g_e per example
            let factors = UnsafeMutablePointer<Float>.allocate(capacity: (3 + exact) * block)
            let buckets = UnsafeMutablePointer<Int>.allocate(capacity: block), signs = UnsafeMutablePointer<Float>.allocate(capacity: block)
            defer { factors.deallocate(); buckets.deallocate(); signs.deallocate() }
            let delta = factors, carried = factors + block, a = factors + 2 * block
            @inline(__always) func add(_ t: Int, _ x: SIMD16<Float>) {
                total[2 * t] += SIMD8<Double>(x.lowHalf)
                total[2 * t + 1] += SIMD8<Double>(x.highHalf)
            }
            var lo = range.lowerBound
            while lo < range.upperBound {
                let len = min(range.upperBound, lo + block) - lo
                var j = 0
                while j + 16 <= len {  // 16 lanes at a time: the same operations as the tail's, lane by lane
                    let i = lo + j
                    let inverse = 1 / ((Self.load(v + i) * k.c2).squareRoot() + k.eps)
                    let decayed = k.decay * Self.load(theta + i)
                    Self.store(decayed + k.moment * Self.load(m + i) * inverse, delta + j)
                    Self.store(decayed + k.carriedMoment * Self.load(mOld + i) * inverse, carried + j)
                    Self.store(k.gradient * inverse, a + j)
                    j += 16
                }
                while j < len {
                    let i = lo + j
                    let inverse = 1 / ((v[i] * k.c2).squareRoot() + k.eps)
                    let decayed = k.decay * theta[i]
                    delta[j] = decayed + k.moment * m[i] * inverse
                    carried[j] = decayed + k.carriedMoment * mOld[i] * inverse
                    a[j] = k.gradient * inverse
                    j += 1
                }
                for e in 0..<exact {
                    let row = factors + (3 + e) * block, x = ex + e * n + lo
                    var j = 0
                    while j + 16 <= len {
                        Self.store(Self.load(a + j) * Self.load(x + j), row + j)
                        j += 16
                    }
                    while j < len {
                        row[j] = a[j] * x[j]
                        j += 1
                    }
                }
                if let sketch {
                    for j in 0..<len {
                        let (b, s) = sketch.slot(lo + j)
                        buckets[j] = b
                        signs[j] = s
                    }
                }
                for r in 0..<responses {
                    let g = grads[r] + lo, t = r * scalars
                    add(t, Self.lanes(g, delta, len))
                    add(t + 1, Self.lanes(g, carried, len))
                    add(t + 2, Self.lanes(g, g, len))
                    for e in 0..<exact {
                        add(t + 3 + e, Self.lanes(g, factors + (3 + e) * block, len))
                        add(t + 3 + exact + e, Self.lanes(g, ex + e * n + lo, len))
                    }
                    if sketch != nil {
                        let q = p.baseAddress! + r * per + 2 * scalars
                        for j in 0..<len {
                            let x = signs[j] * g[j]
                            q[buckets[j]] += x
                            q[d + buckets[j]] += x * a[j]
                        }
                    }
                }
                lo += len
            }
            for r in 0..<responses {
                for j in 0..<scalars {
                    let t = r * scalars + j
                    let value = (total[2 * t] + total[2 * t + 1]).sum()
                    let high = Float(value)
                    p[r * per + 2 * j] = high
                    p[r * per + 2 * j + 1] = Float(value - Double(high))
                }
            }
        } combine: { p in
            for r in 0..<responses {
                func scalar(_ j: Int) -> Double { Double(p[r * per + 2 * j]) + Double(p[r * per + 2 * j + 1]) }
                sums[r].predicted += scalar(0); sums[r].carried += scalar(1); sums[r].norm += scalar(2)
                for e in 0..<exact {
                    sums[r].contributions[e] += scalar(3 + e)
                    sums[r].dots[e] += scalar(3 + exact + e)
                }
                for j in 0..<d {
                    sg[r][j] += Double(p[r * per + 2 * scalars + j])
                    sa[r][j] += Double(p[r * per + 2 * scalars + d + j])
                }
            }
        }
        for r in 0..<responses {
            for e in 0..<(sketch == nil ? 0 : count) {
                var dot = 0.0, contribution = 0.0
                for j in 0..<d {
                    let x = Double(examples[e * d + j])
                    dot += sg[r][j] * x
                    contribution += sa[r][j] * x
                }
                sums[r].dots[e] = dot
                sums[r].contributions[e] = contribution
            }
        }
        return sums
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
    @inline(__always) static func store(_ x: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: x, as: SIMD16<Float>.self) }

    /// sum a[i] b[i] over `count` floats in 16 float lanes (lane i mod 16), not yet added across lanes.
    @inline(__always)
    static func lanes(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> SIMD16<Float> {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= count {
            acc.addProduct(load(a + i), load(b + i))
            i += 16
        }
        var j = 0
        while i < count {
            acc[j] += a[i] * b[i]
            i += 1
            j += 1
        }
        return acc
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
            p[0] = lanes(a.baseAddress! + range.lowerBound, b.baseAddress! + range.lowerBound, range.count).sum()
        } combine: { total += Double($0[0]) }
        return total
    }

    /// `count` = P floats of `source` into `target`, in parallel.
    private func copy(from source: UnsafePointer<Float>, to target: UnsafeMutablePointer<Float>) {
        let s = SendablePointer(UnsafeMutablePointer(mutating: source)), t = SendablePointer(target)
        parallelFor(model.parameterCount, grain: 1 << 20) { r in (t.p + r.lowerBound).update(from: s.p + r.lowerBound, count: r.count) }
    }

    /// Exchanges the model's weights with `start` (theta_{t+1} <-> theta_t).
    private func swapWeights() {
        let p = SendablePointer(model.parameters.baseAddress!), s = SendablePointer(start)
        parallelFor(model.parameterCount, grain: 1 << 16) { r in
            for i in r { let x = p.p[i]; p.p[i] = s.p[i]; s.p[i] = x }
        }
    }
}
