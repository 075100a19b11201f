import Base
import Foundation
import Kernels

/// Inference over many short sequences at once, each of which may continue a shared prefix.
///
/// The session owns a KV cache of `slots` positions. A caller lays sequences out in it: a sequence is a
/// run of consecutive slots, and may additionally attend to a *prefix*, another run of slots holding
/// tokens that come before it (a probe's prompt, shared by all of that probe's responses). Rows of many
/// sequences are appended in one `append` call and run through the network together, in chunks of up to
/// `rows` tokens, so the projections and the feed-forward are sgemms over hundreds of rows instead of one
/// sequence's few dozen. For every slot the session keeps the rotated keys, the values and the final
/// normalised hidden state, so log-probabilities and next-token choices are read afterwards without
/// recomputation.
///
/// Numerically a sequence gives what one sequence holding prefix + sequence gives, up to float rounding;
/// the rows of a chunk do not interact, so results do not depend on which other sequences share a call
/// except through the sgemm blocking (differences of order 1e-6).
public final class BatchSession {
    /// New tokens of one sequence.
    public struct Segment: Sendable {
        /// Slots of the tokens this sequence continues (their positions are 0..<prefix.count); may be empty.
        public var prefix: Range<Int>
        /// Slot of the sequence's first token.
        public var start: Int
        /// Tokens of the sequence already in the cache (at start..<start+history).
        public var history: Int
        /// Tokens to add, at slots start+history... and positions prefix.count+history...
        public var tokens: [Int32]

        public init(prefix: Range<Int> = 0..<0, start: Int, history: Int = 0, tokens: [Int32]) {
            self.prefix = prefix
            self.start = start
            self.history = history
            self.tokens = tokens
        }
    }

    public let model: LlamaModel
    /// Positions of the KV cache.
    public let slots: Int
    /// Most rows run through the network at once.
    public let rows: Int
    /// Most keys one token may attend to (prefix + its own sequence).
    public let context: Int
    /// The input type of the weight products and the output head (the spec's `eval.precision`); the
    /// model's own `precision` is training's and is not used here.
    public var precision: Precision = .fp32

    /// Told after each pass through the cache of a scoring call how many of the call's responses are scored so far
    /// (for a progress bar); nil: nothing is told.
    public var passDone: ((_ responses: Int) -> Void)?

    private let storage: UnsafeMutableBufferPointer<Float>
    private let kCache, vCache: [UnsafeMutablePointer<Float>]
    let hidden: UnsafeMutablePointer<Float>
    let x, norm, qkv, att, mid, gateUp, ffn, scores, kGather, vGather, logits, rstd: UnsafeMutablePointer<Float>
    /// The model's LoRA adapters' scratch for `rows` rows, when it had adapters at the session's creation.
    let adapterScratch: UnsafeMutablePointer<Float>?
    private let ids: UnsafeMutableBufferPointer<Int32>
    private let ropeCos: [Float], ropeSin: [Float]
    /// Rows of the output head computed at once.
    let headRows: Int

