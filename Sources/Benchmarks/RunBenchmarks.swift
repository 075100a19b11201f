import Base
import Foundation
import GGUF
import HFModels
import Kernels
import Model
import Training

/// Bad input to `runBenchmarks`.
public enum BenchError: Error, CustomStringConvertible, Equatable {
    case invalidRepeats(Int)

    public var description: String {
        switch self {
        case .invalidRepeats(let n): return "bench: --repeats must be at least 1 (got \(n))"
        }
    }
}

/// The workload's fixed sizes (the PyTorch reference `benchmarks/torch_reference.py` uses the same ones).
enum Workload {
    static let trainSequences = 4
    static let trainLength = 256
    static let promptTokens = 64
    static let responses = 6
    static let responseTokens = 48
    static let generatedTokens = 64

    /// Deterministic token ids: id(i) = (i * 2654435761 + salt) mod 2^64 mod vocab, easy to reproduce in Python.
    static func tokens(_ count: Int, salt: UInt64, vocab: Int) -> [Int32] {
        (0..<count).map { Int32(truncatingIfNeeded: (UInt64($0) &* 2_654_435_761 &+ salt) % UInt64(vocab)) }
    }
}

/// The model a benchmark runs.
public enum BenchModel: @unchecked Sendable {
    /// The "tiny" preset with random weights.
    case tiny
    /// A model loaded by the caller (the one loader, `Experiments.ModelLoader`), for `BenchModel.tokens` tokens at once in
    /// sequences of at most `BenchModel.sequenceLength`, and its name for the report.
    case loaded(LlamaModel, name: String)
    /// A Hugging Face directory with only a config.json: benchmarked at its shapes with random weights.
    case configShapes(String)

    /// The tokens the bench's training step holds at once, and its sequences' length (what a loaded model is sized for).
    public static var tokens: Int { Workload.trainSequences * Workload.trainLength }
    public static var sequenceLength: Int { Workload.trainLength }
}

