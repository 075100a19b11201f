import Base
import Foundation
import Kernels
import Model
import Probes
import Training

/// `alignscope bench --threads 1,2,...` (issue 40): the training step, an evaluation and generation, and the step's
/// parts (products, attention, elementwise kernels, AdamW), at each thread count, with the speed-up and parallel
/// efficiency against the first count (1 when given). The counts alternate within every round, so their ratios are
/// taken under the same load. With 2 among the counts, the step and the evaluation are also measured at 2 threads with
/// oneDNN's products planned for the thread count (`Products.blocked = false`: the thread-dependent path from before
/// issue 40), what the fixed blocks cost.
public struct ThreadScaling: Codable, Sendable, CustomStringConvertible {
    /// One figure at one thread count (median seconds).
    public struct Point: Codable, Sendable {
        public var threads: Int
        public var seconds: [String: Double]
    }

    public var cpu: String
    public var logicalCPUs: Int
    /// `Threads.available`: the cores this process may use.
    public var availableCores: Int
    public var productISA: String
    public var model: String
    public var repeats: Int
    /// The figures, in the order they are reported.
    public var parts: [String]
    public var points: [Point]
    /// At 2 threads with oneDNN planned for the thread count (nil unless 2 was measured): "train step" and "evaluation".
    public var threadDependentAt2: [String: Double]?

    /// Speed-up of `part` at `point` against the first point, and its parallel efficiency (speed-up over the threads'
    /// ratio).
    public func scaling(_ part: String, at point: Point) -> (speedup: Double, efficiency: Double)? {
        guard let base = points.first, let t0 = base.seconds[part], let t = point.seconds[part], t > 0 else { return nil }
        let speedup = t0 / t
        return (speedup, speedup / (Double(point.threads) / Double(base.threads)))
    }