    /// - Parameters:
    ///   - slots: positions of the KV cache.
    ///   - rows: most tokens per pass through the network (activation buffers scale with it).
    ///   - context: most keys a token attends to, prefix included.
    ///   - adapters: with the model's LoRA adapters (`LlamaModel.lora`, as they are when the session is made), or, false,
    ///     the base model's scores (a LoRA run's reference, without a second copy of the weights).
    public init(model: LlamaModel, slots: Int, rows: Int = 512, context: Int, adapters: Bool = true) {
        precondition(slots > 0 && rows > 0 && context > 0, "BatchSession: sizes must be positive")
        self.model = model
        self.slots = slots
        self.rows = rows
        self.context = context
        let cfg = model.config
        let c = cfg.dim, f = cfg.ffnDim, v = cfg.vocabSize, kv = cfg.nKVHeads * cfg.headDim
        let r = rows
        headRows = min(64, rows)
        let sizes = [
            2 * cfg.nLayers * slots * kv, slots * c,          // caches, hidden
            r * c, r * c, r * (c + 2 * kv), r * c,              // x, norm, q|k|v, att
            r * cfg.ffnInputWidth, r * f, r * context,          // gateUp, ffn, scores
            context * kv, context * kv, min(64, rows) * v, r,        // kGather, vGather, logits, rstd
            r * c,                                              // mid (the residual between attention and MLP)
        ]
        storage = .allocate(capacity: sizes.reduce(0, +))
        storage.initialize(repeating: 0)
        var offset = 0
        var p: [UnsafeMutablePointer<Float>] = []
        for s in sizes {
            p.append(storage.baseAddress! + offset)
            offset += s
        }
        kCache = (0..<cfg.nLayers).map { p[0] + 2 * $0 * slots * kv }
        vCache = (0..<cfg.nLayers).map { p[0] + (2 * $0 + 1) * slots * kv }
        hidden = p[1]
        x = p[2]; norm = p[3]; qkv = p[4]; att = p[5]
        gateUp = p[6]; ffn = p[7]; scores = p[8]; kGather = p[9]; vGather = p[10]; logits = p[11]; rstd = p[12]; mid = p[13]
        ids = .allocate(capacity: 2 * r)
        ids.initialize(repeating: 0)
        if adapters, let lora = model.lora {  // the adapters' rows (no dropout: sessions never train)
            adapterScratch = .allocate(capacity: lora.scratchFloats(rows: r))
        } else {
            adapterScratch = nil
        }
        (ropeCos, ropeSin) = ropeTable(positions: context, headDim: cfg.rotaryDims, base: cfg.ropeBase)
    }

    deinit {
        storage.deallocate()
        adapterScratch?.deallocate()
        ids.deallocate()
    }

    /// Runs the segments' new tokens through the network, writing their keys, values and final hidden
    /// states at their slots. A segment may use as prefix (or history) slots written by an earlier segment
    /// of the same call: segments are processed in order.
    public func append(_ segments: [Segment]) {
        model.withRoundedWeights(precision) { appendPasses(segments) }
    }

    private func appendPasses(_ segments: [Segment]) {
        // Cut the segments into pieces of at most `rows` tokens and pack the pieces into passes.
        var pass: [Segment] = []
        var used = 0
        for segment in segments {
            precondition(segment.prefix.lowerBound >= 0 && segment.prefix.upperBound <= slots, "BatchSession: prefix outside the cache")
            precondition(segment.start >= 0 && segment.start + segment.history + segment.tokens.count <= slots,
                         "BatchSession: segment outside the cache")
            precondition(segment.prefix.count + segment.history + segment.tokens.count <= context,
                         "BatchSession: segment longer than the context \(context)")
            var done = 0
            while done < segment.tokens.count {
                if used == rows {
                    forward(pass, count: used)
                    pass.removeAll(keepingCapacity: true)
                    used = 0
                }
                let n = min(rows - used, segment.tokens.count - done)
                pass.append(Segment(prefix: segment.prefix, start: segment.start, history: segment.history + done,
                                    tokens: Array(segment.tokens[done..<done + n])))
                used += n
                done += n
            }
        }
        if used > 0 { forward(pass, count: used) }
    }

    /// log p(token | everything before it) for each (slot, token): the distribution read from the final
    /// hidden state at `slot`, which must have been written.
    public func logprobs(at positions: [(slot: Int, token: Int32)]) -> [Float] {
        let v = model.config.vocabSize
        var result = [Float](repeating: 0, count: positions.count)
        var targets = [Int32](repeating: 0, count: headRows)
        var lse = [Float](repeating: 0, count: headRows)
        headBlocks(positions.map(\.slot)) { first, m in
            for i in 0..<m { targets[i] = positions[first + i].token }
            result.withUnsafeMutableBufferPointer { out in
                logSoftmaxGatherForward(out.baseAddress! + first, &lse, logits, targets, m: m, v: v)
            }
        }
        return result
    }

    /// The log-softmax over the vocabulary read from the final hidden state at `slot`.
    public func logSoftmax(at slot: Int) -> [Float] {
        logSoftmax(at: [slot])[0]
    }

    /// The most likely next token after each slot (the first one on ties).
    public func argmax(at slotList: [Int]) -> [Int32] {
        let v = model.config.vocabSize
        var result = [Int32](repeating: 0, count: slotList.count)
        headBlocks(slotList) { first, m in
            for i in 0..<m {
                let row = logits + i * v
                var best = 0
                for j in 1..<v where row[j] > row[best] { best = j }
                result[first + i] = Int32(best)
            }
        }
        return result
    }