/// Measures, in this order: sgemm GFLOP/s (square and model-shaped sizes), a training step of the model
/// (4 sequences x 256 tokens, forward + backward + AdamW), scoring of 6 responses of 48 tokens to a
/// 64-token prompt through `InferenceSession` (shared prompt cache, and each pair separately), greedy
/// generation of 64 tokens, a probe set's evaluation (8 prompts x 6 responses scored separately, per probe
/// and batched; greedy one prompt at a time and in lock step), and the process's peak resident memory.
///
/// - Parameters:
///   - model: a GGUF file, a Hugging Face directory (with only a config.json: its shapes with random weights),
///     or the "tiny" preset with random weights. The caller decides which a path is (`ModelPathKind`).
///   - checkpointActivations: train with `LlamaModel.checkpointActivations` (compare two runs of the bench).
///   - repeats: measurements per figure (after one warm-up); medians are reported.
///   - progress: receives `.measured` with one line per finished measurement.
/// Uses `Threads.count` threads (default: every core this process may use). Use a release build: debug figures mean nothing.
public func runBenchmarks(_ benchModel: BenchModel, repeats: Int, checkpointActivations: Bool = false,
                          progress report: (ProgressEvent) -> Void) throws -> BenchReport {
    let progress: (String) -> Void = { report(.measured(what: $0)) }
    guard repeats >= 1 else { throw BenchError.invalidRepeats(repeats) }
    let loadBefore = loadAverage()

    let (model, name) = try benchModel.instance(checkpointActivations: checkpointActivations)
    let label = checkpointActivations ? name + ", checkpointed activations" : name
    let cfg = model.config
    let shape = BenchReport.ModelShape(
        name: label, vocabSize: cfg.vocabSize, dim: cfg.dim, nLayers: cfg.nLayers, nHeads: cfg.nHeads,
        nKVHeads: cfg.nKVHeads, ffnDim: cfg.ffnDim, tiedEmbedding: cfg.tiedEmbedding, parameterCount: model.parameterCount,
        ffnMatrices: cfg.block == .llama ? 3 : 2)

    let sgemm = measureSgemm(shape: shape, tokens: BenchModel.tokens, repeats: repeats, progress: progress)
    let squares = sgemm.filter { $0.label.hasPrefix("square") }
    let reference = squares.map(\.gflops).max() ?? 0
    let referenceBF16 = Products.bf16Supported ? squares.compactMap(\.bf16Gflops).max() : nil
    let engines = EngineSetting.available
    Products.releaseBuffers()  // the product shapes' scratchpads are not the training step's
    // The LoRA step (issue 39) beside the full one: first one LoRA step per engine alone, for its peak memory (the full
    // step's gradients and moments are not touched yet: gradients are calloc'd zero pages), then both alternating in
    // every round, so that their ratio is taken under the same load.
    let loraSettings = LoRASettings(rank: 16, alpha: 32, targets: LoRATarget.available(for: cfg.block), seed: 1)
    resetPeakResident()
    let loraTrainable = try oneStepEach(model, engines: engines, lora: loraSettings)
    let loraPeak = peakResidentBytes()
    Products.releaseBuffers()
    let measured = try measureTraining(model, shape: shape, reference: reference, engines: engines, repeats: repeats, progress: progress,
                                       configurations: [("train step", nil), ("LoRA train step", loraSettings),
                                                        ("LoRA floor step", LoRASettings(rank: 1, alpha: 2, targets: [.o], seed: 1))])
    let trainings = measured[0], loraTrainings = measured[1], floor = measured[2][0]
    let lora = BenchReport.LoRABench(
        rank: loraSettings.rank, targets: loraSettings.targets.map(\.rawValue), trainableParameters: loraTrainable,
        stepSeconds: loraTrainings[0].stepSeconds, forwardSeconds: loraTrainings[0].forwardSeconds,
        backwardSeconds: loraTrainings[0].backwardSeconds, optimizerSeconds: loraTrainings[0].optimizerSeconds,
        engineStepSeconds: loraTrainings.map(\.stepSeconds), peakResidentBytes: loraPeak,
        floorForwardSeconds: floor.forwardSeconds, floorBackwardSeconds: floor.backwardSeconds)
    resetPeakResident()
    _ = try oneStepEach(model, engines: engines, lora: nil)
    let trainingPeak = peakResidentBytes()
    let engineScoring = measureEngineScoring(model, engines: engines, repeats: repeats, progress: progress)
    let scoring = measureScoring(model, repeats: repeats, progress: progress)
    let generation = measureGeneration(model, repeats: repeats, progress: progress)
    let sampling = measureSampling(model, repeats: repeats, progress: progress)
    let probeSet = measureProbeSet(model, repeats: repeats, progress: progress)
    let policyStep = try measurePolicyStep(model, repeats: repeats, progress: progress)
    let attribution = try measureAttribution(model, repeats: repeats, progress: progress)

    return BenchReport(
        machine: .init(cpu: cpuName(), logicalCPUs: ProcessInfo.processInfo.activeProcessorCount,
                       threads: Threads.count, loadBefore: loadBefore, loadAfter: loadAverage(), repeats: repeats),
        productISA: Products.isaName, openBLASKernels: Products.openBLASKernels, sgemm: sgemm, referenceGflops: reference, referenceBF16Gflops: referenceBF16,
        model: shape, training: trainings[0],
        engines: zip(engines, zip(trainings, engineScoring)).map {
            .init(label: $0.label, training: $1.0, probeSetSeconds: $1.1.seconds, probeSetMaxLogprobDifference: $1.1.maxDifference)
        },
        scoring: scoring,
        generation: generation, sampling: sampling, probeSet: probeSet, policyStep: policyStep, attribution: attribution, lora: lora,
        peakResidentBytes: peakResidentBytes(),
        trainingPeakResidentBytes: trainingPeak)
}

