import Foundation
import XCTest
import Model
@testable import GGUF

/// The default model mapped onto `LlamaModel`; skipped when the file is absent.
final class RealModelMappingTests: XCTestCase {
    static let smolLM2 = LlamaConfig(
        vocabSize: 49152, dim: 576, nLayers: 30, nHeads: 9, nKVHeads: 3, ffnDim: 1536,
        ropeBase: 100_000, normEps: 1e-5, tiedEmbedding: true, contextLength: 8192)

    func testConfigMapping() throws {
        let config = try GGUFFile(path: realModelPath()).llamaConfig()
        XCTAssertEqual(config, Self.smolLM2)
        XCTAssertEqual(config.headDim, 64)
    }

    /// Loads every tensor with the right shape, exports F32, reads it back: identical weights and
    /// identical log-probabilities.
    func testLoadExportF32AndReloadGivesIdenticalWeights() throws {
        let source = try GGUFFile(path: realModelPath())
        let model = LlamaModel(config: try source.llamaConfig(), maxTokens: 8)
        try source.loadWeights(into: model)
        XCTAssertEqual(model.parameterTable.count, source.tensors.count)
        for (name, shape) in model.parameterTable {
            XCTAssertEqual(source.tensorInfo(name)?.shape, shape, name)
        }
        // Spot-check placement against the reference fixture: first values of a few tensors.
        struct Fixture: Decodable { struct T: Decodable { var name: String; var first: [Float] }; var tensors: [T] }
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: fixtureURL("reference-dequant.json")))
        for t in fixture.tensors {
            let p = model.parameter(t.name)
            for (i, v) in t.first.enumerated() { XCTAssertEqual(p[i], v, accuracy: 1e-6 * max(1, abs(v)), "\(t.name)[\(i)]") }
        }

        let dir = try temporaryDirectory(self)
        let path = dir.appendingPathComponent("smollm2-f32.gguf").path
        try exportGGUF(model: model, tokenizerFrom: source, path: path, type: .f32)
        // For scripts/gguf-export-check.py: keep a copy of the export when asked.
        if let keep = ProcessInfo.processInfo.environment["ALIGNSCOPE_KEEP_EXPORT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: path, toPath: keep)
            try exportGGUF(model: model, tokenizerFrom: source, path: keep.replacingOccurrences(of: ".gguf", with: "-f16.gguf"), type: .f16)
        }
        let exported = try GGUFFile(path: path)
        XCTAssertEqual(try exported.llamaConfig(), Self.smolLM2)
        XCTAssertNil(exported.tensorInfo("output.weight"))
        for key in source.metadataKeys where key.hasPrefix("tokenizer.") {
            XCTAssertEqual(exported.metadata[key], source.metadata[key], key)
        }
        let reloaded = LlamaModel(config: try exported.llamaConfig(), maxTokens: 8)
        try exported.loadWeights(into: reloaded)
        assertSameFloats(reloaded.parameters, model.parameters, "reloaded weights")

        let batch = TokenBatch.scoring([(context: [1, 9690, 198], continuation: [19556, 28, 2])])
        let a = Array(model.forward(batch, training: false)), b = Array(reloaded.forward(batch, training: false))
        XCTAssertEqual(a, b)
        XCTAssertTrue(a.allSatisfy(\.isFinite) && a.contains { $0 < 0 })
    }
}
