import Base
import Foundation
import Kernels
import XCTest
@testable import Benchmarks

final class BenchmarksTests: XCTestCase {
    /// The tiny preset: 2 layers, dim 64, 4 heads (size 16) sharing 2 KV heads (kv width 32), ffn 128, vocab 259.
    let tiny = BenchReport.ModelShape(
        name: "tiny", vocabSize: 259, dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128,
        tiedEmbedding: true, parameterCount: 0)

    /// Hand count for 4 sequences of 256 tokens with 1020 targets:
    /// block matrices per layer: Q, O 64*64 = 4096 each; K, V 32*64 = 2048 each; gate, up, down 128*64 = 8192 each
    ///   -> 8192 + 4096 + 24576 = 36864, times 2 layers = 73728;  6 * 73728 * 1024 = 452_984_832.
    /// attention: 3 * (2 layers * 4 heads) * 4 sequences * 2 * 16 * 256 * 257 = 202_113_024.
    /// head: 6 * 64 * 259 * 1020 = 101_445_120.  Total 756_542_976.
    func testTrainingFlopCountOnTinyConfig() {
        XCTAssertEqual(tiny.nonEmbeddingMatrixParameters, 73728)
        let flops = FlopCount.trainingStep(tiny, sequenceLengths: [256, 256, 256, 256], targets: 1020)
        XCTAssertEqual(flops, 452_984_832 + 202_113_024 + 101_445_120)
        // One sequence of 3 tokens, 2 targets, forward only: 2*73728*3 + (2*4 heads) * 4*16 * (1+2+3) + 2*64*259*2.
        XCTAssertEqual(FlopCount.forward(tiny, sequenceLengths: [3], targets: 2), 442_368 + 3_072 + 66_304)
    }

    func testTinyBenchmarkReportIsWellFormed() throws {
        var lines: [String] = []
        let report = try runBenchmarks(.tiny, repeats: 1) { if case .measured(let line) = $0 { lines.append(line) } }
        XCTAssertFalse(lines.isEmpty)
        XCTAssertEqual(report.machine.repeats, 1)
        XCTAssertGreaterThan(report.machine.threads, 0)
        XCTAssertTrue(report.sgemm.contains { $0.label == "square 1024" })
        for s in report.sgemm { XCTAssertGreaterThan(s.gflops, 0, s.label) }
        XCTAssertEqual(report.referenceGflops, report.sgemm.filter { $0.label.hasPrefix("square") }.map(\.gflops).max())
        XCTAssertEqual(report.model.dim, 64)
        XCTAssertEqual(report.model.nonEmbeddingMatrixParameters, 73728)

        let t = report.training
        XCTAssertEqual(t.sequences, 4)
        XCTAssertEqual(t.sequenceLength, 256)
        XCTAssertEqual(t.targets, 1020)
        XCTAssertEqual(t.flopsPerStep, 756_542_976)
        XCTAssertGreaterThan(t.stepSeconds, 0)
        XCTAssertGreaterThanOrEqual(t.stepSeconds, t.forwardSeconds)
        XCTAssertEqual(t.tokensPerSecond, 1024 / t.stepSeconds, accuracy: 1e-6 * t.tokensPerSecond)
        XCTAssertEqual(t.achievedGflops, t.flopsPerStep / t.stepSeconds / 1e9, accuracy: 1e-9 * t.achievedGflops)
        XCTAssertEqual(t.mfuAgainstReference, t.achievedGflops / report.referenceGflops, accuracy: 1e-12)
        XCTAssertGreaterThan(t.sgemmGflopsDuringSteps, 0)
        // One repeat: the median ratio is that step's ratio.
        XCTAssertEqual(t.mfu, t.achievedGflops / t.sgemmGflopsDuringSteps, accuracy: 1e-9 * t.mfu)

        let s = report.scoring
        XCTAssertEqual([s.promptTokens, s.responses, s.responseTokens], [64, 6, 48])
        XCTAssertGreaterThan(s.sharedTokensPerSecond, 0)
        XCTAssertGreaterThan(s.separateSeconds, 0)
        XCTAssertGreaterThan(s.packedSeconds, 0)
        XCTAssertEqual(report.generation.generatedTokens, 64)
        XCTAssertGreaterThan(report.generation.tokensPerSecond, 0)
        XCTAssertGreaterThan(report.peakResidentBytes, 1 << 20)
        let m = report.sampling
        XCTAssertEqual([m.prompts, m.samplesPerPrompt, m.maxTokens, m.sampledTokens], [8, 4, 32, 8 * 4 * 32])
        XCTAssertEqual(m.batchedTokensPerSecond, Double(m.sampledTokens) / m.batchedSeconds, accuracy: 1e-9 * m.batchedTokensPerSecond)
        let p = report.probeSet
        for seconds in [p.recordLogprobsSeconds, p.recordMeasuresSeconds, p.recordTokensSeconds] { XCTAssertGreaterThan(seconds, 0) }

        // the LoRA step (rank 16 on the 7 projections: 16 x (128+96+96+128+192+192+192) x 2 blocks), alternating with the
        // full one, and its floor
        let l = try XCTUnwrap(report.lora)
        XCTAssertEqual(l.trainableParameters, 32_768)
        XCTAssertEqual(l.engineStepSeconds.count, report.engines.count)
        XCTAssertEqual(l.engineStepSeconds[0], l.stepSeconds)
        XCTAssertGreaterThan(l.stepSeconds, 0)
        XCTAssertGreaterThan(l.peakResidentBytes, 1 << 20)
        XCTAssertGreaterThan(try XCTUnwrap(l.floorForwardSeconds), 0)
        XCTAssertGreaterThan(try XCTUnwrap(l.floorBackwardSeconds), 0)
        let json = try JSONEncoder().encode(report)
        XCTAssertEqual(try JSONDecoder().decode(BenchReport.self, from: json), report)
        let text = report.description
        for needle in ["sgemm", "train step 4x256", "MFU", "scoring", "generation", "sampling", "lock step", "peak resident memory", "with the measures", "LoRA step (rank 16 on 7 projections", "its floor (one rank-1 adapter on o"] {
            XCTAssertTrue(text.contains(needle), "text report lacks \(needle):\n\(text)")
        }
    }