    /// Runs the output head on the final hidden states at `slotList`, `headRows` at a time: for each block,
    /// `body(first, count)` finds the (count, vocabulary) logits of slotList[first ..< first + count] in `logits`.
    func headBlocks(_ slotList: [Int], _ body: (Int, Int) -> Void) {
        model.withRoundedWeights(precision) { headBlockProducts(slotList, body) }
    }

    private func headBlockProducts(_ slotList: [Int], _ body: (Int, Int) -> Void) {
        let c = model.config.dim, v = model.config.vocabSize
        var first = 0
        while first < slotList.count {
            let m = min(headRows, slotList.count - first)
            for i in 0..<m {
                let slot = slotList[first + i]
                precondition(slot >= 0 && slot < slots, "BatchSession: slot \(slot) outside the cache")
                (norm + i * c).update(from: hidden + slot * c, count: c)
            }
            matmul(logits, norm, model.p.output, m: m, n: v, k: c, transB: true, precision: precision,
                   roundedB: model.roundedWeight(model.p.output))
            body(first, m)
            first += m
        }
    }

    /// log p(token | prompt, earlier response tokens) for every token of every response, for many prompts
    /// each with several responses. Probes are laid out in the cache as many at a time as fit (each
    /// prompt once, followed by its responses but their last token, which is only predicted) and run
    /// through the network together. Overwrites the cache.
    public func scoreResponses(_ items: [(prompt: [Int32], responses: [[Int32]])]) -> [[[Float]]] {
        layOut(items, read: logprobs(at:))
    }

    /// `scoreResponses` with the whole next-token distribution's shape at every response token
    /// (`TokenDistribution`: its logprob is the same number `scoreResponses` gives, bit for bit).
    public func scoreDistributions(_ items: [(prompt: [Int32], responses: [[Int32]])]) -> [[[TokenDistribution]]] {
        layOut(items, read: distributions(at:))
    }

    /// The `TokenDistribution` of each (slot, token): the distribution read from the final hidden state at
    /// `slot`, which must have been written.
    public func distributions(at positions: [(slot: Int, token: Int32)]) -> [TokenDistribution] {
        let v = model.config.vocabSize
        var result: [TokenDistribution] = []
        result.reserveCapacity(positions.count)
        var targets = [Int32](repeating: 0, count: headRows)
        let block = UnsafeMutablePointer<TokenDistribution>.allocate(capacity: headRows)
        defer { block.deallocate() }
        headBlocks(positions.map(\.slot)) { first, m in
            for i in 0..<m { targets[i] = positions[first + i].token }
            tokenDistributions(block, logits, targets, m: m, v: v)
            result.append(contentsOf: UnsafeBufferPointer(start: block, count: m))
            block.deinitialize(count: m)
        }
        return result
    }

    /// `scoreDistributions` and, from the same pass, each response's reward (`config.rewardHead`):
    /// r = w_r . h at the response's last token, h the final norm's output there. For this the responses'
    /// last tokens run through the network too (one more row per response); the distributions are the
    /// same numbers up to the rounding of a differently shaped pass.
    public func scoreDistributionsAndRewards(_ items: [(prompt: [Int32], responses: [[Int32]])]) -> (distributions: [[[TokenDistribution]]], rewards: [[Float]]) {
        precondition(model.config.rewardHead, "BatchSession.scoreDistributionsAndRewards: the model has no reward head")
        var rewards: [[Float]] = items.map { $0.responses.map { _ in 0 } }
        let distributions = layOut(items, read: distributions(at:), last: { k, r, slot in rewards[k][r] = self.reward(at: slot) })
        return (distributions, rewards)
    }

    /// Each response's reward (`config.rewardHead`) as `scoreDistributionsAndRewards` reads it, without the
    /// output head (no distributions are computed).
    public func scoreRewards(_ items: [(prompt: [Int32], responses: [[Int32]])]) -> [[Float]] {
        precondition(model.config.rewardHead, "BatchSession.scoreRewards: the model has no reward head")
        var rewards: [[Float]] = items.map { $0.responses.map { _ in 0 } }
        _ = layOut(items, read: { [Float](repeating: 0, count: $0.count) }, last: { k, r, slot in rewards[k][r] = self.reward(at: slot) })
        return rewards
    }

