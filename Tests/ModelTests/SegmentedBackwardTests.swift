import XCTest
import Base
@testable import Model

/// `LlamaModel.backward(_:segments:)` (attribution's per-response gradients): each segment's gradient is the gradient of
/// its sequences' loss terms alone.
final class SegmentedBackwardTests: XCTestCase {
    private func bytes(_ s: String) -> [Int32] { Array(s.utf8).map(Int32.init) }

    /// Three segments of a packed batch (one of two sequences, one with no trained position) against a backward of each
    /// segment's sequences alone, for llama blocks with tied and untied embeddings, with Q/K/V biases, and GPT-NeoX blocks.
    /// The buffers start filled with garbage (the segmented backward writes, it does not add). The same arithmetic runs
    /// with the batch's other sequences beside it, so the gradients agree to float rounding: within 1e-5 of the
    /// gradient's largest entry (a product's k-sums hold at most the batch's 60 positions).
    func testEachSegmentsGradientIsItsSequencesAlone() {
        let configs: [(String, LlamaConfig)] = [
            ("llama tied", .tiny(dim: 32, ffnDim: 48)), ("llama untied, biases", .tiny(dim: 32, ffnDim: 48, tiedEmbedding: false, qkvBias: true)),
            ("gpt-neox", .tinyNeoX(dim: 32, ffnDim: 48)),
        ]
        let sequences: [[(ids: [Int32], trained: Bool)]] = [
            [([256] + bytes("Q: hi\nA:"), false), (bytes(" hello") + [257], true)],
            [([256] + bytes("Q: sky?\nA:"), false), (bytes(" blue"), true)],
            [([256] + bytes("Q: no target"), false)],
            [([256] + bytes("Q: 2+2\nA:"), false), (bytes(" four") + [257], true)],
        ]
        // segments: sequences 0 and 1, then 2 (nothing trained), then 3
        let groups = [[0, 1], [2], [3]]
        for (name, config) in configs {
            let model = LlamaModel(config: config, maxTokens: 128)
            model.initializeRandom(seed: 11, std: 0.2)
            let packed = TokenBatch.pack(sequences)
            let n = model.parameterCount
            let buffers = (0..<groups.count).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: n) }
            defer { buffers.forEach { $0.deallocate() } }
            for b in buffers { b.initialize(repeating: .nan, count: n) }
            _ = model.forward(packed.batch, training: true)
            let segments = groups.enumerated().map { k, group in
                LlamaModel.GradientSegment(rows: packed.spans[group.first!].start..<packed.spans[group.last!].range.upperBound,
                                           gradients: buffers[k])
            }
            packed.weights.withUnsafeBufferPointer { model.backward($0.baseAddress!, segments: segments) }
            XCTAssertTrue(model.gradients.allSatisfy { $0 == 0 }, "\(name): the model's own gradients are not touched")
            for (k, group) in groups.enumerated() {
                let alone = TokenBatch.pack(group.map { sequences[$0] })
                model.zeroGradients()
                _ = model.forward(alone.batch, training: true)
                alone.weights.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
                let expected = Array(model.gradients)
                let scale = expected.map(abs).max()!
                if group == [2] {
                    XCTAssertEqual(scale, 0, "\(name): a segment with no trained position has no gradient")
                } else {
                    XCTAssertGreaterThan(scale, 1e-3, name)
                }
                var worst: Float = 0
                for i in 0..<n {
                    XCTAssertFalse(buffers[k][i].isNaN, "\(name) segment \(k) [\(i)]: not written")
                    worst = max(worst, abs(buffers[k][i] - expected[i]))
                }
                XCTAssertLessThanOrEqual(worst, 1e-5 * max(scale, 1e-3), "\(name) segment \(k)")
            }
            model.zeroGradients()
        }
    }
}