    /// `bench --threads` (issue 40): every figure at every count, alternating; speed-up and efficiency against the first
    /// count; the thread-dependent baseline only when 2 is measured; the thread count restored.
    func testThreadScalingReportsEveryPartAtEveryCount() throws {
        let saved = Threads.count
        var lines: [String] = []
        let scaling = try runThreadScaling(.tiny, counts: [1, 3], repeats: 1) { if case .measured(let line) = $0 { lines.append(line) } }
        XCTAssertEqual(Threads.count, saved)
        XCTAssertEqual(scaling.points.map(\.threads), [1, 3])
        XCTAssertEqual(lines.count, 2)
        XCTAssertNil(scaling.threadDependentAt2)
        for point in scaling.points {
            XCTAssertEqual(Set(point.seconds.keys), Set(scaling.parts))
            for (part, seconds) in point.seconds { XCTAssertTrue(seconds > 0 && seconds.isFinite, "\(part) at \(point.threads): \(seconds)") }
        }
        let step = try XCTUnwrap(scaling.scaling("train step", at: scaling.points[1]))
        let expected = scaling.points[0].seconds["train step"]! / scaling.points[1].seconds["train step"]!
        XCTAssertEqual(step.speedup, expected, accuracy: 1e-12)
        XCTAssertEqual(step.efficiency, expected / 3, accuracy: 1e-12)
        XCTAssertTrue(scaling.description.contains("train step"), scaling.description)
        let two = try runThreadScaling(.tiny, counts: [2], repeats: 1) { _ in }
        XCTAssertEqual(Set(try XCTUnwrap(two.threadDependentAt2).keys), ["train step", "evaluation"])
        XCTAssertTrue(Products.blocked)
    }

    func testRepeatsMustBePositive() {
        XCTAssertThrowsError(try runBenchmarks(.tiny, repeats: 0) { _ in }) { error in
            XCTAssertEqual(error as? BenchError, .invalidRepeats(0))
            XCTAssertFalse("\(error)".contains("\n"))
        }
    }

    func testWorkloadTokensMatchTheFormulaOfThePyTorchScript() {
        // id(i) = (i * 2654435761 + salt) mod 2^64 mod vocab
        XCTAssertEqual(Workload.tokens(3, salt: 1, vocab: 49152), [1, Int32(2_654_435_762 % 49152), Int32(5_308_871_523 % 49152)])
    }
}