extension BenchModel {
    /// The model to measure and its name for the report (random weights unless loaded).
    func instance(checkpointActivations: Bool) throws -> (LlamaModel, String) {
        let n = Workload.trainSequences * Workload.trainLength
        switch self {
        case .configShapes(let path):
            let model = LlamaModel(config: try HFModelDirectory.config(directory: path), maxTokens: n,
                                   maxSequenceLength: Workload.trainLength, checkpointActivations: checkpointActivations)
            model.initializeRandom(seed: 0)
            return (model, (path as NSString).lastPathComponent + " (shapes of its config.json, random weights)")
        case let .loaded(loaded, modelName):
            precondition(loaded.maxTokens >= n, "runBenchmarks: load the model for BenchModel.tokens tokens")
            return (loaded, modelName)
        case .tiny:
            let model = LlamaModel(config: .tiny(), maxTokens: n, maxSequenceLength: Workload.trainLength, checkpointActivations: checkpointActivations)
            model.initializeRandom(seed: 0)
            return (model, "tiny preset (random weights)")
        }
    }
}

// MARK: Engines

/// One way of running the large products: library and input type.
struct EngineSetting {
    let label: String
    let backend: Products.Backend
    let precision: Precision

    /// The default first (the baseline of every ratio), then OpenBLAS, then bf16 where the CPU has it.
    static var available: [EngineSetting] {
        [.init(label: "oneDNN fp32", backend: .onednn, precision: .fp32),
         .init(label: "OpenBLAS fp32", backend: .openblas, precision: .fp32)]
            + (Products.bf16Supported ? [.init(label: "oneDNN bf16", backend: .onednn, precision: .bf16)] : [])
    }

    /// Runs `body` with this engine, then restores the previous one.
    func with<T>(_ body: () -> T) -> T {
        let saved = Products.backend
        Products.backend = backend
        defer { Products.backend = saved }
        return body()
    }
}

// MARK: sgemm

func measureSgemm(shape: BenchReport.ModelShape, tokens n: Int, repeats: Int,
                          progress: (String) -> Void) -> [BenchReport.Sgemm] {
    let c = shape.dim, f = shape.ffnDim, kv = shape.nKVHeads * shape.headDim, v = shape.vocabSize
    let m = n - Workload.trainSequences  // targeted rows of the training batch
    // (label, m, n, k, transA, transB): the shapes one training step runs, as `LlamaModel` calls them.
    let shapes: [(String, Int, Int, Int, Bool, Bool)] = [
        ("square 512", 512, 512, 512, false, false),
        ("square 1024", 1024, 1024, 1024, false, false),
        ("square 2048", 2048, 2048, 2048, false, false),
        ("x Wqᵀ (q, o)", n, c, c, false, true),
        ("x Wkᵀ (k, v)", n, kv, c, false, true),
        ("x Wgateᵀ (gate, up)", n, f, c, false, true),
        ("h Wdownᵀ", n, c, f, false, true),
        ("dY W (dx of gate/up)", n, c, f, false, false),
        ("dYᵀ X (dW gate/up)", f, c, n, true, false),
        ("head x Eᵀ", m, v, c, false, true),
        ("head dZᵀ X (dE)", v, c, m, true, false),
        ("attention Q Kᵀ", Workload.trainLength, Workload.trainLength, shape.headDim, false, true),
    ]
    var out: [BenchReport.Sgemm] = []
    var rng = UInt64(1)
    for (label, mm, nn, kk, ta, tb) in shapes {
        let a = UnsafeMutableBufferPointer<Float>.allocate(capacity: mm * kk)
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: kk * nn)
        let cc = UnsafeMutableBufferPointer<Float>.allocate(capacity: mm * nn)
        defer { a.deallocate(); b.deallocate(); cc.deallocate() }
        for buf in [a, b] {
            for i in 0..<buf.count {
                rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                buf[i] = Float(Int64(bitPattern: rng >> 40) - (1 << 23)) / Float(1 << 23)
            }
        }
        cc.initialize(repeating: 0)
        let flops = 2 * Double(mm) * Double(nn) * Double(kk)
        let engines = EngineSetting.available
        let calls = engines.map { e in
            {
                e.with {
                    matmul(cc.baseAddress!, a.baseAddress!, b.baseAddress!, m: mm, n: nn, k: kk, transA: ta, transB: tb,
                           precision: e.precision)
                }
            }
        }
        // Warm-up; the default engine's first call creates its primitive, timed here.
        let first = now()
        calls[0]()
        let firstCall = now() - first
        for call in calls.dropFirst() { call() }
        // Each measurement repeats the call for at least 0.1 s so small shapes are timed reliably; the
        // engines alternate within each repeat.
        var rates = [[Double]](repeating: [], count: engines.count)
        for _ in 0..<repeats {
            for (i, call) in calls.enumerated() {
                var count = 0
                let start = now()
                repeat {
                    call()
                    count += 1
                } while now() - start < 0.1
                rates[i].append(flops * Double(count) / (now() - start) / 1e9)
            }
        }
        let g = rates.map(median)
        let bf16 = engines.firstIndex { $0.precision == .bf16 }.map { g[$0] }
        progress("products \(label) \(mm)x\(nn)x\(kk): oneDNN \(String(format: "%.1f", g[0])), OpenBLAS \(String(format: "%.1f", g[1]))"
                 + (bf16.map { ", bf16 \(String(format: "%.1f", $0))" } ?? "") + " GFLOP/s")
        out.append(.init(label: label, m: mm, n: nn, k: kk, transA: ta, transB: tb, gflops: g[0], openblasGflops: g[1], bf16Gflops: bf16,
                         creationSeconds: max(0, firstCall - flops / (g[0] * 1e9))))
    }
    return out
}

