import Base
import Foundation
import XCTest
import Model
@testable import GGUF

/// Config mapping, weight loading and export with tiny models (no real model needed).
final class LlamaMappingTests: XCTestCase {
    let tinyConfig = LlamaConfig.tiny(vocabSize: 40, dim: 16, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 24, contextLength: 64)

    func tinyModel(_ config: LlamaConfig? = nil, seed: UInt64 = 7) -> LlamaModel {
        let m = LlamaModel(config: config ?? tinyConfig, maxTokens: 16)
        m.initializeRandom(seed: seed)
        // Norm weights are 1 after initialisation; make them distinct so a mix-up would show.
        for (name, shape) in m.parameterTable where shape.count == 1 {
            let p = m.parameter(name)
            for i in 0..<p.count { p[i] = 1 + Float(i) / 64 }
        }
        return m
    }

    /// A tokenizer-bearing source file with `n` tokens plus keys that must not be copied.
    func sourceFile(tokens n: Int, dir: URL) throws -> GGUFFile {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("general.name", .string("Source"))
        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.tokens", .array((0..<n).map { .string("t\($0)") }))
        w.set("tokenizer.ggml.token_type", .array((0..<n).map { _ in .int32(1) }))
        w.set("tokenizer.ggml.merges", .array([.string("t 1")]))
        w.set("llama.block_count", .uint32(99))
        w.set("tokenizer.ggml.eos_token_id", .uint32(2))
        let path = dir.appendingPathComponent("source.gguf").path
        try w.write(to: path)
        return try GGUFFile(path: path)
    }

    func logprobs(_ m: LlamaModel) -> [Float] {
        let batch = TokenBatch.scoring([(context: [1, 5, 9], continuation: [3, 3, 7]), (context: [2], continuation: [11, 0])])
        return Array(m.forward(batch, training: false))
    }

    func testExportF32ThenLoadGivesIdenticalWeightsAndLogprobs() throws {
        for tied in [true, false] {
            var config = tinyConfig
            config.tiedEmbedding = tied
            config.ropeBase = 5000
            config.normEps = 1e-6
            let model = tinyModel(config)
            let dir = try temporaryDirectory(self)
            let path = dir.appendingPathComponent("tiny.gguf").path
            try exportGGUF(model: model, tokenizerFrom: try sourceFile(tokens: 40, dir: dir), path: path, type: .f32)

            let f = try GGUFFile(path: path)
            XCTAssertEqual(try f.llamaConfig(), config)
            XCTAssertEqual(f.tensorInfo("output.weight") == nil, tied)
            XCTAssertEqual(f.tensorInfo("blk.1.attn_k.weight")?.dimensions, [16, 8])
            XCTAssertTrue(f.tensors.allSatisfy { $0.type == .f32 })
            let loaded = LlamaModel(config: try f.llamaConfig(), maxTokens: 16)
            try f.loadWeights(into: loaded)
            assertSameFloats(loaded.parameters, model.parameters)
            XCTAssertEqual(logprobs(loaded), logprobs(model))
        }
    }

