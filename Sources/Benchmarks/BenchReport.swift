import Base
import Foundation

/// Everything `runBenchmarks` measured, in one Codable value (`alignscope bench --json` prints it).
///
/// Times are medians over the repeats, in seconds; rates are derived from those medians.
public struct BenchReport: Codable, Sendable, Equatable {
    /// Where and how the figures were taken.
    public struct Machine: Codable, Sendable, Equatable {
        public var cpu: String
        public var logicalCPUs: Int
        /// Kernel and OpenBLAS threads (`Threads.count`).
        public var threads: Int
        /// 1-minute load average before and after the run (other work on the machine skews timings).
        public var loadBefore: Double
        public var loadAfter: Double
        public var repeats: Int
    }

    /// One product shape: C(m, n) = op(A)(m, k) op(B)(k, n), 2 m n k FLOPs per call, measured through
    /// `matmul` with each engine.
    public struct Sgemm: Codable, Sendable, Equatable {
        public var label: String
        public var m: Int, n: Int, k: Int
        public var transA: Bool, transB: Bool
        /// The default engine: oneDNN, float32 inputs.
        public var gflops: Double
        /// The OpenBLAS baseline (`Products.backend = .openblas`), float32.
        public var openblasGflops: Double
        /// oneDNN with bf16 inputs (float32 accumulation and output); nil without native bf16.
        public var bf16Gflops: Double?
        /// The default engine's first call minus a typical call: creating the oneDNN primitive (and its
        /// JIT kernels) for this shape, paid once per shape and kept out of the step by the cache.
        public var creationSeconds: Double
    }

    /// A training step and the probe set's batched scoring with one engine, measured in rounds that
    /// alternate with the other engines' (so load changes hit all of them alike).
    public struct Engine: Codable, Sendable, Equatable {
        /// "oneDNN fp32", "OpenBLAS fp32", "oneDNN bf16".
        public var label: String
        public var training: Training
        /// `BatchSession.scoreResponses` over the probe-set workload (`ProbeSetBench.batchedSeconds`).
        public var probeSetSeconds: Double
        /// Largest |log p| difference of a scored response from the default engine's.
        public var probeSetMaxLogprobDifference: Double
    }

    /// The sizes that enter the FLOP count.
    public struct ModelShape: Codable, Sendable, Equatable {
        public var name: String
        public var vocabSize: Int, dim: Int, nLayers: Int, nHeads: Int, nKVHeads: Int, ffnDim: Int
        public var tiedEmbedding: Bool
        public var parameterCount: Int
        /// Feed-forward matrices per layer: 3 for SwiGLU (gate, up, down), 2 for GELU (up, down; GPT-NeoX).
        /// Absent in reports written before GPT-NeoX: 3.
        public var ffnMatrices: Int?
        public var headDim: Int { dim / nHeads }

        public init(name: String, vocabSize: Int, dim: Int, nLayers: Int, nHeads: Int, nKVHeads: Int, ffnDim: Int,
                    tiedEmbedding: Bool, parameterCount: Int, ffnMatrices: Int = 3) {
            self.ffnMatrices = ffnMatrices
            self.name = name
            self.vocabSize = vocabSize
            self.dim = dim
            self.nLayers = nLayers
            self.nHeads = nHeads
            self.nKVHeads = nKVHeads
            self.ffnDim = ffnDim
            self.tiedEmbedding = tiedEmbedding
            self.parameterCount = parameterCount
        }

        /// Weights of the matrices inside the blocks (what multiplies every token): per layer
        /// Q and O (dim x dim), K and V (kvDim x dim), gate (SwiGLU only), up and down (ffn x dim). Norm
        /// weights, biases and the embedding are left out; the output head is counted separately (`FlopCount`).
        public var nonEmbeddingMatrixParameters: Int {
            let kv = nKVHeads * headDim
            return nLayers * (2 * dim * dim + 2 * dim * kv + (ffnMatrices ?? 3) * dim * ffnDim)
        }
    }