// MARK: Training

/// The training batch: 4 sequences of 256 tokens, every position but the last targets the next token.
func trainingBatch(vocab: Int) -> TokenBatch {
    let s = Workload.trainSequences, t = Workload.trainLength
    let tokens = Workload.tokens(s * t, salt: 1, vocab: vocab)
    var targets = [Int32](repeating: -1, count: s * t)
    for q in 0..<s {
        for i in 0..<(t - 1) { targets[q * t + i] = tokens[q * t + i + 1] }
    }
    return TokenBatch(tokens: tokens, targets: targets, sequenceStarts: (0..<s).map { $0 * t })
}

/// The bench's training batch and the gradient of its mean negative log-likelihood over the targeted positions.
func trainingWork(vocab: Int) -> (batch: TokenBatch, dLogprobs: [Float], targets: Int) {
    let batch = trainingBatch(vocab: vocab)
    let targets = batch.targets.filter { $0 >= 0 }.count
    var dlp = [Float](repeating: 0, count: batch.count)
    for t in 0..<batch.count where batch.targets[t] >= 0 { dlp[t] = -1 / Float(targets) }
    return (batch, dlp, targets)
}

/// The production update (`Trainer.update`: clipping, the schedule's rate, AdamW) with a spec's defaults.
func benchTrainSettings() throws -> TrainSettings {
    try JSONDecoder().decode(TrainSettings.self, from: Data(#"{"steps": 1000, "batch_size": 4, "lr": 1e-5, "warmup": 0}"#.utf8))
}

/// AdamW over what `model` trains now (every weight, or its adapters), as `train` configures it.
func benchOptimizer(_ model: LlamaModel, _ train: TrainSettings) -> AdamW {
    AdamW(parameterCount: model.trainableCount, config: AdamWConfig(beta1: train.beta1, beta2: train.beta2,
                                                                    eps: 1e-8, weightDecay: train.weightDecay))
}

/// One training step of the bench's batch with `engine`: the times at its start, after forward, after backward and
/// after the update.
func timedStep(_ model: LlamaModel, engine: EngineSetting,
                       work: (batch: TokenBatch, dLogprobs: [Float], targets: Int),
                       optimizer: AdamW, train: TrainSettings) -> (Double, Double, Double, Double) {
    model.precision = engine.precision
    return engine.with {
        let t0 = now()
        model.zeroGradients()
        _ = model.forward(work.batch, training: true)
        let t1 = now()
        work.dLogprobs.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
        let t2 = now()
        _ = Trainer.update(model: model, optimizer: optimizer, train: train, step: 1)
        return (t0, t1, t2, now())
    }
}

/// One training step with each engine, with `lora` adapters attached for it (detached after) or every weight
/// training; returns the parameters trained. What the peak memory of a kind of step is read over.
private func oneStepEach(_ model: LlamaModel, engines: [EngineSetting], lora: LoRASettings?) throws -> Int {
    let work = trainingWork(vocab: model.config.vocabSize), train = try benchTrainSettings()
    if let lora { model.attachLoRA(lora) }
    defer { if lora != nil { model.detachLoRA() } }
    let optimizer = benchOptimizer(model, train)
    let savedPrecision = model.precision
    defer { model.precision = savedPrecision }
    for engine in engines { _ = timedStep(model, engine: engine, work: work, optimizer: optimizer, train: train) }
    return model.trainableCount
}

/// The training step of each configuration (nil: every weight trains; else LoRA adapters with those settings,
/// attached for its steps) with each engine, alternating within every round so that the ratios between them are taken
/// under the same load; per configuration, per engine.
func measureTraining(_ model: LlamaModel, shape: BenchReport.ModelShape, reference: Double, engines: [EngineSetting],
                     repeats: Int, progress: (String) -> Void,
                     configurations: [(label: String, lora: LoRASettings?)]) throws -> [[BenchReport.Training]] {
    let work = trainingWork(vocab: model.config.vocabSize), targets = work.targets
    let train = try benchTrainSettings()
    // each configuration's optimizer, made at its first step (the adapters' moments are their own)
    var optimizers = [AdamW?](repeating: nil, count: configurations.count)
    let flops = FlopCount.trainingStep(
        shape, sequenceLengths: Array(repeating: Workload.trainLength, count: Workload.trainSequences), targets: targets)
    // Before each step, 0.2 s of 1024^3 fp32 products with the default engine: the machine is shared, so
    // MFU is the median of per-step ratios taken under the same load, not a ratio of two medians taken
    // minutes apart.
    let probe = SgemmProbe(size: 1024)
    let cells = configurations.count * engines.count
    var times = [[(Double, Double, Double)]](repeating: [], count: cells)
    var ratios = [[Double]](repeating: [], count: cells), probes = ratios
    let savedPrecision = model.precision
    defer { model.precision = savedPrecision }
    for r in 0...repeats {
        for (i, engine) in engines.enumerated() {
            for (k, configuration) in configurations.enumerated() {
                if let lora = configuration.lora { model.attachLoRA(lora) }
                defer { if configuration.lora != nil { model.detachLoRA() } }
                // adapters are made anew at each attach, so their moments are too
                if configuration.lora != nil || optimizers[k] == nil { optimizers[k] = benchOptimizer(model, train) }
                let sgemmNow = probe.gflops(seconds: 0.2)
                let (t0, t1, t2, t3) = timedStep(model, engine: engine, work: work, optimizer: optimizers[k]!, train: train)
                let cell = k * engines.count + i
                if r > 0 {  // the first round is a warm-up (page faults, primitive creation)
                    times[cell].append((t1 - t0, t2 - t1, t3 - t2))
                    probes[cell].append(sgemmNow)
                    ratios[cell].append(flops / (t3 - t0) / 1e9 / sgemmNow)
                    progress("\(configuration.label) \(r)/\(repeats) \(engine.label): \(String(format: "%.3f", t3 - t0)) s")
                }
            }
        }
    }
    return configurations.indices.map { k in
        engines.indices.map { i in
            let cell = k * engines.count + i
            let step = median(times[cell].map { $0.0 + $0.1 + $0.2 })
            let achieved = flops / step / 1e9
            return .init(
                sequences: Workload.trainSequences, sequenceLength: Workload.trainLength, targets: targets,
                stepSeconds: step, forwardSeconds: median(times[cell].map(\.0)), backwardSeconds: median(times[cell].map(\.1)),
                optimizerSeconds: median(times[cell].map(\.2)), tokensPerSecond: Double(work.batch.count) / step,
                flopsPerStep: flops, achievedGflops: achieved, sgemmGflopsDuringSteps: median(probes[cell]), mfu: median(ratios[cell]),
                mfuAgainstReference: reference > 0 ? achieved / reference : 0)
        }
    }
}

/// The probe set's batched scoring with each engine (alternating), and how far each engine's
/// log-probabilities land from the first's.
func measureEngineScoring(_ model: LlamaModel, engines: [EngineSetting], repeats: Int,
                          progress: (String) -> Void) -> [(seconds: Double, maxDifference: Double)] {
    let items = probeSetItems(vocab: model.config.vocabSize)
    let w = ProbeSetWorkload.self
    let batch = BatchSession(model: model, slots: 4096, context: w.promptTokens + w.responseTokens.max()! + 1)
    var results = [[Float]](repeating: [], count: engines.count)
    var times = [[Double]](repeating: [], count: engines.count)
    for r in 0...repeats {
        for (i, engine) in engines.enumerated() {
            batch.precision = engine.precision
            let start = now()
            let scored = engine.with { batch.scoreResponses(items) }
            let t = now() - start
            if r == 0 { results[i] = scored.flatMap { $0.map { $0.reduce(0, +) } } } else { times[i].append(t) }
        }
    }
    return engines.indices.map { i in
        let diff = zip(results[i], results[0]).map { Double(abs($0 - $1)) }.max() ?? 0
        progress("probe set batched \(engines[i].label): \(String(format: "%.3f", median(times[i]))) s, max |Δ log p| \(String(format: "%.2g", diff))")
        return (median(times[i]), diff)
    }
}

/// A square sgemm kept ready for short FLOP/s measurements.
final class SgemmProbe {
    let size: Int
    private let a, b, c: UnsafeMutableBufferPointer<Float>

    init(size: Int) {
        self.size = size
        a = .allocate(capacity: size * size)
        b = .allocate(capacity: size * size)
        c = .allocate(capacity: size * size)
        for i in 0..<(size * size) {
            a[i] = Float(i % 97) / 97 - 0.5
            b[i] = Float(i % 89) / 89 - 0.5
        }
        c.initialize(repeating: 0)
    }

    deinit {
        a.deallocate()
        b.deallocate()
        c.deallocate()
    }

    /// GFLOP/s of back-to-back calls for at least `seconds`.
    func gflops(seconds: Double) -> Double {
        var calls = 0
        let start = now()
        repeat {
            matmul(c.baseAddress!, a.baseAddress!, b.baseAddress!, m: size, n: size, k: size)
            calls += 1
        } while now() - start < seconds
        return 2 * Double(size * size * size) * Double(calls) / (now() - start) / 1e9
    }
}

// MARK: Scoring and generation

func measureScoring(_ model: LlamaModel, repeats: Int, progress: (String) -> Void) -> BenchReport.Scoring {
    let vocab = model.config.vocabSize
    let prompt = Workload.tokens(Workload.promptTokens, salt: 2, vocab: vocab)
    let responses = (0..<Workload.responses).map {
        Workload.tokens(Workload.responseTokens, salt: 3 + UInt64($0), vocab: vocab)
    }
    let session = InferenceSession(model: model, capacity: Workload.promptTokens + Workload.responseTokens)
    func shared() {
        session.reset()
        _ = session.append(prompt)
        for r in responses { _ = session.score(r) }
    }
    func separate() {
        for r in responses {
            session.reset()
            _ = session.append(prompt)
            _ = session.score(r)
        }
    }
    let packedBatch = TokenBatch.scoring(responses.map { (context: prompt, continuation: $0) })
    func packed() { _ = model.forward(packedBatch, training: false) }
    let sharedTime = timeMedian(repeats, shared)
    let separateTime = timeMedian(repeats, separate)
    let packedTime = timeMedian(repeats, packed)
    let total = Workload.promptTokens + Workload.responses * Workload.responseTokens
    progress("scoring: shared \(String(format: "%.3f", sharedTime)) s, separate \(String(format: "%.3f", separateTime)) s, packed \(String(format: "%.3f", packedTime)) s")
    return .init(
        promptTokens: Workload.promptTokens, responses: Workload.responses, responseTokens: Workload.responseTokens,
        sharedSeconds: sharedTime, sharedTokensPerSecond: Double(total) / sharedTime, separateSeconds: separateTime,
        sharingSpeedup: separateTime / sharedTime, packedSeconds: packedTime)
}

func measureGeneration(_ model: LlamaModel, repeats: Int, progress: (String) -> Void) -> BenchReport.Generation {
    let prompt = Workload.tokens(Workload.promptTokens, salt: 2, vocab: model.config.vocabSize)
    let session = InferenceSession(model: model, capacity: Workload.promptTokens + Workload.generatedTokens)
    var produced = 0
    let time = timeMedian(repeats) {
        session.reset()
        // No stop tokens: exactly `generatedTokens` tokens, like max_new_tokens = min_new_tokens in PyTorch.
        produced = generate(session: session, prompt: prompt, options: SamplingOptions(maxTokens: Workload.generatedTokens)) { _ in true }.count
    }
    progress("generation: \(produced) tokens in \(String(format: "%.3f", time)) s")
    return .init(promptTokens: Workload.promptTokens, generatedTokens: produced, seconds: time,
                 tokensPerSecond: Double(produced) / time)
}

/// 8 prompts x 4 samples of 32 tokens (temperature 1, top-p 0.9): lock step against one sample at a time.
func measureSampling(_ model: LlamaModel, repeats: Int, progress: (String) -> Void) -> BenchReport.Sampling {
    let prompts = (0..<8).map { Workload.tokens(32, salt: 10 + UInt64($0), vocab: model.config.vocabSize) }
    let n = 4, maxTokens = 32
    let options = SamplingOptions(maxTokens: maxTokens, temperature: 1, topP: 0.9, seed: 1)
    let session = BatchSession(model: model, slots: prompts.count * (32 + n * maxTokens), context: 32 + maxTokens)
    var produced = 0
    let batched = timeMedian(repeats) {
        produced = session.sample(prompts: prompts, count: n, options: options).reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
    }
    var single = 0
    let oneAtATime = timeMedian(repeats) {
        single = 0
        for (i, prompt) in prompts.enumerated() {
            for j in 0..<n {
                var o = options
                o.seed = BatchSession.sampleSeed(options.seed, prompt: i, sample: j)
                single += session.sample(prompts: [prompt], count: 1, options: o)[0][0].count
            }
        }
    }
    precondition(single == produced, "measureSampling: \(single) tokens one at a time, \(produced) in lock step")
    progress("sampling: \(produced) tokens in lock step \(String(format: "%.3f", batched)) s, one at a time \(String(format: "%.3f", oneAtATime)) s")
    return .init(prompts: prompts.count, samplesPerPrompt: n, promptTokens: 32, maxTokens: maxTokens, sampledTokens: produced,
                 batchedSeconds: batched, oneAtATimeSeconds: oneAtATime, batchedTokensPerSecond: Double(produced) / batched,
                 oneAtATimeTokensPerSecond: Double(produced) / oneAtATime)
}

/// One online (ppo) step as `Trainer.ppoStep` takes it: 4 prompts of 32 tokens x 4 samples of up to 32 tokens
/// (temperature 1, top-p 0.9; the length rule as reward, so no second model is loaded), the reference's scoring,
/// then one update over the 16 samples. Medians of the step's own split (`time/sampling`, `time/scoring`,
/// `time/update`). Beside it, the step's sampling pass without its trace (`BatchSession.sample`: what reading
/// each token's log-probability and entropy from the sampling pass costs). Run last: the updates move the
/// weights, by a learning rate of 1e-30 (below any weight's last bit).
func measurePolicyStep(_ model: LlamaModel, repeats: Int, progress: (String) -> Void) throws -> BenchReport.PolicyStep {
    let prompts = (0..<4).map { Workload.tokens(32, salt: 30 + UInt64($0), vocab: model.config.vocabSize) }
    let settings = PolicyOptimization(reward: .length, samplesPerPrompt: 4, temperature: 1, topP: 0.9, maxTokens: 32)
    let train = try JSONDecoder().decode(TrainSettings.self, from: Data(#"{"steps": 1000, "batch_size": 4, "lr": 1e-30, "warmup": 0, "weight_decay": 0}"#.utf8))
    let trainer = Trainer(model: model, train: train, objective: .ppo(settings), seed: 1, data: .prompts(prompts))
    trainer.rollout = PolicyRollout(reference: model.copy(maxTokens: 64), stop: [], ids: Array(prompts.indices)) { _, responses in
        responses.map { $0.map { Double($0.count) } }
    }
    var parts: [[String: Double]] = []
    var step = 0
    _ = timeMedian(repeats) {
        step += 1
        parts.append(trainer.step(step).metrics)
    }
    func part(_ name: String) -> Double { median(parts.suffix(repeats).map { $0[name]! }) }
    let session = BatchSession(model: model, slots: 4096, context: 64)
    let options = SamplingOptions(maxTokens: 32, temperature: 1, topP: 0.9, seed: 1)
    let plain = timeMedian(repeats) { _ = session.sample(prompts: prompts, count: 4, options: options) }
    var sampled: [[BatchSession.SampledResponse]] = []
    let traced = timeMedian(repeats) { sampled = session.sampleTraced(prompts: prompts, count: 4, options: options) }
    // what reading the old log-probabilities from the sampling pass saves: a forward over the step's samples
    let packed = LossOn.response.pack(zip(prompts, sampled).flatMap { prompt, samples in samples.map { (prompt, $0.tokens) } })
    let forward = timeMedian(repeats) { _ = model.forward(packed.batch, training: false) }
    let result = BenchReport.PolicyStep(prompts: 4, samplesPerPrompt: 4, promptTokens: 32, maxTokens: 32,
                                        stepSeconds: part("step_time"), samplingSeconds: part("time/sampling"),
                                        scoringSeconds: part("time/scoring"), updateSeconds: part("time/update"),
                                        untracedSamplingSeconds: plain, tracedSamplingSeconds: traced, samplesForwardSeconds: forward)
    progress("ppo step: \(String(format: "%.3f", result.stepSeconds)) s (sampling \(String(format: "%.3f", result.samplingSeconds)), "
             + "scoring \(String(format: "%.3f", result.scoringSeconds)), update \(String(format: "%.3f", result.updateSeconds)))")
    return result
}

// MARK: Helpers

/// Seconds on a monotonic clock.
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func median(_ xs: [Double]) -> Double {
    precondition(!xs.isEmpty, "median of nothing")
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// One warm-up call, then the median time of `repeats` calls.
func timeMedian(_ repeats: Int, _ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    for _ in 0..<repeats {
        let t0 = now()
        body()
        times.append(now() - t0)
    }
    return median(times)
}

func loadAverage() -> Double {
    var loads = [Double](repeating: 0, count: 3)
    return getloadavg(&loads, 3) > 0 ? loads[0] : 0
}

func cpuName() -> String {
    if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
       let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
       let colon = line.firstIndex(of: ":") {
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return "unknown CPU"
}

/// Peak resident set size of this process in bytes (ru_maxrss is KiB on Linux, bytes on macOS).
/// Peak resident memory of this process's own address space. On Linux this is `VmHWM` from
/// /proc/self/status: `getrusage`'s ru_maxrss carries the parent's peak across fork + exec, so a bench
/// started from a large process (the side-by-side script after PyTorch ran in it) would report the
/// parent's peak instead of its own.
/// Resets the kernel's peak-RSS mark (Linux 4.0 and later), so that `peakResidentBytes` covers what follows.
func resetPeakResident() {
    #if os(Linux)
    if let f = fopen("/proc/self/clear_refs", "w") {
        fputs("5", f)
        fclose(f)
    }
    #endif
}

func peakResidentBytes() -> Int {
    #if os(Linux)
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kib = Int(line.dropFirst("VmHWM:".count).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") {
        return kib * 1024
    }
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
    #else
    var usage = rusage()
    getrusage(RUSAGE_SELF, &usage)
    return Int(usage.ru_maxrss)
    #endif
}