    /// r = w_r . h with h the final norm's output at `slot`.
    private func reward(at slot: Int) -> Float {
        let head = model.p.rewardHead!, c = model.config.dim, h = hidden + slot * c
        var sum: Float = 0
        for j in 0..<c { sum += head[j] * h[j] }
        return sum
    }

    /// Lays the items out in the cache as `scoreResponses` describes, runs them, and reads every response
    /// token's position with `read` (one value per (slot, token), in order). With `last`, each response's
    /// last token runs too and `last(item, response, slot)` is called with the slot that holds it (an empty
    /// response: the prompt's last slot).
    func layOut<T>(_ items: [(prompt: [Int32], responses: [[Int32]])],
                           read: ([(slot: Int, token: Int32)]) -> [T],
                           last: ((Int, Int, Int) -> Void)? = nil) -> [[[T]]] {
        model.withRoundedWeights(precision) { layOutPasses(items, read: read, last: last) }
    }

    private func layOutPasses<T>(_ items: [(prompt: [Int32], responses: [[Int32]])],
                                 read: ([(slot: Int, token: Int32)]) -> [T],
                                 last: ((Int, Int, Int) -> Void)?) -> [[[T]]] {
        var result: [[[T]]] = items.map { $0.responses.map { _ in [] } }
        let whole = last != nil ? 1 : 0
        var first = 0
        while first < items.count {
            var segments: [Segment] = []
            var queries: [(slot: Int, token: Int32)] = []
            var lastSlots: [(item: Int, response: Int, slot: Int)] = []
            var next = 0, p = first
            while p < items.count {
                let (prompt, responses) = items[p]
                precondition(!prompt.isEmpty || responses.allSatisfy(\.isEmpty), "BatchSession.scoreResponses: a response needs a prompt")
                let need = prompt.count + responses.reduce(0) { $0 + max(0, $1.count - 1 + whole) }
                precondition(need <= slots, "BatchSession.scoreResponses: probe \(p) needs \(need) slots, the cache has \(slots)")
                if next > 0 && next + need > slots { break }
                let promptSlots = next..<next + prompt.count
                if !prompt.isEmpty { segments.append(Segment(start: next, tokens: prompt)) }
                next += prompt.count
                for (k, r) in responses.enumerated() {
                    let run = whole == 1 ? r : Array(r.dropLast())
                    if !run.isEmpty { segments.append(Segment(prefix: promptSlots, start: next, tokens: run)) }
                    for (i, t) in r.enumerated() {
                        queries.append((slot: i == 0 ? promptSlots.upperBound - 1 : next + i - 1, token: t))
                    }
                    lastSlots.append((p, k, r.isEmpty ? promptSlots.upperBound - 1 : next + r.count - 1))
                    next += max(0, r.count - 1 + whole)
                }
                p += 1
            }
            append(segments)
            let values = read(queries)
            if let last { for s in lastSlots { last(s.item, s.response, s.slot) } }
            var q = 0
            for k in first..<p {
                for (r, response) in items[k].responses.enumerated() {
                    result[k][r] = Array(values[q..<q + response.count])
                    q += response.count
                }
            }
            first = p
            if let passDone { passDone(items[..<p].reduce(0) { $0 + $1.responses.count }) }
        }
        return result
    }

    /// log p(token | prompt, earlier response tokens) for every token of each (prompt, response) pair,
    /// in the pairs' order. Pairs with the same prompt share it: it is laid out once and its responses
    /// follow it, as in `scoreResponses`. Sizes a session for the pairs (context: the longest prompt plus
    /// response; at least 4096 cache slots) and runs them in passes of up to 512 rows. Every prompt that
    /// has a non-empty response must be non-empty.
    public static func scorePairs(model: LlamaModel, _ pairs: [(prompt: [Int32], response: [Int32])]) -> [[Float]] {
        var itemOf: [[Int32]: Int] = [:]
        var items: [(prompt: [Int32], responses: [[Int32]])] = []
        var place: [(item: Int, response: Int)] = []
        for pair in pairs {
            let k: Int
            if let known = itemOf[pair.prompt] {
                k = known
            } else {
                k = items.count
                itemOf[pair.prompt] = k
                items.append((pair.prompt, []))
            }
            place.append((k, items[k].responses.count))
            items[k].responses.append(pair.response)
        }
        let context = max(1, pairs.map { $0.prompt.count + $0.response.count }.max() ?? 1)
        let need = items.map { $0.prompt.count + $0.responses.reduce(0) { $0 + max(0, $1.count - 1) } }.max() ?? 0
        let session = BatchSession(model: model, slots: max(4096, need), context: context)
        let scored = session.scoreResponses(items)
        return place.map { scored[$0.item][$0.response] }
    }