    /// One AdamW training step: forward, backward and optimizer update.
    public struct Training: Codable, Sendable, Equatable {
        public var sequences: Int
        public var sequenceLength: Int
        /// Positions with a target (every position but the last of each sequence).
        public var targets: Int
        public var stepSeconds: Double
        public var forwardSeconds: Double
        public var backwardSeconds: Double
        public var optimizerSeconds: Double
        public var tokensPerSecond: Double
        /// Model FLOPs of one step (`FlopCount.trainingStep`).
        public var flopsPerStep: Double
        public var achievedGflops: Double
        /// Median of the 1024^3 sgemm GFLOP/s measured just before each step.
        public var sgemmGflopsDuringSteps: Double
        /// Model FLOP utilisation: median over the steps of (model FLOPs / step time) / (sgemm GFLOP/s measured
        /// just before that step). Robust to load that changes during the run.
        public var mfu: Double
        /// achievedGflops / referenceGflops (the two medians; skewed when the load changes).
        public var mfuAgainstReference: Double
    }

    /// Scoring responses to one prompt through `InferenceSession`.
    public struct Scoring: Codable, Sendable, Equatable {
        public var promptTokens: Int
        public var responses: Int
        public var responseTokens: Int
        /// Prompt appended once, its KV cache shared by every response (`score`).
        public var sharedSeconds: Double
        /// (promptTokens + responses * responseTokens) / sharedSeconds.
        public var sharedTokensPerSecond: Double
        /// Each (prompt, response) run from an empty cache, for comparison.
        public var separateSeconds: Double
        /// separateSeconds / sharedSeconds.
        public var sharingSpeedup: Double
        /// All (prompt, response) pairs as one packed batch through `LlamaModel.forward` (no cache).
        public var packedSeconds: Double
    }

    /// Greedy generation after a prompt (prompt processing included).
    public struct Generation: Codable, Sendable, Equatable {
        public var promptTokens: Int
        public var generatedTokens: Int
        public var seconds: Double
        public var tokensPerSecond: Double
    }

    /// Sampling several continuations of several prompts (temperature and top-p), for labelling and online RL:
    /// all samples in lock step (`BatchSession.sample`) against one sample at a time (the same method, one
    /// prompt and one sample per call). No stop tokens: every sample is `maxTokens` long.
    public struct Sampling: Codable, Sendable, Equatable {
        public var prompts: Int
        public var samplesPerPrompt: Int
        public var promptTokens: Int
        public var maxTokens: Int
        public var sampledTokens: Int
        public var batchedSeconds: Double
        public var oneAtATimeSeconds: Double
        public var batchedTokensPerSecond: Double
        public var oneAtATimeTokensPerSecond: Double
        public var speedup: Double { oneAtATimeSeconds / batchedSeconds }
    }

    /// One online policy-optimisation step (`objective.kind` "ppo", `measurePolicyStep`), split as the step records it.
    public struct PolicyStep: Codable, Sendable, Equatable {
        public var prompts: Int
        public var samplesPerPrompt: Int
        public var promptTokens: Int
        public var maxTokens: Int
        public var stepSeconds: Double
        /// Lock-step sampling of every sample, with each token's log-probability and entropy (`sampleTraced`).
        public var samplingSeconds: Double
        /// The reference's log-probabilities of every sampled token (one batched pass) and the reward (a rule here).
        public var scoringSeconds: Double
        /// Forward, backward and AdamW over the samples (one mini-batch, one epoch).
        public var updateSeconds: Double
        /// The same sampling without the trace (`BatchSession.sample`) and with it, measured beside the step.
        public var untracedSamplingSeconds: Double
        public var tracedSamplingSeconds: Double
        /// A forward pass over the step's samples (inference mode): what the old log-probabilities would cost if
        /// they were not read from the sampling pass.
        public var samplesForwardSeconds: Double
    }

