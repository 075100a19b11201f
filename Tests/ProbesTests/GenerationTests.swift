import Base
import Foundation
import XCTest
@testable import Probes
import Model
import Tokenizer

final class GenerationTests: XCTestCase {
    /// The test generator (Sources/alignscope-test-generator), built beside the test bundle.
    private var generator: String {
        let name = "alignscope-test-generator"
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [Bundle(for: GenerationTests.self).bundleURL.deletingLastPathComponent().appendingPathComponent(name),
                          Bundle.main.bundleURL.appendingPathComponent(name), root.appendingPathComponent(".build/release/\(name)")]
        return (candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]).path
    }

    private func requireGenerator() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: generator), "\(generator) not built (swift build --build-tests builds it)")
    }

    private func runs(_ counter: String) -> Int {
        ((try? String(contentsOfFile: counter, encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    func testInstructionFillsTextAndPromptOnce() {
        let r = GenerationRequest(id: 0, prompt: [user("first"), assistant("ok"), user("Why {text}?")], text: "a {prompt} b",
                                  template: "Paraphrase {text} | {prompt} | {other}", seed: 0)
        XCTAssertEqual(r.instruction, "Paraphrase a {prompt} b | Why {text}? | {other}")
    }

    func testExternalCommandIsRunOnceThenCachedWithItsOrigin() throws {
        try requireGenerator()
        let dir = try temporaryDirectory(self)
        let counter = dir.appendingPathComponent("runs.txt").path
        let cachePath = dir.appendingPathComponent("cache/generated.json").path
        let examples = syntheticExamples(4)
        let spec = GeneratorSpec(backend: .command([generator, counter]), template: "Paraphrase: {text}",
                                 field: "rejected", seed: 7)
        let categories: [String: CategorySource] = ["chosen": .field("chosen"), "paraphrased_rejected": .generate(spec)]
        func build(_ categories: [String: CategorySource]) throws -> ProbeSet {
            try ProbeSet.build(examples: examples, categories: categories, seed: 0, trainPrompts: [],
                               tokenizer: WordTokenizer(), generation: GenerationOptions(cachePath: cachePath))
        }
        let first = try build(categories)
        XCTAssertEqual(runs(counter), 1)
        let origin = "generated:command=\(generator):template=\(SHA256.hex("Paraphrase: {text}").prefix(8)):seed=7"
        for p in first.probes {
            XCTAssertEqual(p.response("paraphrased_rejected"),
                           ProbeResponse(category: "paraphrased_rejected", text: "PARAPHRASE: ANSWER \(p.idx) BAD #7", origin: origin))
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: cachePath))
        XCTAssertEqual(try GenerationCache(path: cachePath).count, 4)

        // Second build: everything comes from the cache, the command does not run.
        XCTAssertEqual(try build(categories), first)
        XCTAssertEqual(runs(counter), 1)

        // Another seed is another generation; one more probe runs only the new request.
        var reseeded = spec
        reseeded.seed = 8
        _ = try build(["g": .generate(reseeded)])
        XCTAssertEqual(runs(counter), 2)
        XCTAssertEqual(try GenerationCache(path: cachePath).count, 8)
    }

    func testGeneratorWithoutFieldSeesThePrompt() throws {
        try requireGenerator()
        let dir = try temporaryDirectory(self)
        let counter = dir.appendingPathComponent("runs.txt").path
        let spec = GeneratorSpec(backend: .command([generator, counter]), template: "{text}", seed: 1)
        let set = try ProbeSet.build(examples: syntheticExamples(2), categories: ["variant": .generate(spec)], seed: 0,
                                     trainPrompts: [], tokenizer: WordTokenizer())
        XCTAssertEqual(set.probes.map { $0.responses[0].text }, ["QUESTION 0? #1", "QUESTION 1? #1"])
    }

    func testCommandFailuresNameTheCommandAndLine() throws {
        try requireGenerator()
        let dir = try temporaryDirectory(self)
        let counter = dir.appendingPathComponent("runs.txt").path
        let requests = (0..<3).map { GenerationRequest(id: $0, prompt: [user("q\($0)")], text: "t\($0)", template: "{text}", seed: 0) }
        let name = "\(generator) \(counter)"
        assertProbesError(.commandFailed(command: name + " --fail", reason: "exit status 3: model not available")) {
            try ExternalCommandGenerator(argv: [generator, counter, "--fail"]).generate(requests)
        }
        XCTAssertThrowsError(try ExternalCommandGenerator(argv: [generator, counter, "--garbage"]).generate(requests)) {
            guard case let .commandOutput(command, line, reason)? = $0 as? ProbesError else { return XCTFail("\($0)") }
            XCTAssertEqual(command, name + " --garbage")
            XCTAssertEqual(line, 3)
            XCTAssertTrue(reason.hasPrefix("invalid JSON"), reason)
        }
        assertProbesError(.commandFailed(command: name + " --drop-last", reason: "no answer for id 2 (2 of 3 answered)")) {
            try ExternalCommandGenerator(argv: [generator, counter, "--drop-last"]).generate(requests)
        }
        assertProbesError(.commandFailed(command: "no-such-generator-xyz", reason: "no-such-generator-xyz not found in PATH")) {
            try ExternalCommandGenerator(argv: ["no-such-generator-xyz"]).generate(requests)
        }
        XCTAssertEqual(try ExternalCommandGenerator(argv: [generator, counter]).generate(requests),
                       ["T0 #0", "T1 #0", "T2 #0"])
    }

    func testCorruptCacheIsAnError() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("c.json").path
        try Data("{\"entries\": 3}".utf8).write(to: URL(fileURLWithPath: path))
        assertProbesError(.cache(file: path, reason: "expected {\"version\":1,\"entries\":{...}}")) { try GenerationCache(path: path) }
    }

    /// The model generator on the tiny preset: sampled text, seeded, cached, with its origin.
    func testModelGeneratorOnTheTinyModel() throws {
        let dir = try temporaryDirectory(self)
        let cachePath = dir.appendingPathComponent("gen.json").path
        var loads = 0
        let model = LlamaModel(config: .tiny(), maxTokens: 64)
        model.initializeRandom(seed: 1)
        let options = GenerationOptions(cachePath: cachePath) { path in
            XCTAssertEqual(path, "models/tiny.gguf")
            loads += 1
            return GeneratorModel(model: model, tokenizer: ByteTokenizer(), addsBOS: true)
        }
        let spec = GeneratorSpec(backend: .model("models/tiny.gguf"), template: "Paraphrase the following text: {text}",
                                 field: "rejected", seed: 4, temperature: 0.8, topP: 0.95, maxTokens: 6, chatTemplate: "hh")
        func build() throws -> ProbeSet {
            try ProbeSet.build(examples: syntheticExamples(3), categories: ["paraphrased_rejected": .generate(spec)], seed: 0,
                               trainPrompts: [], tokenizer: ByteTokenizer(), generation: options)
        }
        let set = try build()
        XCTAssertEqual(loads, 1)
        let template = SHA256.hex("Paraphrase the following text: {text}").prefix(8)
        for p in set.probes {
            XCTAssertEqual(p.responses[0].origin,
                           "generated:model=tiny.gguf:template=\(template):temperature=0.8:top_p=0.95:max_tokens=6:seed=4")
            XCTAssertLessThanOrEqual(ByteTokenizer().encode(p.responses[0].text).count, 6 * 3, "at most 6 byte tokens (each may decode to U+FFFD)")
        }
        // Probe 1 by hand: BOS + the HH rendering of the filled template as a user turn, sampled with the spec's settings.
        let tokenizer = ByteTokenizer()
        let prompt = [tokenizer.bos!] + tokenizer.encode(ChatTemplate.hh.prompt([user("Paraphrase the following text: answer 1 bad")]))
        let session = InferenceSession(model: model, capacity: prompt.count + 6)
        let ids = Model.generate(session: session, prompt: prompt,
                                 options: SamplingOptions(maxTokens: 6, temperature: 0.8, topP: 0.95, seed: 4, stop: [tokenizer.eos])) { _ in true }
        XCTAssertEqual(set.probes[1].responses[0].text, tokenizer.decode(ids))
        XCTAssertEqual(try build(), set, "second build comes from the cache")
        XCTAssertEqual(loads, 1, "the model is not loaded when everything is cached")
    }
}
