import Base
import Foundation
import GGUF
import HFModels
import Model
import XCTest
@testable import Experiments

/// SmolLM2-135M from its GGUF, and from the Hugging Face directory our export writes from that GGUF
/// (weights dequantised to F32, tokenizer.json rebuilt from the GGUF's metadata), read back by our
/// HF reader: the same token ids and the same log-probabilities, bit for bit. (That transformers loads
/// the same directory and agrees is checked by scripts/hf-export-check.py; results in
/// docs/perf/hf-export-check.json.)
final class GGUFToHFTests: XCTestCase {
    func testSmolLM2FromGGUFAndFromItsHFExportAgree() throws {
        guard let path = ProcessInfo.processInfo.environment["ALIGNSCOPE_MODEL"], FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("ALIGNSCOPE_MODEL is not set (make test sets it)")
        }
        let gguf = try PretrainedModel.load(path: path, maxTokens: 128)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("smollm-hf-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try HFExport.write(model: gguf.model, files: GGUFToHF.files(from: GGUFFile(path: path)), to: out)
        let hf = try HFModelDirectory(path: out)
        XCTAssertEqual(hf.config, gguf.config)
        XCTAssertEqual(hf.tokenizer.eos, gguf.tokenizer.eos)
        let texts = [
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHow do I boil an egg?<|im_end|>\n<|im_start|>assistant\n",
            "Put it in boiling water for nine minutes, then cool it in cold water.<|im_end|>",
            "Numbers 1234567 and 3.14159; Ünïcödé café 日本語 🙂\n\n  indented\ttab",
            "It's we're they'll I'd, HELLO hello HeLLo",
        ]
        for text in texts { XCTAssertEqual(hf.tokenizer.encode(text), gguf.tokenizer.encode(text), text) }
        let model = try hf.load(maxTokens: 128)
        let prompt = gguf.tokenizer.encode(texts[0]), response = gguf.tokenizer.encode(texts[1])
        let a = BatchSession.scorePairs(model: gguf.model, [(prompt, response)])
        let b = BatchSession.scorePairs(model: model, [(prompt, response)])
        XCTAssertEqual(a[0].map(\.bitPattern), b[0].map(\.bitPattern))
        XCTAssertFalse(a[0].isEmpty)
    }
}

/// A gptneox GGUF (Tests/HFModelsTests/Fixtures/gpt-neox-tiny.gguf, llama.cpp's layout) exported as a Hugging
/// Face directory and read back: the GPT-NeoX config keys, the per-head Q|K|V and half-split RoPE rows written
/// as transformers keeps them, and the same weights and ids on the way back in.
final class GPTNeoXGGUFToHFTests: XCTestCase {
    func testAGPTNeoXGGUFExportsAsADirectoryOfTheSameModel() throws {
        let path = hfFixture("gpt-neox-tiny.gguf")
        let gguf = try PretrainedModel.load(path: path, maxTokens: 64)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("neox-hf-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try HFExport.write(model: gguf.model, files: GGUFToHF.files(from: GGUFFile(path: path)), to: out)
        let config = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"model_type\":\"gpt_neox\"") && config.contains("\"rotary_pct\":0.25"), config)
        let hf = try HFModelDirectory(path: out)
        XCTAssertEqual(hf.config, gguf.config)
        let model = try hf.load(maxTokens: 64)
        for (name, _) in model.parameterTable {
            XCTAssertEqual(Array(model.parameter(name)).map(\.bitPattern), Array(gguf.model.parameter(name)).map(\.bitPattern), name)
        }
        let text = "It's 12345 and café, <|endoftext|> then more"
        XCTAssertEqual(hf.tokenizer.encode(text), gguf.tokenizer.encode(text))
    }
}
