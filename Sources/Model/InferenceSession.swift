import Foundation
import Kernels

/// Inference with a KV cache: generation, and scoring many continuations of one shared prompt.
///
/// The session keeps, for every cached position, the rotated keys, the values and the final normalised
/// hidden state, so `truncate` and `score` need no recomputation. Appended tokens run through the network
/// in chunks of at most `chunk` tokens; all buffers are allocated once, in `init`.
public final class InferenceSession {
    public let model: LlamaModel
    public let capacity: Int
    public private(set) var length = 0

    private let chunk: Int
    private let storage: UnsafeMutableBufferPointer<Float>
    private let kCache, vCache: [UnsafeMutablePointer<Float>]
    private let hidden: UnsafeMutablePointer<Float>
    private let x, norm, q, att, gateUp, ffn, scores, logits, rstd: UnsafeMutablePointer<Float>
    private let ids: UnsafeMutableBufferPointer<Int32>
    private let ropeCos: [Float], ropeSin: [Float]

    /// - Parameter capacity: most tokens the cache can hold.
    public init(model: LlamaModel, capacity: Int) {
        precondition(capacity > 0, "InferenceSession: capacity must be positive")
        self.model = model
        self.capacity = capacity
        let cfg = model.config
        let c = cfg.dim, f = cfg.ffnDim, v = cfg.vocabSize, kv = cfg.nKVHeads * cfg.headDim
        let b = min(64, capacity)
        chunk = b
        let sizes = [
            2 * cfg.nLayers * capacity * kv, capacity * c,  // caches, hidden
            b * c, b * c, b * c, b * c, b * 2 * f, b * f, b * capacity, b * v, b,
        ]
        storage = .allocate(capacity: sizes.reduce(0, +))
        storage.initialize(repeating: 0)
        var offset = 0
        var slots: [UnsafeMutablePointer<Float>] = []
        for s in sizes {
            slots.append(storage.baseAddress! + offset)
            offset += s
        }
        kCache = (0..<cfg.nLayers).map { slots[0] + 2 * $0 * capacity * kv }
        vCache = (0..<cfg.nLayers).map { slots[0] + (2 * $0 + 1) * capacity * kv }
        hidden = slots[1]
        x = slots[2]; norm = slots[3]; q = slots[4]; att = slots[5]
        gateUp = slots[6]; ffn = slots[7]; scores = slots[8]; logits = slots[9]; rstd = slots[10]
        ids = .allocate(capacity: 2 * b)
        ids.initialize(repeating: 0)
        (ropeCos, ropeSin) = ropeTable(positions: capacity, headDim: cfg.headDim, base: cfg.ropeBase)
    }

    deinit {
        storage.deallocate()
        ids.deallocate()
    }

    /// Empties the cache.
    public func reset() { length = 0 }

    /// Forgets every position from `length` on.
    public func truncate(to length: Int) {
        precondition(length >= 0 && length <= self.length, "InferenceSession.truncate: \(length) beyond \(self.length)")
        self.length = length
    }

    /// Appends tokens at the end of the cache; returns the log-softmax over the vocabulary at the LAST token.
    public func append(_ tokens: [Int32]) -> [Float] {
        precondition(!tokens.isEmpty, "InferenceSession.append: no tokens")
        precondition(length + tokens.count <= capacity, "InferenceSession.append: capacity \(capacity) exceeded")
        run(tokens, at: length)
        length += tokens.count
        return logSoftmaxRow(length - 1)
    }

    /// Log-probabilities of each token of `continuation` given everything in the cache (which must hold at
    /// least one token); the cache is left as it was.
    public func score(_ continuation: [Int32]) -> [Float] {
        precondition(length > 0, "InferenceSession.score: the cache is empty")
        if continuation.isEmpty { return [] }
        precondition(length + continuation.count - 1 <= capacity, "InferenceSession.score: capacity \(capacity) exceeded")
        if continuation.count > 1 { run(Array(continuation.dropLast()), at: length) }
        let v = model.config.vocabSize
        var result = [Float](repeating: 0, count: continuation.count)
        var r = 0
        while r < continuation.count {
            let rows = min(chunk, continuation.count - r)
            matmul(logits, hidden + (length - 1 + r) * model.config.dim, model.p.output,
                   m: rows, n: v, k: model.config.dim, transB: true)
            for i in 0..<rows {
                let row = logits + i * v
                result[r + i] = row[Int(continuation[r + i])] - logSumExp(row, count: v)
            }
            r += rows
        }
        return result
    }

    /// Log-softmax over the vocabulary at cached position `row`.
    func logSoftmaxRow(_ row: Int) -> [Float] {
        let v = model.config.vocabSize
        matmul(logits, hidden + row * model.config.dim, model.p.output, m: 1, n: v, k: model.config.dim, transB: true)
        logSoftmax(logits, logits, v: v)
        return Array(UnsafeBufferPointer(start: logits, count: v))
    }

    /// Runs `tokens` through the network at positions start..., writing their keys, values and final hidden
    /// states into the cache (does not change `length`).
    private func run(_ tokens: [Int32], at start: Int) {
        for t in tokens {
            precondition(t >= 0 && Int(t) < model.config.vocabSize, "InferenceSession: token \(t) out of vocabulary")
        }
        var done = 0
        while done < tokens.count {
            let b = min(chunk, tokens.count - done)
            for i in 0..<b {
                ids[i] = tokens[done + i]
                ids[chunk + i] = Int32(start + done + i)
            }
            forwardChunk(b, at: start + done)
            done += b
        }
    }

