import Base
import Foundation
@testable import GGUF
@testable import HFModels
import Model
import Tokenizer
import XCTest

/// Hugging Face directories made by scripts/make-hf-fixtures.py with transformers (random weights, our own
/// small BPE tokenizers): our reading of config, safetensors and tokenizer.json against transformers'
/// token ids and logits (reference.json).
final class HFModelTests: XCTestCase {
    struct Reference: Decodable {
        struct Text: Decodable {
            var text: String
            var ids: [Int32]
            var logits: [[Double]]?
        }
        struct Model: Decodable {
            var tokenizer_style: String
            var dtype: String
            var tied: Bool
            var strings: [Text]
            var prompts: [Text]
        }
        var models: [String: Model]
    }

    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path

    func reference() throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/reference.json")))
    }

    func testTokenizerJSONGivesTransformersIDs() throws {
        let ref = try reference()
        XCTAssertEqual(Set(ref.models.keys), ["llama-tiny", "llama-tiny-bf16-sharded", "qwen2-tiny", "gpt-neox-tiny", "gpt-neox-tiny-sequential"])
        for (name, model) in ref.models {
            let dir = try HFModelDirectory(path: Self.fixtures + "/" + name)
            XCTAssertEqual(dir.tokenizer.vocabSize, dir.config.vocabSize)
            XCTAssertEqual(dir.tokenizer.decode([dir.tokenizer.eos]), name.hasPrefix("gpt-neox") ? "<|endoftext|>" : "<|im_end|>", name)
            for s in model.strings + model.prompts {
                XCTAssertEqual(dir.tokenizer.encode(s.text), s.ids, "\(name) (\(model.tokenizer_style)): \(s.text.debugDescription)")
                // qwen2's tokenizer normalises to NFC (decomposed accents come back composed)
                XCTAssertEqual(dir.tokenizer.decode(s.ids), name == "qwen2-tiny" ? s.text.precomposedStringWithCanonicalMapping : s.text, name)
            }
        }
    }

    /// Our forward pass on the directory's weights against transformers' float32 logits: log-softmax at
    /// every position within 1e-4 (F32 one file, tied head; BF16 in three shards, untied head, another rope_theta;
    /// qwen2's biases; GPT-NeoX parallel with RoPE on a quarter of each head, and sequential in F16 with half).
    func testForwardMatchesTransformers() throws {
        let ref = try reference()
        for (name, model) in ref.models.sorted(by: { $0.key < $1.key }) {
            let dir = try HFModelDirectory(path: Self.fixtures + "/" + name)
            XCTAssertEqual(dir.config.tiedEmbedding, model.tied, name)
            let llama = try dir.load(maxTokens: 64)
            var worst = 0.0
            for prompt in model.prompts {
                let logits = try XCTUnwrap(prompt.logits)
                let session = BatchSession(model: llama, slots: 64, context: 64)
                session.append([BatchSession.Segment(start: 0, tokens: prompt.ids)])
                for (position, row) in logits.enumerated() {
                    let m = row.max()!
                    let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
                    let ours = session.logSoftmax(at: position)
                    XCTAssertEqual(ours.count, row.count)
                    for v in row.indices {
                        let d = abs(Double(ours[v]) - (row[v] - lse))
                        if !(d <= worst) { worst = d }  // NaN propagates as a failure
                    }
                }
            }
            XCTAssertLessThan(worst, 1e-4, "\(name): worst |log p - transformers|")
            XCTAssertGreaterThan(model.prompts.count, 0)
        }
    }

    /// A qwen2 GGUF laid out as llama.cpp's converter writes one (Q/K in half-split order, pre-tokenizer qwen2):
    /// the same ids (with NFC) and log-probabilities as transformers, and the same weights as the directory.
    func testAQwen2GGUFReadsAsTheDirectory() throws {
        let ref = try XCTUnwrap(try reference().models["qwen2-tiny"])
        let gguf = try PretrainedModel.load(path: Self.fixtures + "/qwen2-tiny.gguf", maxTokens: 64)
        XCTAssertTrue(gguf.config.qkvBias)
        for s in ref.strings + ref.prompts { XCTAssertEqual(gguf.tokenizer.encode(s.text), s.ids, s.text.debugDescription) }
        let dir = try HFModelDirectory(path: Self.fixtures + "/qwen2-tiny")
        XCTAssertEqual(gguf.config, dir.config)
        let model = try dir.load(maxTokens: 64)
        for (name, _) in model.parameterTable {
            XCTAssertEqual(Array(gguf.model.parameter(name)).map(\.bitPattern), Array(model.parameter(name)).map(\.bitPattern), name)
        }
        try assertGGUFExportReproduces(Self.fixtures + "/qwen2-tiny.gguf")
    }

    /// The GPT-NeoX directories read as the block they describe.
    func testGPTNeoXConfigs() throws {
        let parallel = try HFModelDirectory(path: Self.fixtures + "/gpt-neox-tiny").config
        XCTAssertEqual(parallel.block, .gptNeoX)
        XCTAssertTrue(parallel.parallelResidual && parallel.qkvBias && !parallel.tiedEmbedding)
        XCTAssertEqual(parallel.rotaryDims, 4)
        XCTAssertEqual(parallel.nKVHeads, 4)
        let sequential = try HFModelDirectory(path: Self.fixtures + "/gpt-neox-tiny-sequential").config
        XCTAssertFalse(sequential.parallelResidual)
        XCTAssertEqual(sequential.rotaryDims, 8)
        XCTAssertEqual(sequential.ropeBase, 20000)
    }

    /// A gptneox GGUF laid out as llama.cpp's converter writes one (Q|K|V regrouped, Q/K half-split, partial
    /// RoPE in `gptneox.rope.dimension_count`): the same configuration, ids and weights as its directory.
    func testAGPTNeoXGGUFReadsAsTheDirectory() throws {
        let ref = try XCTUnwrap(try reference().models["gpt-neox-tiny"])
        let gguf = try PretrainedModel.load(path: Self.fixtures + "/gpt-neox-tiny.gguf", maxTokens: 64)
        for s in ref.strings + ref.prompts { XCTAssertEqual(gguf.tokenizer.encode(s.text), s.ids, s.text.debugDescription) }
        let dir = try HFModelDirectory(path: Self.fixtures + "/gpt-neox-tiny")
        XCTAssertEqual(gguf.config, dir.config)
        let model = try dir.load(maxTokens: 64)
        for (name, _) in model.parameterTable {
            XCTAssertEqual(Array(gguf.model.parameter(name)).map(\.bitPattern), Array(model.parameter(name)).map(\.bitPattern), name)
        }
        try assertGGUFExportReproduces(Self.fixtures + "/gpt-neox-tiny.gguf")
    }

    /// Our GGUF export of a model read from a GGUF in llama.cpp's layout writes that layout back: the same
    /// architecture and hyper-parameter keys, and every tensor equal to the original file's, bit for bit
    /// (Q/K rows back in half-split order, Q|K|V as llama.cpp's converter groups it).
    func assertGGUFExportReproduces(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let original = try GGUFFile(path: path)
        let loaded = try PretrainedModel.load(path: path, maxTokens: 16)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try exportGGUF(model: loaded.model, tokenizerFrom: original, path: out, type: .f32)
        let exported = try GGUFFile(path: out)
        let architecture = try original.string(GGUFKeys.architecture)
        XCTAssertEqual(try exported.string(GGUFKeys.architecture), architecture, file: file, line: line)
        for key in original.metadataKeys where key.hasPrefix(architecture + ".") {
            XCTAssertEqual(exported.metadata[key].map { "\($0)" }, "\(original.metadata[key]!)", key, file: file, line: line)
        }
        XCTAssertEqual(try exported.llamaConfig(), loaded.config, file: file, line: line)
        for (name, shape) in loaded.model.parameterTable {
            let count = shape.reduce(1, *)
            var a = [Float](repeating: 0, count: count), b = [Float](repeating: 1, count: count)
            try a.withUnsafeMutableBufferPointer { try original.dequantize(name, into: $0) }
            try b.withUnsafeMutableBufferPointer { try exported.dequantize(name, into: $0) }
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), name, file: file, line: line)
        }
    }

    /// A reward model (a model with `reward_head.weight`) exports to GGUF with its head as the extra tensor and
    /// loads back as a reward model with the same weights, bit for bit; a Hugging Face export is refused.
    func testARewardModelExportsToGGUFAndLoadsBack() throws {
        for fixture in ["qwen2-tiny.gguf", "gpt-neox-tiny.gguf"] {
            let path = Self.fixtures + "/" + fixture
            let model = try PretrainedModel.load(path: path, maxTokens: 16).model.withRewardHead(seed: 9)
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("rm-\(UUID().uuidString).gguf").path
            defer { try? FileManager.default.removeItem(atPath: out) }
            try exportGGUF(model: model, tokenizerFrom: try GGUFFile(path: path), path: out, type: .f32)
            let back = try PretrainedModel.load(path: out, maxTokens: 16)
            XCTAssertTrue(back.config.rewardHead)
            XCTAssertEqual(back.model.parameterTable.last?.name, "reward_head.weight")
            XCTAssertEqual(Array(back.model.parameters).map(\.bitPattern), Array(model.parameters).map(\.bitPattern), fixture)
            XCTAssertThrowsError(try HFExport.write(model: model, files: .from(directory: Self.fixtures + "/qwen2-tiny"), to: out + ".hf")) { error in
                XCTAssertTrue("\(error)".contains("--format gguf"), "\(error)")
            }
        }
    }

    /// GPT-NeoX's fused Q|K|V: rows per head (q_h, k_h, v_h) regroup into all q, all k, all v and back.
    func testQKVRegrouping() {
        // 2 heads of size 2, 1 column: their rows q0 q0 k0 k0 v0 v0 q1 q1 k1 k1 v1 v1.
        let theirs: [Float] = [0, 1, 10, 11, 20, 21, 2, 3, 12, 13, 22, 23]
        var w = theirs
        w.withUnsafeMutableBufferPointer { GPTNeoXArchitecture.regroupQKV($0, heads: 2, headDim: 2, columns: 1, toPerHead: false) }
        XCTAssertEqual(w, [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23])
        w.withUnsafeMutableBufferPointer { GPTNeoXArchitecture.regroupQKV($0, heads: 2, headDim: 2, columns: 1, toPerHead: true) }
        XCTAssertEqual(w, theirs)
    }

    /// The rotary row permutation: transformers' half-split order becomes adjacent pairs, head by head.
    func testRotaryPermutationMovesRowsPairwise() {
        // 2 heads of size 4, 1 column: their rows h*4 + [0,1,2,3] are (x0, x1, y0, y1) pairs split in halves.
        var w: [Float] = [0, 1, 2, 3, 10, 11, 12, 13]
        w.withUnsafeMutableBufferPointer { RotaryLayout.permute($0, heads: 2, headDim: 4, columns: 1) }
        XCTAssertEqual(w, [0, 2, 1, 3, 10, 12, 11, 13])
        // Partial RoPE (GPT-NeoX): only the first 4 of each head's 6 rows are rotary; the rest stay.
        var p: [Float] = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]
        p.withUnsafeMutableBufferPointer { RotaryLayout.permute($0, heads: 2, headDim: 6, rotaryDims: 4, columns: 1) }
        XCTAssertEqual(p, [0, 2, 1, 3, 4, 5, 10, 12, 11, 13, 14, 15])
        p.withUnsafeMutableBufferPointer { RotaryLayout.permute($0, heads: 2, headDim: 6, rotaryDims: 4, columns: 1, inverse: true) }
        XCTAssertEqual(p, [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15])
    }

    // MARK: bad directories: one line naming the file and what was expected

    func copyFixture(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hf-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: Self.fixtures + "/" + name, toPath: dir)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func assertRefused(_ dir: String, _ needles: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try HFModelDirectory(path: dir)
            XCTFail("accepted", file: file, line: line)
        } catch {
            let text = error.description
            XCTAssertFalse(text.contains("\n"), text, file: file, line: line)
            for needle in needles { XCTAssertTrue(text.contains(needle), "\(text) lacks \(needle)", file: file, line: line) }
        }
    }

    func edit(_ path: String, _ body: (inout String) -> Void) throws {
        var text = try String(contentsOfFile: path, encoding: .utf8)
        body(&text)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    func testBadDirectoriesAreRefusedWithTheFileNamed() throws {
        var dir = try copyFixture("llama-tiny")
        try edit(dir + "/config.json") { $0 = $0.replacingOccurrences(of: "\"llama\"", with: "\"mamba\"") }
        assertRefused(dir, ["config.json", "model_type", "mamba", "supported: llama"])

        dir = try copyFixture("llama-tiny")
        try FileManager.default.removeItem(atPath: dir + "/tokenizer.json")
        assertRefused(dir, ["tokenizer.json", "missing"])

        dir = try copyFixture("llama-tiny")
        try edit(dir + "/config.json") { $0 = $0.replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": 3") }
        assertRefused(dir, ["model.layers.2", "missing"])

        dir = try copyFixture("llama-tiny")
        try edit(dir + "/config.json") { $0 = $0.replacingOccurrences(of: "\"intermediate_size\": 128", with: "\"intermediate_size\": 96") }
        assertRefused(dir, ["model.safetensors", "mlp.gate_proj.weight", "shape [128, 64], expected [96, 64]"])

        dir = try copyFixture("llama-tiny")
        try edit(dir + "/config.json") { $0 = $0.replacingOccurrences(of: "\"rope_type\": \"default\"", with: "\"rope_type\": \"yarn\"") }
        assertRefused(dir, ["config.json", "rope_parameters.rope_type", "yarn"])

        dir = try copyFixture("llama-tiny")
        try edit(dir + "/tokenizer.json") { $0 = $0.replacingOccurrences(of: "\"use_regex\": true", with: "\"use_regex\": false") }
        assertRefused(dir, ["tokenizer.json", "pre_tokenizer"])

        dir = try copyFixture("qwen2-tiny")
        try edit(dir + "/config.json") { $0 = $0.replacingOccurrences(of: "\"use_sliding_window\": false", with: "\"use_sliding_window\": true") }
        assertRefused(dir, ["config.json", "use_sliding_window"])

        dir = try copyFixture("qwen2-tiny")
        try edit(dir + "/config.json") { $0 = $0.replacingOccurrences(of: "\"model_type\": \"qwen2\"", with: "\"model_type\": \"llama\"") }
        assertRefused(dir, ["model.safetensors", "_proj.bias", "unexpected tensor for a 2-layer llama"])

        dir = try copyFixture("gpt-neox-tiny")
        try edit(dir + "/config.json") { $0 = $0.replacingOccurrences(of: "\"hidden_act\": \"gelu\"", with: "\"hidden_act\": \"gelu_fast\"") }
        assertRefused(dir, ["config.json", "hidden_act", "gelu_fast"])

        dir = try copyFixture("gpt-neox-tiny")
        try edit(dir + "/config.json") { $0 = $0.replacingOccurrences(of: "\"partial_rotary_factor\": 0.25", with: "\"partial_rotary_factor\": 0.1") }
        assertRefused(dir, ["config.json", "rotary_pct", "1 rotary dimensions"])

        dir = try copyFixture("gpt-neox-tiny")
        try edit(dir + "/config.json") { $0 = $0.replacingOccurrences(of: "\"attention_bias\": true", with: "\"attention_bias\": false") }
        assertRefused(dir, ["config.json", "attention_bias"])

        dir = try copyFixture("llama-tiny-bf16-sharded")
        try FileManager.default.removeItem(atPath: dir + "/model-00002-of-00003.safetensors")
        assertRefused(dir, ["model-00002-of-00003.safetensors"])

        // a truncated weights file: its header runs past the end
        dir = try copyFixture("llama-tiny")
        let weights = try Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors"))
        try weights.prefix(100).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        assertRefused(dir, ["model.safetensors", "header length"])

        // a tensor stored as I32
        dir = try copyFixture("llama-tiny")
        var bytes = [UInt8](weights)
        let headerLength = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        var header = String(decoding: bytes[8..<8 + headerLength], as: UTF8.self)
        let range = try XCTUnwrap(header.range(of: "\"F32\""))
        header.replaceSubrange(range, with: "\"I32\"")
        bytes.replaceSubrange(8..<8 + headerLength, with: Array(header.utf8))
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        assertRefused(dir, ["model.safetensors", "dtype I32 is not supported"])
    }

    /// Export -> load (ours): the same parameters bit for bit (the Q/K permutation undone and redone), the
    /// original config with dtype float32 and the tokenizer files copied; an existing --out is never replaced.
    func testExportRoundTripsBitForBit() throws {
        for name in ["llama-tiny-bf16-sharded", "qwen2-tiny", "gpt-neox-tiny", "gpt-neox-tiny-sequential"] { try exportRoundTrip(name) }
    }

    func exportRoundTrip(_ fixture: String) throws {
        let source = try HFModelDirectory(path: Self.fixtures + "/" + fixture)
        let model = try source.load(maxTokens: 16)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("hf-export-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try HFExport.write(model: model, files: .from(directory: source.path), to: out)
        let back = try HFModelDirectory(path: out)
        XCTAssertEqual(back.config, source.config)
        let reloaded = try back.load(maxTokens: 16)
        for (name, _) in model.parameterTable {
            XCTAssertEqual(Array(reloaded.parameter(name)).map(\.bitPattern), Array(model.parameter(name)).map(\.bitPattern), name)
        }
        XCTAssertEqual(try String(contentsOfFile: out + "/tokenizer.json", encoding: .utf8),
                       try String(contentsOfFile: source.path + "/tokenizer.json", encoding: .utf8))
        let config = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"dtype\":\"float32\""), config)
        XCTAssertEqual(back.shards.values.map(\.path).reduce(into: Set<String>()) { $0.insert($1) }, [out + "/model.safetensors"])
        XCTAssertEqual(Set(back.shards.values.flatMap { $0.tensors.values.map(\.dtype) }), ["F32"])
        // no temporary directory is left beside it, and a second export to the same place is refused
        let parent = (out as NSString).deletingLastPathComponent
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: parent).contains { $0.hasPrefix("." + (out as NSString).lastPathComponent) })
        XCTAssertThrowsError(try HFExport.write(model: model, files: .from(directory: source.path), to: out)) { error in
            XCTAssertTrue("\(error)".contains("exists"), "\(error)")
        }
    }
}