    public var description: String {
        var lines = ["machine: \(cpu), \(logicalCPUs) logical CPUs, \(availableCores) available to this process; products: oneDNN at \(productISA)",
                     "model: \(model); median of \(repeats), thread counts alternating in every round",
                     "speed-up and efficiency against \(points.first.map { "\($0.threads) thread\($0.threads == 1 ? "" : "s")" } ?? "-")"]
        let header = ["part"] + points.map { "\($0.threads) thr (s)" } + points.dropFirst().flatMap { ["x\($0.threads)", "eff"] }
        var rows = [header]
        for part in parts {
            var row = [part] + points.map { p in p.seconds[part].map { String(format: "%.4f", $0) } ?? "-" }
            for p in points.dropFirst() {
                if let s = scaling(part, at: p) {
                    row += [String(format: "%.2f", s.speedup), String(format: "%.0f%%", 100 * s.efficiency)]
                } else {
                    row += ["-", "-"]
                }
            }
            rows.append(row)
        }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max()! }
        for row in rows {
            lines.append(row.enumerated().map { i, cell in
                i == 0 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  "))
        }
        if let dependent = threadDependentAt2, let two = points.first(where: { $0.threads == 2 }) {
            for part in ["train step", "evaluation"] {
                if let a = two.seconds[part], let b = dependent[part] {
                    lines.append(String(format: "%@ at 2 threads: fixed blocks %.4f s, oneDNN planned for 2 threads %.4f s: %+.1f%%", part, a, b, 100 * (a / b - 1)))
                }
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Measures `ThreadScaling` for `counts` (each in 1...256). Leaves `Threads.count` and `Products.blocked` as they were.
public func runThreadScaling(_ benchModel: BenchModel, counts: [Int], repeats: Int,
                             progress report: (ProgressEvent) -> Void) throws -> ThreadScaling {
    guard repeats >= 1 else { throw BenchError.invalidRepeats(repeats) }
    let (model, name) = try benchModel.instance(checkpointActivations: false)
    let savedThreads = Threads.count, savedBlocked = Products.blocked, savedPrecision = model.precision
    defer { Threads.count = savedThreads; Products.blocked = savedBlocked; model.precision = savedPrecision }
    model.precision = .fp32
    let cfg = model.config
    let engine = EngineSetting.available[0]

    // the step: the bench's training batch, with AdamW
    let work = trainingWork(vocab: cfg.vocabSize), train = try benchTrainSettings()
    let optimizer = benchOptimizer(model, train)
    // an evaluation: the probe-set workload, batched as `ProbeEvaluator` scores it
    let items = probeSetItems(vocab: cfg.vocabSize)
    let w = ProbeSetWorkload.self
    let batch = BatchSession(model: model, slots: 4096, context: w.promptTokens + max(w.responseTokens.max()!, w.generatedTokens) + 1)
    // generation: greedy decoding of `generatedTokens` tokens
    let prompt = Workload.tokens(Workload.promptTokens, salt: 2, vocab: cfg.vocabSize)
    let session = InferenceSession(model: model, capacity: Workload.promptTokens + Workload.generatedTokens)
    let parts = StepParts(config: cfg, tokens: BenchModel.tokens, sequenceLength: Workload.trainLength)
    defer { parts.deallocate() }

    let names = ["train step", "  forward", "  backward", "  AdamW (and clipping)", "evaluation", "generation",
                 "products", "attention", "elementwise"]
    var samples: [Int: [String: [Double]]] = [:]
    var dependent: [String: [Double]] = [:]
    for r in 0...repeats {
        for t in counts {
            for blocked in (t == 2 ? [true, false] : [true]) {
                Threads.count = t
                Products.blocked = blocked
                let (t0, t1, t2, t3) = timedStep(model, engine: engine, work: work, optimizer: optimizer, train: train)
                let e0 = now()
                _ = engine.with { batch.scoreResponses(items) }
                let evaluation = now() - e0
                guard blocked else {
                    if r > 0 {
                        dependent["train step", default: []].append(t3 - t0)
                        dependent["evaluation", default: []].append(evaluation)
                    }
                    continue
                }
                let (products, attention, elementwise) = engine.with { parts.time() }
                // generation last: its one-row products run on OpenBLAS's own threads, which spin for up to about 0.1 s
                // after each call (`matmul`) and would take a core from whatever is measured next
                let g0 = now()
                session.reset()
                _ = engine.with {
                    generate(session: session, prompt: prompt, options: SamplingOptions(maxTokens: Workload.generatedTokens)) { _ in true }
                }
                let generation = now() - g0
                if r > 0 {  // the first round is a warm-up (page faults, primitive creation)
                    let figures = [t3 - t0, t1 - t0, t2 - t1, t3 - t2, evaluation, generation, products, attention, elementwise]
                    for (name, value) in zip(names, figures) { samples[t, default: [:]][name, default: []].append(value) }
                    report(.measured(what: String(format: "threads %d, round %d/%d: step %.3f s, evaluation %.3f s, generation %.3f s", t, r, repeats, t3 - t0, evaluation, generation)))
                }
            }
        }
    }
    Products.releaseBuffers()
    return ThreadScaling(
        cpu: cpuName(), logicalCPUs: ProcessInfo.processInfo.activeProcessorCount, availableCores: Threads.available,
        productISA: Products.isaName, model: name, repeats: repeats, parts: names,
        points: counts.map { t in .init(threads: t, seconds: samples[t, default: [:]].mapValues(median)) },
        threadDependentAt2: counts.contains(2) ? dependent.mapValues(median) : nil)
}

/// The step's parts taken alone at the bench's shapes (4 x 256 tokens), each once per call: the products of one block
/// (q, k, v, o, gate/up, down: forward, input gradient and weight gradient), attention forward and backward over every
/// head, and the block's elementwise kernels (both RMSNorms and SwiGLU, forward and backward). Random data.
final class StepParts {
    let n: Int, dim: Int, ffn: Int, kvDim: Int, heads: Int, kvHeads: Int, headDim: Int
    let starts: [Int]
    let buffers: [UnsafeMutablePointer<Float>]
    let x, y, w, dx, dw, q, k, v, att, dq, dk, dv, gateUp, h, dGateUp, rstd, normW, dNormW: UnsafeMutablePointer<Float>

    init(config: LlamaConfig, tokens: Int, sequenceLength: Int) {
        n = tokens; dim = config.dim; ffn = config.ffnDim; heads = config.nHeads; kvHeads = config.nKVHeads
        headDim = config.dim / config.nHeads; kvDim = kvHeads * headDim
        starts = Array(stride(from: 0, to: tokens, by: sequenceLength))
        let widest = max(dim, 2 * ffn)
        var made: [UnsafeMutablePointer<Float>] = []
        var seed: UInt64 = 7
        func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
            for i in 0..<count {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                p[i] = Float(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 10_000
            }
            made.append(p)
            return p
        }
        x = buffer(n * widest); y = buffer(n * widest); w = buffer(widest * widest); dx = buffer(n * widest); dw = buffer(widest * widest)
        q = buffer(n * dim); k = buffer(n * kvDim); v = buffer(n * kvDim); att = buffer(n * dim)
        dq = buffer(n * dim); dk = buffer(n * kvDim); dv = buffer(n * kvDim)
        gateUp = buffer(n * 2 * ffn); h = buffer(n * ffn); dGateUp = buffer(n * 2 * ffn)
        rstd = buffer(n); normW = buffer(dim); dNormW = buffer(dim)
        buffers = made
    }

    func deallocate() { for b in buffers { b.deallocate() } }

    /// Seconds of (products, attention, elementwise).
    func time() -> (Double, Double, Double) {
        let t0 = now()
        // (out, in) of each of a block's projections: q, k, v, o, gate/up (one product), down
        for (out, inp) in [(dim, dim), (kvDim, dim), (kvDim, dim), (dim, dim), (2 * ffn, dim), (dim, ffn)] {
            matmul(y, x, w, m: n, n: out, k: inp, transB: true)               // forward: x W^T
            matmul(dx, y, w, m: n, n: inp, k: out)                            // input gradient: dY W
            matmul(dw, y, x, m: out, n: inp, k: n, transA: true, beta: 1)     // weight gradient: dY^T X
        }
        let t1 = now()
        attentionForward(att, nil, q, k, v, sequenceStarts: starts, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim)
        attentionBackward(dq, dk, dv, att, nil, q, k, v, sequenceStarts: starts, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim)
        let t2 = now()
        for _ in 0..<2 {  // the attention's and the FFN's norm
            rmsnormForward(y, rstd, x, normW, n: n, c: dim, eps: 1e-5)
            rmsnormBackward(dx, dNormW, y, x, normW, rstd, n: n, c: dim)
        }
        swigluFusedForward(h, gateUp, n: n, f: ffn)
        swigluFusedBackward(dGateUp, h, gateUp, n: n, f: ffn)
        return (t1 - t0, t2 - t1, now() - t2)
    }
}