    /// Every prompt's greedy continuation: up to `maxTokens` tokens, ending before the first stop token
    /// (not included), as `generate` with temperature 0 gives. The prompts are decoded in lock step, as
    /// many at a time as fit in the cache: one row per unfinished prompt per pass. Overwrites the cache.
    public func greedy(prompts: [[Int32]], maxTokens: Int, stop: Set<Int32>) -> [[Int32]] {
        sample(prompts: prompts, count: 1, options: SamplingOptions(maxTokens: maxTokens, temperature: 0, stop: stop)).map { $0[0] }
    }

    /// The seed of sample `j` of prompt `i` under `seed`: each sample draws from its own generator, so its tokens
    /// do not depend on which other prompts or samples share its passes.
    public static func sampleSeed(_ seed: UInt64, prompt i: Int, sample j: Int) -> UInt64 {
        var mix = SplitMix64(seed: seed ^ (UInt64(i) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(j) &* 0xD1B5_4A32_D192_ED03))
        return mix.next()
    }

    /// `count` continuations of every prompt, sampled as `generate` samples (temperature, top-p; greedy at
    /// temperature 0), each up to `options.maxTokens` tokens and ending before the first stop token (not
    /// included). Sample j of prompt i draws from `SplitMix64(sampleSeed(options.seed, prompt: ids[i], sample: j))`,
    /// `ids` the prompts' own numbers (default their indices), so that a prompt's samples do not depend on
    /// which other prompts share the call.
    /// All samples of as many prompts as fit in the cache are decoded in lock step (one row per unfinished
    /// sample per pass); a prompt runs once and its samples attend to its keys. Overwrites the cache.
    /// Result: [prompt][sample] tokens.
    public func sample(prompts: [[Int32]], count n: Int, options: SamplingOptions, ids: [Int]? = nil) -> [[[Int32]]] {
        sampleLoop(prompts: prompts, count: n, options: options, ids: ids, trace: false).tokens
    }

    /// A sampled response with what its sampling pass saw at each token.
    public struct SampledResponse: Sendable, Equatable {
        /// The response's tokens, ending with the stop token when one was drawn (`ended`).
        public var tokens: [Int32]
        /// log p(token | prompt, earlier tokens) under the model's own distribution (temperature 1, no top-p), per token.
        public var logprobs: [Float]
        /// The entropy -sum p log p of that distribution at each token, in nats.
        public var entropies: [Float]
        /// True when the response ended with a stop token (false: cut at `maxTokens`).
        public var ended: Bool
    }

    /// `sample` (the same tokens, bit for bit), with each token's log-probability and the entropy of the distribution
    /// it was drawn from, read from the sampling pass itself; the stop token that ended a response is kept, with its
    /// log-probability. What an online policy optimiser needs of its samples (`Trainer.ppoStep`).
    public func sampleTraced(prompts: [[Int32]], count n: Int, options: SamplingOptions, ids: [Int]? = nil) -> [[SampledResponse]] {
        let r = sampleLoop(prompts: prompts, count: n, options: options, ids: ids, trace: true)
        return r.tokens.indices.map { i in
            (0..<n).map { j in
                let trace = r.traces[i][j]
                return SampledResponse(tokens: r.tokens[i][j] + (trace.stop.map { [$0] } ?? []), logprobs: trace.logprobs,
                                       entropies: trace.entropies, ended: trace.stop != nil)
            }
        }
    }

    private struct Trace {
        var logprobs: [Float] = [], entropies: [Float] = []
        var stop: Int32?
    }

    private func sampleLoop(prompts: [[Int32]], count n: Int, options: SamplingOptions, ids: [Int]?,
                            trace: Bool) -> (tokens: [[[Int32]]], traces: [[Trace]]) {
        model.withRoundedWeights(precision) { samplePasses(prompts: prompts, count: n, options: options, ids: ids, trace: trace) }
    }