    func testExportF16RoundsMatricesAndKeepsNormsF32() throws {
        let model = tinyModel()
        let dir = try temporaryDirectory(self)
        let path = dir.appendingPathComponent("tiny16.gguf").path
        try exportGGUF(model: model, tokenizerFrom: nil, path: path, type: .f16)
        let f = try GGUFFile(path: path)
        XCTAssertEqual(try f.int(GGUFKeys.fileType), 1)
        let loaded = LlamaModel(config: try f.llamaConfig(), maxTokens: 16)
        try f.loadWeights(into: loaded)
        for (name, shape) in model.parameterTable {
            XCTAssertEqual(f.tensorInfo(name)?.type, shape.count == 1 ? .f32 : .f16, name)
            let expected = model.parameter(name).map { shape.count == 1 ? $0 : Half.toFloat(Half.fromFloat($0)) }
            assertSameFloats(loaded.parameter(name), expected, name)
        }
        let a = logprobs(model), b = logprobs(loaded)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-2) }
    }

    func testExportCopiesTokenizerKeysOnly() throws {
        let dir = try temporaryDirectory(self)
        let source = try sourceFile(tokens: 40, dir: dir)
        let path = dir.appendingPathComponent("out.gguf").path
        try exportGGUF(model: tinyModel(), tokenizerFrom: source, path: path, type: .f32)
        let f = try GGUFFile(path: path)
        let tokenizerKeys = source.metadataKeys.filter { $0.hasPrefix("tokenizer.") }
        XCTAssertEqual(f.metadataKeys.filter { $0.hasPrefix("tokenizer.") }, tokenizerKeys)
        for k in tokenizerKeys { XCTAssertEqual(f.metadata[k], source.metadata[k], k) }
        XCTAssertEqual(try f.string("general.architecture"), "llama")
        XCTAssertEqual(try f.string("general.name"), "Source (AlignScope)")
        XCTAssertEqual(try f.int("llama.block_count"), 2)  // the model's, not the source's 99
        XCTAssertEqual(try f.int("llama.rope.dimension_count"), 4)

        assertGGUFError(try exportGGUF(model: tinyModel(), tokenizerFrom: try sourceFile(tokens: 41, dir: dir), path: path, type: .f32)) {
            if case let .invalidWrite(file, reason) = $0 { return file == path && reason.contains("41") } else { return false }
        }
    }

    /// Builds a llama GGUF from the tiny model, letting `edit` change metadata or tensors first.
    func tinyFile(_ edit: (inout GGUFWriter, LlamaModel) -> Void = { _, _ in }) throws -> GGUFFile {
        let model = tinyModel()
        let c = model.config
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("llama.block_count", .uint32(UInt32(c.nLayers)))
        w.set("llama.context_length", .uint32(UInt32(c.contextLength)))
        w.set("llama.embedding_length", .uint32(UInt32(c.dim)))
        w.set("llama.feed_forward_length", .uint32(UInt32(c.ffnDim)))
        w.set("llama.attention.head_count", .uint32(UInt32(c.nHeads)))
        w.set("llama.attention.head_count_kv", .uint32(UInt32(c.nKVHeads)))
        w.set("llama.attention.layer_norm_rms_epsilon", .float32(c.normEps))
        w.set("llama.rope.freq_base", .float32(c.ropeBase))
        w.set("tokenizer.ggml.tokens", .array((0..<c.vocabSize).map { .string("t\($0)") }))
        edit(&w, model)
        if !w.tensors.contains(where: { $0.name == "token_embd.weight" }) {
            for (name, shape) in model.parameterTable {
                w.addTensor(name, dimensions: shape.reversed(), type: .f32, data: Array(model.parameter(name)))
            }
        }
        return try GGUFFile(bytes: w.serialized(), name: "tiny.gguf")
    }

    func testConfigFromHandWrittenMetadata() throws {
        XCTAssertEqual(try tinyFile().llamaConfig(), tinyConfig)
        // Defaults: no head_count_kv -> one KV head per head; no freq_base -> 10000.
        var w = GGUFWriter()
        for (k, v) in try tinyFile().metadata where k != "llama.attention.head_count_kv" && k != "llama.rope.freq_base" { w.set(k, v) }
        let c = try GGUFFile(bytes: w.serialized(), name: "d.gguf").llamaConfig()
        XCTAssertEqual(c.nKVHeads, 4)
        XCTAssertEqual(c.ropeBase, 10000)
        XCTAssertTrue(c.tiedEmbedding)  // no output.weight
    }

    func testConfigErrors() throws {
        assertGGUFError(try tinyFile { w, _ in w.set("general.architecture", .string("gpt2")) }.llamaConfig()) {
            $0 == .unsupportedArchitecture(file: "tiny.gguf", architecture: "gpt2")
        }
        assertGGUFError(try tinyFile { w, _ in w.set("llama.embedding_length", .string("16")) }.llamaConfig()) {
            if case .wrongValueType(_, "llama.embedding_length", _, "string") = $0 { return true } else { return false }
        }
        assertGGUFError(try tinyFile { w, _ in w.set("llama.attention.head_count_kv", .uint32(3)) }.llamaConfig()) {
            if case .invalidMetadata(_, "llama.attention.head_count_kv", _) = $0 { return true } else { return false }
        }
        assertGGUFError(try tinyFile { w, _ in w.set("llama.vocab_size", .uint32(41)) }.llamaConfig()) {
            if case .invalidMetadata(_, "llama.vocab_size", _) = $0 { return true } else { return false }
        }
        assertGGUFError(try tinyFile { w, _ in w.set("llama.rope.dimension_count", .uint32(2)) }.llamaConfig()) {
            if case .invalidMetadata(_, "llama.rope.dimension_count", _) = $0 { return true } else { return false }
        }
        assertGGUFError(try tinyFile { w, _ in w.set("llama.block_count", .int32(0)) }.llamaConfig()) {
            if case .invalidMetadata(_, "llama.block_count", _) = $0 { return true } else { return false }
        }
        var w = GGUFWriter()
        for (k, v) in try tinyFile().metadata where k != "llama.context_length" { w.set(k, v) }
        assertGGUFError(try GGUFFile(bytes: w.serialized(), name: "m.gguf").llamaConfig()) {
            $0 == .missingKey(file: "m.gguf", key: "llama.context_length")
        }
    }

    /// Every bad file fails `loadWeights` with its error, leaving the model untouched, and fails
    /// `checkWeights` (what validating a run's inputs calls, without a model) with the same error.
    func testLoadWeightsErrorsLeaveTheModelUntouched() throws {
        let target = tinyModel(seed: 99)
        let before = Array(target.parameters)

        // Shape disagreeing with the metadata: attn_k stored as [16, 16] instead of [8, 16].
        let wrongShape = try tinyFile { w, m in
            for (name, shape) in m.parameterTable {
                let dims = name == "blk.1.attn_k.weight" ? [16, 16] : Array(shape.reversed())
                w.addTensor(name, dimensions: dims, type: .f32, data: [Float](repeating: 0.5, count: dims.reduce(1, *)))
            }
        }
        assertGGUFError(try wrongShape.loadWeights(into: target)) {
            $0 == .shapeMismatch(file: "tiny.gguf", tensor: "blk.1.attn_k.weight", expected: [8, 16], found: [16, 16])
        }
        assertGGUFError(try wrongShape.checkWeights(for: target.config)) {
            $0 == .shapeMismatch(file: "tiny.gguf", tensor: "blk.1.attn_k.weight", expected: [8, 16], found: [16, 16])
        }
        XCTAssertEqual(GGUFError.shapeMismatch(file: "tiny.gguf", tensor: "blk.1.attn_k.weight", expected: [8, 16], found: [16, 16]).description,
                       "tiny.gguf: tensor 'blk.1.attn_k.weight' has shape [16, 16], expected [8, 16]")

        let missing = try tinyFile { w, m in
            for (name, shape) in m.parameterTable where name != "blk.0.ffn_up.weight" {
                w.addTensor(name, dimensions: shape.reversed(), type: .f32, data: Array(m.parameter(name)))
            }
        }
        assertGGUFError(try missing.loadWeights(into: target)) { $0 == .missingTensor(file: "tiny.gguf", tensor: "blk.0.ffn_up.weight") }
        assertGGUFError(try missing.checkWeights(for: target.config)) { $0 == .missingTensor(file: "tiny.gguf", tensor: "blk.0.ffn_up.weight") }

        let extra = try tinyFile { w, m in
            for (name, shape) in m.parameterTable {
                w.addTensor(name, dimensions: shape.reversed(), type: .f32, data: Array(m.parameter(name)))
            }
            w.addTensor("rope_freqs.weight", dimensions: [2], type: .f32, data: [1, 1])
        }
        assertGGUFError(try extra.loadWeights(into: target)) { $0 == .unexpectedTensor(file: "tiny.gguf", tensor: "rope_freqs.weight") }
        assertGGUFError(try extra.checkWeights(for: target.config)) { $0 == .unexpectedTensor(file: "tiny.gguf", tensor: "rope_freqs.weight") }

        let otherRope = try tinyFile { w, _ in w.set("llama.rope.freq_base", .float32(500)) }
        assertGGUFError(try otherRope.loadWeights(into: target)) {
            if case .invalidMetadata(_, "llama.rope.freq_base", _) = $0 { return true } else { return false }
        }
        assertGGUFError(try otherRope.checkWeights(for: target.config)) {
            if case .invalidMetadata(_, "llama.rope.freq_base", _) = $0 { return true } else { return false }
        }

        // An untied file cannot load into a tied model.
        var untied = tinyConfig
        untied.tiedEmbedding = false
        let untiedFile = try tinyFile { w, _ in
            let m = self.tinyModel(untied)
            for (name, shape) in m.parameterTable {
                w.addTensor(name, dimensions: shape.reversed(), type: .f32, data: Array(m.parameter(name)))
            }
        }
        assertGGUFError(try untiedFile.loadWeights(into: target)) { $0 == .unexpectedTensor(file: "tiny.gguf", tensor: "output.weight") }
        assertGGUFError(try untiedFile.checkWeights(for: target.config)) { $0 == .unexpectedTensor(file: "tiny.gguf", tensor: "output.weight") }

        assertSameFloats(target.parameters, before)
        try tinyFile().checkWeights(for: target.config)
        try tinyFile().loadWeights(into: target)
        let reference = tinyModel()  // keep it alive: `parameters` points into its storage
        withExtendedLifetime(reference) { assertSameFloats(target.parameters, reference.parameters) }
    }
}