    public var machine: Machine
    /// oneDNN's instruction set on this CPU (`Products.isaName`).
    public var productISA: String
    /// The kernels OpenBLAS picked (`Products.openBLASKernels`; attention's small products and decoding run on them).
    public var openBLASKernels: String? = nil
    public var sgemm: [Sgemm]
    /// Best of the square shapes with oneDNN fp32: the machine's attainable FLOP/s that MFU is measured against.
    public var referenceGflops: Double
    /// Best of the square shapes with oneDNN bf16 (nil without native bf16).
    public var referenceBF16Gflops: Double?
    public var model: ModelShape
    /// The training step with the default engine (oneDNN fp32); `engines[0].training` is the same.
    public var training: Training
    /// The default engine, then the OpenBLAS baseline, then bf16 where the CPU has it.
    public var engines: [Engine]
    public var scoring: Scoring
    public var generation: Generation
    public var sampling: Sampling
    /// A probe set's evaluation: see `ProbeSetBench`.
    public var probeSet: ProbeSetBench
    /// Nil in reports written before issue 23.
    public var policyStep: PolicyStep?
    /// What `eval.attribution` and `eval.kl` cost (issue 38); nil in reports written before.
    public var attribution: AttributionBench?
    /// The LoRA step beside the full one (issue 39); nil in reports written before.
    public var lora: LoRABench?

    /// A training step with LoRA adapters (`train.lora`, rank 16 on every projection) on the same batch, alternating with
    /// the full step in every round (the same load on both); its peak memory is read over one LoRA step per engine made
    /// before any full step (so that it does not hold the full step's gradients and moments).
    public struct LoRABench: Codable, Sendable, Equatable {
        public var rank: Int
        public var targets: [String]
        public var trainableParameters: Int
        /// The default engine's step (its parts as `Training`'s; FLOP figures are the full step's and not reported).
        public var stepSeconds: Double
        public var forwardSeconds: Double
        public var backwardSeconds: Double
        public var optimizerSeconds: Double
        /// Each engine's LoRA step, in `engines` order.
        public var engineStepSeconds: [Double]
        /// Peak resident memory over one LoRA step per engine, against `trainingPeakResidentBytes` (the full steps').
        public var peakResidentBytes: Int
        /// The floor under any LoRA step (default engine): one rank-1 adapter on `o` per block, i.e. the frozen model's
        /// forward and its backward to the inputs of every product; nil in reports written before.
        public var floorForwardSeconds: Double?
        public var floorBackwardSeconds: Double?
    }
    /// getrusage ru_maxrss of the whole process, in bytes.
    public var peakResidentBytes: Int
    /// Peak resident memory over one full training step per engine, in bytes: the peak mark is reset
    /// before them (VmHWM; 0 where that cannot be done).
    public var trainingPeakResidentBytes: Int
}