    private func samplePasses(prompts: [[Int32]], count n: Int, options: SamplingOptions, ids: [Int]?,
                              trace: Bool) -> (tokens: [[[Int32]]], traces: [[Trace]]) {
        precondition(n >= 1, "BatchSession.sample: count must be at least 1")
        precondition(ids == nil || ids!.count == prompts.count, "BatchSession.sample: one id per prompt")
        let maxTokens = options.maxTokens
        var out = [[[Int32]]](repeating: [[Int32]](repeating: [], count: n), count: prompts.count)
        var traces = [[Trace]](repeating: [Trace](repeating: Trace(), count: n), count: trace ? prompts.count : 0)
        if maxTokens <= 0 { return (out, traces) }
        var first = 0
        while first < prompts.count {
            // Layout per prompt: the prompt, then one region of maxTokens slots per sample. A single sample
            // continues the prompt's own sequence; several read it as their prefix.
            var promptStart: [Int] = [], members: [Int] = []
            var next = 0, p = first
            while p < prompts.count, next == 0 || next + prompts[p].count + n * maxTokens <= slots {
                precondition(!prompts[p].isEmpty, "BatchSession.sample: prompt \(p) is empty")
                precondition(prompts[p].count + n * maxTokens <= slots && prompts[p].count + maxTokens <= context,
                             "BatchSession.sample: prompt \(p) and \(n) x \(maxTokens) new tokens do not fit")
                promptStart.append(next)
                members.append(p)
                next += prompts[p].count + n * maxTokens
                p += 1
            }
            append(members.indices.map { Segment(start: promptStart[$0], tokens: prompts[members[$0]]) })
            // (member, sample) pairs still decoding, each with its generator
            var active: [(m: Int, j: Int)] = members.indices.flatMap { m in (0..<n).map { (m, $0) } }
            var rngs = [[SplitMix64]](repeating: [], count: members.count)
            for (m, probe) in members.enumerated() {
                rngs[m] = (0..<n).map { SplitMix64(seed: Self.sampleSeed(options.seed, prompt: ids?[probe] ?? probe, sample: $0)) }
            }
            func promptSlots(_ m: Int) -> Range<Int> { promptStart[m]..<promptStart[m] + prompts[members[m]].count }
            func regionStart(_ m: Int, _ j: Int) -> Int { promptSlots(m).upperBound + j * maxTokens }
            /// The slot whose hidden state predicts the next token of sample (m, j).
            func lastSlot(_ m: Int, _ j: Int) -> Int {
                let made = out[members[m]][j].count
                return made == 0 ? promptSlots(m).upperBound - 1 : regionStart(m, j) + made - 1
            }
            while !active.isEmpty {
                let slotList = active.map { lastSlot($0.m, $0.j) }
                var chosen: [Int32]
                if options.temperature <= 0 && !trace {
                    chosen = argmax(at: slotList)
                } else {
                    let rows = logSoftmax(at: slotList)
                    chosen = active.indices.map { k in Model.sample(rows[k], options: options, rng: &rngs[active[k].m][active[k].j]) }
                    if trace {
                        for (k, a) in active.enumerated() {
                            traces[members[a.m]][a.j].logprobs.append(rows[k][Int(chosen[k])])
                            var h = 0.0
                            for l in rows[k] where l > -Float.infinity { h -= exp(Double(l)) * Double(l) }
                            traces[members[a.m]][a.j].entropies.append(Float(h))
                        }
                    }
                }
                var segments: [Segment] = []
                var still: [(m: Int, j: Int)] = []
                for (k, a) in active.enumerated() {
                    let probe = members[a.m]
                    if options.stop.contains(chosen[k]) {
                        if trace { traces[probe][a.j].stop = chosen[k] }
                        continue
                    }
                    out[probe][a.j].append(chosen[k])
                    let made = out[probe][a.j].count
                    if made < maxTokens {
                        if n == 1 {
                            segments.append(Segment(start: promptStart[a.m], history: prompts[probe].count + made - 1, tokens: [chosen[k]]))
                        } else {
                            segments.append(Segment(prefix: promptSlots(a.m), start: regionStart(a.m, a.j), history: made - 1, tokens: [chosen[k]]))
                        }
                        still.append(a)
                    }
                }
                if !segments.isEmpty { append(segments) }
                active = still
            }
            first = p
        }
        return (out, traces)
    }

