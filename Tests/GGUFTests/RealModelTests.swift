import Foundation
import XCTest
@testable import GGUF

/// Facts about the default model (DESIGN.md, "The default model"); skipped when the file is absent.
final class RealModelTests: XCTestCase {
    func testMetadataFacts() throws {
        let f = try GGUFFile(path: realModelPath())
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.alignment, 32)
        XCTAssertEqual(try f.string(GGUFKeys.architecture), "llama")
        XCTAssertEqual(try f.int(GGUFKeys.Llama.blockCount), 30)
        XCTAssertEqual(try f.int(GGUFKeys.Llama.embeddingLength), 576)
        XCTAssertEqual(try f.int(GGUFKeys.Llama.feedForwardLength), 1536)
        XCTAssertEqual(try f.int(GGUFKeys.Llama.headCount), 9)
        XCTAssertEqual(try f.int(GGUFKeys.Llama.headCountKV), 3)
        XCTAssertEqual(try f.int(GGUFKeys.Llama.contextLength), 8192)
        XCTAssertEqual(try f.double(GGUFKeys.Llama.ropeFreqBase), 100_000)
        XCTAssertEqual(f.metadata[GGUFKeys.Llama.rmsNormEpsilon], .float32(1e-5))
        XCTAssertEqual(try f.string(GGUFKeys.Tokenizer.model), "gpt2")
        XCTAssertEqual(try f.string(GGUFKeys.Tokenizer.pre), "smollm")
        XCTAssertEqual(try f.int(GGUFKeys.Tokenizer.bosTokenID), 1)
        XCTAssertEqual(try f.int(GGUFKeys.Tokenizer.eosTokenID), 2)
        XCTAssertEqual(try f.bool(GGUFKeys.Tokenizer.addBOSToken), false)
        let tokens = try f.strings(GGUFKeys.Tokenizer.tokens)
        XCTAssertEqual(tokens.count, 49152)
        XCTAssertEqual(tokens[1], "<|im_start|>")
        XCTAssertEqual(tokens[2], "<|im_end|>")
        XCTAssertEqual(try f.ints(GGUFKeys.Tokenizer.tokenType).count, 49152)
        XCTAssertEqual(try f.strings(GGUFKeys.Tokenizer.merges).count, 48900)
        XCTAssertTrue(try f.string(GGUFKeys.Tokenizer.chatTemplate).contains("<|im_start|>"))

        XCTAssertEqual(f.tensors.count, 272)
        XCTAssertNil(f.tensorInfo("output.weight"))
        XCTAssertEqual(f.tensorInfo("token_embd.weight")?.type, .q8_0)
        XCTAssertEqual(f.tensorInfo("token_embd.weight")?.dimensions, [576, 49152])
        XCTAssertEqual(f.tensorInfo("blk.0.attn_q.weight")?.type, .q4_1)
        XCTAssertEqual(f.tensorInfo("blk.0.attn_k.weight")?.shape, [192, 576])
        XCTAssertEqual(f.tensorInfo("blk.29.ffn_down.weight")?.shape, [576, 1536])
        XCTAssertEqual(f.tensorInfo("output_norm.weight")?.type, .f32)
    }

    /// Our dequantisation against the `gguf` Python package (fixture from scripts/gguf-reference.py).
    func testDequantisationMatchesReferenceFixture() throws {
        struct Fixture: Decodable {
            struct Tensor: Decodable {
                var name: String, type: String, dimensions: [Int], count: Int
                var sum: Double, sum_squares: Double, first: [Float], last: [Float], samples: [[Double]]
            }
            var tensors: [Tensor]
        }
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: fixtureURL("reference-dequant.json")))
        XCTAssertEqual(Set(fixture.tensors.map(\.type)), ["Q8_0", "Q4_1", "F32"])
        let f = try GGUFFile(path: realModelPath())
        for ref in fixture.tensors {
            let info = try f.tensor(ref.name)
            XCTAssertEqual(info.type.description, ref.type, ref.name)
            XCTAssertEqual(info.dimensions, ref.dimensions, ref.name)
            let values = try f.floats(ref.name)
            XCTAssertEqual(values.count, ref.count, ref.name)
            // Individual values: the formulas are exact up to one rounding of x*d+m.
            for (i, v) in ref.first.enumerated() { XCTAssertEqual(values[i], v, accuracy: 1e-6 * max(1, abs(v)), "\(ref.name)[\(i)]") }
            for (i, v) in ref.last.enumerated() {
                let j = values.count - ref.last.count + i
                XCTAssertEqual(values[j], v, accuracy: 1e-6 * max(1, abs(v)), "\(ref.name)[\(j)]")
            }
            for s in ref.samples {
                let j = Int(s[0])
                XCTAssertEqual(Double(values[j]), s[1], accuracy: 1e-6 * max(1, abs(s[1])), "\(ref.name)[\(j)]")
            }
            var sum = 0.0, sumSquares = 0.0
            for v in values {
                sum += Double(v)
                sumSquares += Double(v) * Double(v)
            }
            XCTAssertEqual(sum, ref.sum, accuracy: 1e-6 * max(1, sumSquares), ref.name)
            XCTAssertEqual(sumSquares, ref.sum_squares, accuracy: 1e-6 * ref.sum_squares, ref.name)
        }
    }

    func testEveryTensorDequantises() throws {
        let f = try GGUFFile(path: realModelPath())
        var total = 0
        for info in f.tensors {
            let values = try f.floats(info.name)
            XCTAssertEqual(values.count, info.elementCount)
            XCTAssertTrue(values.allSatisfy(\.isFinite), info.name)
            total += values.count
        }
        XCTAssertEqual(total, 134_515_008)
    }
}
