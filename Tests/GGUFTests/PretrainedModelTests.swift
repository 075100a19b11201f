import Foundation
import XCTest
import Model
import Tokenizer
@testable import GGUF

final class PretrainedModelTests: XCTestCase {
    /// Byte-level tokens for printable ASCII (space is "Ġ"), then the control token "<|end|>" (95) and "ab" (96).
    static let tokens: [String] = ["Ġ"] + (0x21...0x7e).map { String(UnicodeScalar(UInt8($0))) } + ["<|end|>", "ab"]
    static func id(_ s: String) -> Int32 { Int32(tokens.firstIndex(of: s)!) }

    /// A tokenizer-only GGUF built in memory; `edit` may change or remove keys first.
    func tokenizerFile(_ edit: (inout [String: GGUFValue]) -> Void = { _ in }) throws -> GGUFFile {
        var kv: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("gpt2"),
            "tokenizer.ggml.pre": .string("gpt2"),
            "tokenizer.ggml.tokens": .array(Self.tokens.map { .string($0) }),
            "tokenizer.ggml.token_type": .array(Self.tokens.map { .int32($0 == "<|end|>" ? 3 : 1) }),
            "tokenizer.ggml.merges": .array([.string("a b")]),
            "tokenizer.ggml.eos_token_id": .uint32(95),
        ]
        edit(&kv)
        var w = GGUFWriter()
        for k in kv.keys.sorted() { w.set(k, kv[k]!) }
        return try GGUFFile(bytes: w.serialized(), name: "tok.gguf")
    }

    func testTokenizerFromMetadata() throws {
        let t = try tokenizerFile().tokenizer()
        XCTAssertEqual(t.vocabSize, 97)
        XCTAssertEqual(Self.id("<|end|>"), 95)
        XCTAssertEqual(t.eos, 95)
        XCTAssertNil(t.bos)
        XCTAssertEqual(t.encode("abab<|end|> b"), [96, 96, 95, 0, Self.id("b")])
        XCTAssertEqual(t.decode([96, Self.id("a"), 95]), "aba<|end|>")
        // Optional keys: no token types, no pre-tokenizer name ("default"), a BOS id.
        let u = try tokenizerFile {
            $0["tokenizer.ggml.token_type"] = nil
            $0["tokenizer.ggml.pre"] = nil
            $0["tokenizer.ggml.bos_token_id"] = .uint32(5)
        }.tokenizer()
        XCTAssertEqual(u.bos, 5)
        XCTAssertEqual(u.encode("ab"), [96])
    }

    func testTokenizerErrorsNameFileAndKey() throws {
        assertGGUFError(try tokenizerFile { $0["tokenizer.ggml.model"] = .string("llama") }.tokenizer()) {
            if case .invalidMetadata("tok.gguf", "tokenizer.ggml.model", _) = $0 { return true } else { return false }
        }
        assertGGUFError(try tokenizerFile { $0["tokenizer.ggml.eos_token_id"] = nil }.tokenizer()) {
            $0 == .missingKey(file: "tok.gguf", key: "tokenizer.ggml.eos_token_id")
        }
        assertGGUFError(try tokenizerFile { $0["tokenizer.ggml.eos_token_id"] = .uint32(97) }.tokenizer()) {
            if case .invalidMetadata("tok.gguf", "tokenizer.ggml.eos_token_id", _) = $0 { return true } else { return false }
        }
        assertGGUFError(try tokenizerFile { $0["tokenizer.ggml.merges"] = .array([.int32(1)]) }.tokenizer()) {
            if case .wrongValueType("tok.gguf", "tokenizer.ggml.merges", _, _) = $0 { return true } else { return false }
        }
        assertGGUFError(try tokenizerFile { $0["tokenizer.ggml.pre"] = .string("no-such-pre") }.tokenizer()) {
            $0 == .invalidTokenizer(file: "tok.gguf", error: .unknownPreTokenizer(name: "no-such-pre"))
        }
        XCTAssertTrue(GGUFError.invalidTokenizer(file: "tok.gguf", error: .unknownPreTokenizer(name: "x")).description.hasPrefix("tok.gguf: "))
    }

    /// The default model, loaded in one call, scores the reference pairs of scripts/make-reference.py
    /// (transformers, float32) within |diff| <= 0.02 + 0.001 |reference|, with the same token ids.
    /// `validate` (what a run's input check calls) reads what `load` reads, without building the model.
    func testValidateGivesTheTokenizerAndConfigurationOfLoad() throws {
        let (tokenizer, config) = try PretrainedModel.validate(path: realModelPath())
        XCTAssertEqual(config, RealModelMappingTests.smolLM2)
        XCTAssertEqual(tokenizer.vocabSize, 49152)
        XCTAssertEqual(tokenizer.encode("Hello, world"), try PretrainedModel.load(path: realModelPath(), maxTokens: 1).tokenizer.encode("Hello, world"))
    }

    func testLoadScoresLikeTheReference() throws {
        struct Fixture: Decodable {
            struct Pair: Decodable {
                var kind: String, prompt: String, response: String
                var prompt_ids: [Int32], response_ids: [Int32], logprobs: [Double], logprob: Double
            }
            var pairs: [Pair]
        }
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: fixtureURL("reference-logprobs.json")))
        XCTAssertGreaterThanOrEqual(fixture.pairs.count, 10)
        let totalTokens = fixture.pairs.reduce(0) { $0 + $1.prompt_ids.count + $1.response_ids.count }

        let (model, tokenizer, config) = try PretrainedModel.load(path: realModelPath(), maxTokens: totalTokens)
        XCTAssertEqual(config, RealModelMappingTests.smolLM2)
        XCTAssertEqual(tokenizer.vocabSize, 49152)
        XCTAssertEqual(tokenizer.bos, 1)
        XCTAssertEqual(tokenizer.eos, 2)

        var pairs: [(context: [Int32], continuation: [Int32])] = []
        for p in fixture.pairs {
            XCTAssertEqual(tokenizer.encode(p.prompt), p.prompt_ids, "prompt ids of \(p.kind) pair \(p.prompt.debugDescription)")
            XCTAssertEqual(tokenizer.encode(p.response), p.response_ids, "response ids of \(p.kind) pair \(p.response.debugDescription)")
            pairs.append((p.prompt_ids, p.response_ids))
        }
        let batch = TokenBatch.scoring(pairs)
        let logprobs = model.forward(batch, training: false)
        for (s, p) in fixture.pairs.enumerated() {
            // Response token k is scored at position start + |prompt| - 1 + k.
            let first = batch.sequenceStarts[s] + p.prompt_ids.count - 1
            let sum = (0..<p.response_ids.count).reduce(0.0) { $0 + Double(logprobs[first + $1]) }
            XCTAssertEqual(sum, p.logprob, accuracy: 0.02 + 0.001 * abs(p.logprob), "\(p.kind): \(p.prompt.prefix(40).debugDescription)")
        }
    }
}