    /// The log-softmax over the vocabulary read from the final hidden state at each slot, one row per slot.
    public func logSoftmax(at slotList: [Int]) -> [[Float]] {
        let v = model.config.vocabSize
        var rows: [[Float]] = []
        rows.reserveCapacity(slotList.count)
        headBlocks(slotList) { _, m in
            for i in 0..<m {
                Kernels.logSoftmax(logits + i * v, logits + i * v, v: v)
                rows.append(Array(UnsafeBufferPointer(start: logits + i * v, count: v)))
            }
        }
        return rows
    }

    /// One pass of at most `rows` tokens.
    private func forward(_ pass: [Segment], count b: Int) {
        let cfg = model.config
        let c = cfg.dim, hd = cfg.headDim, nh = cfg.nHeads, nkv = cfg.nKVHeads, kv = nkv * hd
        let group = nh / nkv, w3 = c + 2 * kv
        // Row layout: token ids, rope positions, and the cache slot of every row.
        var slotOf = [Int](repeating: 0, count: b)
        var row = 0
        for s in pass {
            for (i, t) in s.tokens.enumerated() {
                precondition(t >= 0 && Int(t) < cfg.vocabSize, "BatchSession: token \(t) out of vocabulary")
                ids[row] = t
                ids[rows + row] = Int32(s.prefix.count + s.history + i)
                slotOf[row] = s.start + s.history + i
                row += 1
            }
        }
        let tok = ids.baseAddress!, pos = ids.baseAddress! + rows
        embeddingForward(x, tok, model.p.embedding, n: b, c: c)
        let buffers = BlockBuffers(attnRstd: rstd, ffnRstd: rstd, norm: norm, qkv: qkv, att: att, residMid: mid,
                                   gateUp: gateUp, hidden: ffn, adapterScratch: adapterScratch)
        ropeCos.withUnsafeBufferPointer { cosb in
            ropeSin.withUnsafeBufferPointer { sinb in
                for l in 0..<cfg.nLayers {
                    model.blockForward(l, out: x, x: x, n: b, positions: pos, cos: cosb.baseAddress!, sin: sinb.baseAddress!,
                                       buffers: buffers, residual: .inProduct, precision: precision) { qkv, att in
                        // The KV cache: this pass's keys and values are stored at their slots, and each segment's
                        // rows attend to its prefix and its own earlier slots.
                        for i in 0..<b {
                            (kCache[l] + slotOf[i] * kv).update(from: qkv + i * w3 + c, count: kv)
                            (vCache[l] + slotOf[i] * kv).update(from: qkv + i * w3 + c + kv, count: kv)
                        }
                        var r0 = 0
                        for s in pass {
                            // Prefix and own keys as one contiguous block (gathered when there is a prefix), then
                            // causal attention with the new rows sitting at the end of it.
                            let lp = s.prefix.count, own = s.history + s.tokens.count, nk = lp + own
                            var keys = kCache[l] + s.start * kv, values = vCache[l] + s.start * kv
                            if lp > 0 {
                                kGather.update(from: kCache[l] + s.prefix.lowerBound * kv, count: lp * kv)
                                vGather.update(from: vCache[l] + s.prefix.lowerBound * kv, count: lp * kv)
                                (kGather + lp * kv).update(from: keys, count: own * kv)
                                (vGather + lp * kv).update(from: values, count: own * kv)
                                keys = kGather
                                values = vGather
                            }
                            for h in 0..<nh {
                                let g = h / group
                                attentionHeadForward(
                                    att + r0 * c + h * hd, ldo: c, scores, qkv + r0 * w3 + h * hd, ldq: w3,
                                    keys + g * hd, ldk: kv, values + g * hd, ldv: kv,
                                    nq: s.tokens.count, nk: nk, offset: lp + s.history, headDim: hd)
                            }
                            r0 += s.tokens.count
                        }
                    }
                }
            }
        }
        model.normForward(norm, rstd, x, model.p.outputNorm, model.p.outputNormBias, n: b)
        for i in 0..<b { (hidden + slotOf[i] * c).update(from: norm + i * c, count: c) }
    }
}
