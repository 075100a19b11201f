import Base
import Foundation
import GGUF
import HFModels
@testable import RunStore
import XCTest
@testable import Experiments

/// A run whose model is a Hugging Face directory (the llama and GPT-NeoX fixtures made by
/// scripts/make-hf-fixtures.py with transformers), trained and evaluated for real.
final class HFRunTests: XCTestCase {
    func testARunTrainsAHuggingFaceDirectory() throws {
        try trainAndCheck(fixtureName: "llama-tiny", template: "chatml")
    }

    /// Pythia's block, trained for real with the hh template (it has no chat template).
    func testARunTrainsAGPTNeoXDirectory() throws {
        try trainAndCheck(fixtureName: "gpt-neox-tiny", template: "hh")
    }

    /// The default ChatML template on a vocabulary without its markers is refused before anything runs,
    /// naming the key and the templates that fit.
    func testChatMLOnAModelWithoutItsTokensIsRefused() throws {
        XCTAssertThrowsError(try trainAndCheck(fixtureName: "gpt-neox-tiny", template: "chatml")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("template") && text.contains("\"hh\"") && text.contains("<|im_start|>"), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
    }

    /// One rule names what a model path is, for specs, the commands' --model options and bench: a directory is a
    /// Hugging Face directory, anything else a GGUF. `probes` reads its tokenizer by that rule (it used to read
    /// every --model as a GGUF): the directory's tokenizer, and the GGUF's for a .gguf fixture.
    func testModelPathKindAndTheProbeToolsTokenizer() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("HFModelsTests/Fixtures")
        let directory = fixtures.appendingPathComponent("qwen2-tiny").path, gguf = fixtures.appendingPathComponent("qwen2-tiny.gguf").path
        XCTAssertEqual(ModelPathKind.of(directory), .huggingFaceDirectory)
        XCTAssertEqual(ModelPathKind.of(gguf), .gguf)
        XCTAssertEqual(ModelPathKind.of(fixtures.appendingPathComponent("missing").path), .gguf)
        let text = "Hello, world: tokens of a probe."
        let fromDirectory = try ModelLoader.tokenizer(path: directory).encode(text)
        XCTAssertEqual(fromDirectory, try HFModelDirectory(path: directory).tokenizer.encode(text))
        XCTAssertFalse(fromDirectory.isEmpty)
        XCTAssertEqual(try ModelLoader.tokenizer(path: gguf).encode(text), try GGUFFile(path: gguf).tokenizer().encode(text))
    }

    private func trainAndCheck(fixtureName: String, template: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("alignscope-hf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("HFModelsTests/Fixtures/\(fixtureName)").path
        for name in ["tiny-train.jsonl", "tiny-probes.jsonl"] {
            try FileManager.default.copyItem(at: Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!,
                                             to: dir.appendingPathComponent(name))
        }
        let spec = """
            {
              name: "hf-tiny",
              model: { hf: "\(fixture)" },
              template: "\(template)",
              data: {
                train: { path: "tiny-train.jsonl" },
                probes: { path: "tiny-probes.jsonl", categories: { chosen: "chosen", rejected: "rejected" } },
              },
              train: { steps: 4, batch_size: 2, lr: 3e-3, max_length: 160 },
              eval: { every: 4 },
            }
            """
        try spec.write(to: dir.appendingPathComponent("spec.json5"), atomically: false, encoding: .utf8)
        let experiment = try Experiment.load(path: dir.appendingPathComponent("spec.json5").path)
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        try RunExecutor.validateInputs(of: experiment)
        let summary = try RunExecutor(experiment: experiment, store: store, checkpointRoot: dir).runAll()
        XCTAssertEqual(summary.finished.count, 1, "failed: \(summary.failed)")
        let run = try XCTUnwrap(store.run(name: experiment.runs[0].name))
        // the directory's files are fingerprinted as the run's model input
        let inputs = try store.runInputs(runID: run.id)
        XCTAssertEqual(inputs["model"]?.path, fixture)
        XCTAssertEqual(inputs["model"]?.sha256, try InputFingerprints.sha256(ofDirectory: fixture))
        // SFT on chosen raised the chosen responses of the training prompts
        let rows = try store.query("""
            SELECT step, mean_logprob FROM category_curves WHERE run_id = ? AND category = 'chosen' AND split = 'train' ORDER BY step
            """, [.integer(run.id)])
        XCTAssertEqual(rows.count, 2)
        XCTAssertGreaterThan(rows[1][1].double!, rows[0][1].double!)
    }
}