    private func forwardChunk(_ b: Int, at start: Int) {
        let cfg = model.config
        let c = cfg.dim, f = cfg.ffnDim, hd = cfg.headDim, nh = cfg.nHeads, nkv = cfg.nKVHeads, kv = nkv * hd
        let group = nh / nkv, eps = cfg.normEps, total = start + b
        let tok = ids.baseAddress!, pos = ids.baseAddress! + chunk
        embeddingForward(x, tok, model.p.embedding, n: b, c: c)
        ropeCos.withUnsafeBufferPointer { cosb in
            ropeSin.withUnsafeBufferPointer { sinb in
                for l in 0..<cfg.nLayers {
                    let w = model.pBlocks[l]
                    let kc = kCache[l] + start * kv, vc = vCache[l] + start * kv
                    rmsnormForward(norm, rstd, x, w.attnNorm, n: b, c: c, eps: eps)
                    matmul(q, norm, w.wq, m: b, n: c, k: c, transB: true)
                    matmul(kc, norm, w.wk, m: b, n: kv, k: c, transB: true)
                    matmul(vc, norm, w.wv, m: b, n: kv, k: c, transB: true)
                    ropeForward(q, positions: pos, n: b, heads: nh, headDim: hd,
                                cos: cosb.baseAddress!, sin: sinb.baseAddress!)
                    ropeForward(kc, positions: pos, n: b, heads: nkv, headDim: hd,
                                cos: cosb.baseAddress!, sin: sinb.baseAddress!)
                    for h in 0..<nh {
                        let g = h / group
                        attentionHeadForward(
                            att + h * hd, ldo: c, scores, q + h * hd, ldq: c, kCache[l] + g * hd, ldk: kv,
                            vCache[l] + g * hd, ldv: kv, nq: b, nk: total, offset: start, headDim: hd)
                    }
                    matmul(x, att, w.wo, m: b, n: c, k: c, transB: true, beta: 1)
                    rmsnormForward(norm, rstd, x, w.ffnNorm, n: b, c: c, eps: eps)
                    // gate | up in one sgemm: ffn_gate and ffn_up are adjacent, a (2 ffn, dim) matrix.
                    matmul(gateUp, norm, w.wGate, m: b, n: 2 * f, k: c, transB: true)
                    swigluFusedForward(ffn, gateUp, n: b, f: f)
                    matmul(x, ffn, w.wDown, m: b, n: c, k: f, transB: true, beta: 1)
                }
            }
        }
        rmsnormForward(hidden + start * c, rstd, x, model.p.outputNorm, n: b, c: c, eps: eps)
    }
}

/// Sampling settings for `generate`.
public struct SamplingOptions: Sendable {
    /// Most tokens to generate.
    public var maxTokens: Int
    /// 0 = greedy (argmax); otherwise logits are divided by it before sampling.
    public var temperature: Float
    /// Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches topP (1 = all).
    public var topP: Float
    public var seed: UInt64
    /// Generation stops at any of these tokens (which is not included in the result).
    public var stop: Set<Int32>

    public init(maxTokens: Int = 64, temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0, stop: Set<Int32> = []) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stop = stop
    }
}

/// Appends `prompt` to the session (which may already hold tokens), then samples up to `options.maxTokens`
/// tokens, appending each to the cache. `onToken` sees every generated token and returns false to stop.
/// Stops early at a stop token (not returned) or when the cache is full. Returns the generated tokens.
public func generate(
    session: InferenceSession, prompt: [Int32], options: SamplingOptions, onToken: (Int32) -> Bool
) -> [Int32] {
    var rng = SplitMix64(seed: options.seed)
    var out: [Int32] = []
    guard !prompt.isEmpty || session.length > 0 else { return out }
    var logprobs = prompt.isEmpty ? session.logSoftmaxRow(session.length - 1) : session.append(prompt)
    while out.count < options.maxTokens {
        let next = sample(logprobs, options: options, rng: &rng)
        if options.stop.contains(next) { break }
        out.append(next)
        if !onToken(next) || session.length >= session.capacity { break }
        logprobs = session.append([next])
    }
    return out
}

func sample(_ logprobs: [Float], options: SamplingOptions, rng: inout SplitMix64) -> Int32 {
    if options.temperature <= 0 {
        var best = 0
        for j in 1..<logprobs.count where logprobs[j] > logprobs[best] { best = j }
        return Int32(best)
    }
    // Probabilities at the temperature, in Double for a stable cumulative sum.
    let t = Double(options.temperature)
    let mx = Double(logprobs.max()!)
    var probs = logprobs.map { exp((Double($0) - mx) / t) }
    let total = probs.reduce(0, +)
    for j in probs.indices { probs[j] /= total }
    var order = Array(probs.indices)
    if options.topP < 1 {
        order.sort { probs[$0] != probs[$1] ? probs[$0] > probs[$1] : $0 < $1 }
        var cum = 0.0, keep = 0
        while keep < order.count {
            cum += probs[order[keep]]
            keep += 1
            if cum >= Double(options.topP) { break }
        }
        order = Array(order.prefix(keep))
    }
    let mass = order.reduce(0.0) { $0 + probs[$1] }
    var u = rng.uniform() * mass
    for j in order {
        u -= probs[j]
        if u < 0 { return Int32(j) }
    }
    return Int32(order.last!)
}
