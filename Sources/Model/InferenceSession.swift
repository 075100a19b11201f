import Base
import Foundation
import Kernels

/// Inference with a KV cache over one sequence: generation, and scoring many continuations of one shared
/// prompt.
///
/// A single-sequence view of `BatchSession`: the sequence occupies slots 0..<length of its cache, and
/// appended tokens run through the network in chunks of at most 64 tokens. For every cached position the
/// cache keeps the rotated keys, the values and the final normalised hidden state, so `truncate` and
/// `score` need no recomputation. All buffers are allocated once, in `init`.
public final class InferenceSession {
    public let model: LlamaModel
    public let capacity: Int
    public private(set) var length = 0

    private let batch: BatchSession

    /// - Parameter capacity: most tokens the cache can hold.
    public init(model: LlamaModel, capacity: Int) {
        precondition(capacity > 0, "InferenceSession: capacity must be positive")
        self.model = model
        self.capacity = capacity
        batch = BatchSession(model: model, slots: capacity, rows: min(64, capacity), context: capacity)
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
        batch.append([BatchSession.Segment(start: 0, history: length, tokens: tokens)])
        length += tokens.count
        return logSoftmaxRow(length - 1)
    }

    /// Log-probabilities of each token of `continuation` given everything in the cache (which must hold at
    /// least one token); the cache is left as it was.
    public func score(_ continuation: [Int32]) -> [Float] {
        precondition(length > 0, "InferenceSession.score: the cache is empty")
        if continuation.isEmpty { return [] }
        precondition(length + continuation.count - 1 <= capacity, "InferenceSession.score: capacity \(capacity) exceeded")
        if continuation.count > 1 {
            batch.append([BatchSession.Segment(start: 0, history: length, tokens: Array(continuation.dropLast()))])
        }
        return batch.logprobs(at: continuation.enumerated().map { (slot: length - 1 + $0.offset, token: $0.element) })
    }

    /// Log-softmax over the vocabulary at cached position `row`.
    func logSoftmaxRow(_ row: Int) -> [Float] {
        precondition(row >= 0 && row < length, "InferenceSession: position \(row) is not cached")
        return batch.logSoftmax(at: row)
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