extension BenchReport: CustomStringConvertible {
    /// The human-readable report (`alignscope bench` without `--json`).
    public var description: String {
        func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
        var lines: [String] = []
        lines.append("machine: \(machine.cpu), \(machine.logicalCPUs) logical CPUs, \(machine.threads) threads, "
                     + "load \(f(machine.loadBefore, 2)) -> \(f(machine.loadAfter, 2)), medians of \(machine.repeats)")
        lines.append("products (GFLOP/s; oneDNN at \(productISA), OpenBLAS kernels \(openBLASKernels ?? "?")):   oneDNN fp32  OpenBLAS fp32  oneDNN bf16")
        for s in sgemm {
            let shape = "\(s.m)x\(s.n)x\(s.k)\(s.transA ? " Aᵀ" : "")\(s.transB ? " Bᵀ" : "")"
            let bf16 = s.bf16Gflops.map { f($0) } ?? "-"
            lines.append("  \(s.label.padding(toLength: 22, withPad: " ", startingAt: 0)) \(shape.padding(toLength: 22, withPad: " ", startingAt: 0)) "
                         + "\(f(s.gflops).leftPadded(11))  \(f(s.openblasGflops).leftPadded(13))  \(bf16.leftPadded(11))"
                         + "   (primitive creation \(f(1000 * s.creationSeconds, 2)) ms)")
        }
        lines.append("  reference (best square)                       \(f(referenceGflops).leftPadded(11))  \("".leftPadded(13))  \((referenceBF16Gflops.map { f($0) } ?? "-").leftPadded(11))")
        lines.append("model: \(model.name): \(model.nLayers) layers, dim \(model.dim), ffn \(model.ffnDim), "
                     + "heads \(model.nHeads)/\(model.nKVHeads), vocab \(model.vocabSize), \(model.parameterCount) parameters "
                     + "(\(model.nonEmbeddingMatrixParameters) in block matrices)")
        let t = training
        lines.append("train step \(t.sequences)x\(t.sequenceLength): \(f(t.stepSeconds, 3)) s "
                     + "(forward \(f(t.forwardSeconds, 3)), backward \(f(t.backwardSeconds, 3)), AdamW \(f(t.optimizerSeconds, 3))), "
                     + "\(f(t.tokensPerSecond)) tokens/s")
        lines.append("  model FLOPs/step \(f(t.flopsPerStep / 1e9, 2)) G, \(f(t.achievedGflops)) GFLOP/s, MFU \(f(100 * t.mfu))% "
                     + "of the sgemm measured beside each step (\(f(t.sgemmGflopsDuringSteps)) GFLOP/s); \(f(100 * t.mfuAgainstReference))% of the reference")
        let base = engines[0]
        for e in engines {
            lines.append("engine \(e.label): train step \(f(e.training.stepSeconds, 3)) s (x\(f(e.training.stepSeconds / base.training.stepSeconds, 2)) of \(base.label)), "
                         + "\(f(e.training.achievedGflops)) GFLOP/s; probe set batched \(f(e.probeSetSeconds, 3)) s (x\(f(e.probeSetSeconds / base.probeSetSeconds, 2))), "
                         + "max |log p - \(base.label)| \(String(format: "%.2g", e.probeSetMaxLogprobDifference))")
        }
        let s = scoring
        lines.append("scoring: prompt \(s.promptTokens) + \(s.responses) x \(s.responseTokens) tokens: shared cache \(f(s.sharedSeconds, 3)) s "
                     + "(\(f(s.sharedTokensPerSecond)) tokens/s), separately \(f(s.separateSeconds, 3)) s (x\(f(s.sharingSpeedup, 2))), "
                     + "packed forward \(f(s.packedSeconds, 3)) s")
        let g = generation
        lines.append("generation: \(g.generatedTokens) tokens greedy after \(g.promptTokens): \(f(g.seconds, 3)) s, \(f(g.tokensPerSecond)) tokens/s")
        let m = sampling
        lines.append("sampling: \(m.prompts) prompts of \(m.promptTokens) tokens x \(m.samplesPerPrompt) samples of \(m.maxTokens) tokens "
                     + "(\(m.sampledTokens) tokens): one sample at a time \(f(m.oneAtATimeSeconds, 3)) s (\(f(m.oneAtATimeTokensPerSecond)) tokens/s), "
                     + "lock step \(f(m.batchedSeconds, 3)) s (\(f(m.batchedTokensPerSecond)) tokens/s, x\(f(m.speedup, 2)))")
        let p = probeSet
        lines.append("probe set: \(p.probes) prompts of \(p.promptTokens) tokens x responses of \(p.responseTokens.map(String.init).joined(separator: "/")) tokens: "
                     + "each pair separately \(f(p.separateSeconds, 3)) s, shared cache per probe \(f(p.sharedSeconds, 3)) s (x\(f(p.sharedSpeedup, 2))), "
                     + "batched across probes \(f(p.batchedSeconds, 3)) s (x\(f(p.batchedSpeedup, 2)))")
        lines.append("  greedy \(p.generatedTokens) tokens after each prompt: one prompt at a time \(f(p.greedyOneAtATimeSeconds, 3)) s, "
                     + "lock step \(f(p.greedyLockStepSeconds, 3)) s (x\(f(p.greedyOneAtATimeSeconds / p.greedyLockStepSeconds, 2)))")
        lines.append("  recorded into a store: log-probabilities only \(f(p.recordLogprobsSeconds, 3)) s, with the measures "
                     + "\(f(p.recordMeasuresSeconds, 3)) s (x\(f(p.recordMeasuresSeconds / p.recordLogprobsSeconds, 3))), with measures and "
                     + "per-token rows \(f(p.recordTokensSeconds, 3)) s (x\(f(p.recordTokensSeconds / p.recordLogprobsSeconds, 3)))")
        if let q = policyStep {
            lines.append("ppo step: \(q.prompts) prompts of \(q.promptTokens) tokens x \(q.samplesPerPrompt) samples of up to \(q.maxTokens) tokens: "
                         + "\(f(q.stepSeconds, 3)) s = sampling \(f(q.samplingSeconds, 3)) + scoring \(f(q.scoringSeconds, 3)) + update \(f(q.updateSeconds, 3)); "
                         + "sampling without the trace \(f(q.untracedSamplingSeconds, 3)) s, with it \(f(q.tracedSamplingSeconds, 3)) s; "
                         + "a forward over the samples (what the trace saves) \(f(q.samplesForwardSeconds, 3)) s")
        }
        if let a = attribution {
            lines.append("attribution: SFT step of \(a.examples) x \(a.exampleTokens) tokens \(f(a.stepSeconds, 3)) s; with \(a.responses) followed responses "
                         + "\(f(a.attributedStepSeconds, 3)) s (x\(f(a.attributedStepSeconds / a.stepSeconds, 2))): two forwards over the responses "
                         + "\(f(a.scoringSeconds, 3)) s, \(f(a.perExampleSeconds, 3)) s per training example, \(f(a.perResponseSeconds, 3)) s per response "
                         + "(its pass over the parameters \(f(a.perResponsePassSeconds, 3)) s; \(f(a.sketchedPerResponseSeconds, 3)) s with project: 8192)")
            lines.append("eval.kl: the probe set's distributions \(f(a.distributionsSeconds, 3)) s, compared with a held set at every position "
                         + "\(f(a.comparedSeconds, 3)) s (x\(f(a.comparedSeconds / a.distributionsSeconds, 2)))")
        }
        if let l = lora {
            let full = training.stepSeconds
            lines.append("LoRA step (rank \(l.rank) on \(l.targets.count) projections, \(l.trainableParameters) parameters trained): \(f(l.stepSeconds, 3)) s "
                         + "(forward \(f(l.forwardSeconds, 3)), backward \(f(l.backwardSeconds, 3)), AdamW \(f(l.optimizerSeconds, 3))), x\(f(l.stepSeconds / full, 2)) of the full step; "
                         + "peak memory \(f(Double(l.peakResidentBytes) / 1_048_576)) MiB, x\(f(Double(l.peakResidentBytes) / Double(max(1, trainingPeakResidentBytes)), 2)) of the full steps'")
            if let ff = l.floorForwardSeconds, let fb = l.floorBackwardSeconds {
                lines.append("  its floor (one rank-1 adapter on o: the frozen model's forward and input gradients): forward \(f(ff, 3)), backward \(f(fb, 3)); "
                             + "the adapters' own share: forward \(f(l.forwardSeconds - ff, 3)), backward \(f(l.backwardSeconds - fb, 3))")
            }
            for (e, s) in zip(engines, l.engineStepSeconds).dropFirst() {
                lines.append("  engine \(e.label): LoRA step \(f(s, 3)) s (x\(f(s / e.training.stepSeconds, 2)) of its full step)")
            }
        }
        lines.append("peak resident memory: \(f(Double(peakResidentBytes) / 1_048_576)) MiB; during the training steps "
                     + "\(f(Double(trainingPeakResidentBytes) / 1_048_576)) MiB")
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
