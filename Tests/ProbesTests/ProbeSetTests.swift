import Base
import XCTest
@testable import Probes
import Model
import Tokenizer

final class ProbeSetTests: XCTestCase {
    private let sixCategories: [String: CategorySource] = [
        "chosen": .field("chosen"), "rejected": .field("rejected"), "paraphrased_rejected": .field("paraphrased_rejected"),
        "random": .derive(.otherPrompt(field: "chosen")), "non_response": .field("non_response"),
        "shuffled": .derive(.shuffledWords(field: "chosen")), "greedy": .greedy(maxTokens: 16),
    ]

    func testBuildOrdersCategoriesRecordsOriginsAndSplits() throws {
        let examples = try loadExamples(path: fixturePath("audit-clean.jsonl"))
        let set = try ProbeSet.build(examples: examples, categories: sixCategories, seed: 5,
                                     trainPrompts: [[user("How fast is light?")], [user("unrelated")]], tokenizer: WordTokenizer())
        XCTAssertEqual(set.categories, ["chosen", "rejected", "paraphrased_rejected", "random", "non_response", "shuffled"])
        XCTAssertEqual(set.dynamicCategories, [DynamicCategory(category: "greedy", maxTokens: 16)])
        XCTAssertEqual(set.dynamicCategories[0].origin, "greedy:max_tokens=16")
        XCTAssertEqual(set.probes.map(\.idx), [0, 1, 2])
        XCTAssertEqual(set.probes.map(\.split), [.heldout, .train, .heldout])
        let first = set.probes[0]
        XCTAssertEqual(first.prompt, [user("How can I keep basil fresh?")])
        XCTAssertEqual(first.responses.map(\.category), set.categories)
        XCTAssertEqual(first.response("rejected"), ProbeResponse(category: "rejected", text: "Put it in the fridge.", origin: "data"))
        XCTAssertEqual(first.response("random")?.origin, "derived:other_prompt:seed=5")
        XCTAssertEqual(first.response("shuffled")?.origin, "derived:shuffled_words:seed=5")
    }

    func testSplitComparesWholeMessageLists() throws {
        let examples = [PreferenceExample(prompt: [user("a"), assistant("b"), user("c")], chosen: "x"),
                        PreferenceExample(prompt: [user("c")], chosen: "y")]
        let set = try ProbeSet.build(examples: examples, categories: ["chosen": .field("chosen")], seed: 0,
                                     trainPrompts: [[user("a"), assistant("b"), user("c")]], tokenizer: WordTokenizer())
        XCTAssertEqual(set.probes.map(\.split), [.train, .heldout])
    }

    func testOtherPromptIsADerangementOfChosenSeededAndDeterministic() throws {
        let examples = syntheticExamples(25)
        let categories: [String: CategorySource] = ["random": .derive(.otherPrompt(field: "chosen"))]
        func randoms(_ seed: UInt64) throws -> [String] {
            try ProbeSet.build(examples: examples, categories: categories, seed: seed, trainPrompts: [], tokenizer: WordTokenizer())
                .probes.map { $0.responses[0].text }
        }
        for seed in UInt64(0)..<10 {
            let texts = try randoms(seed)
            XCTAssertEqual(texts.sorted(), examples.compactMap(\.chosen).sorted(), "a permutation of the chosen responses")
            for (i, t) in texts.enumerated() { XCTAssertNotEqual(t, examples[i].chosen, "seed \(seed): probe \(i) got its own") }
        }
        XCTAssertEqual(try randoms(3), try randoms(3))
        XCTAssertNotEqual(try randoms(3), try randoms(4))
        assertProbesError(.category(name: "random", reason: "other_prompt needs at least two probes, found 1")) {
            try ProbeSet.build(examples: Array(examples.prefix(1)), categories: categories, seed: 0, trainPrompts: [],
                               tokenizer: WordTokenizer())
        }
    }

    func testOtherPromptAvoidsPartnersWithTheSameText() throws {
        var examples = syntheticExamples(6)
        examples[1].fields["chosen"] = examples[0].chosen
        examples[1].chosen = examples[0].chosen
        for seed in UInt64(0)..<20 {
            let set = try ProbeSet.build(examples: examples, categories: ["random": .derive(.otherPrompt(field: "chosen"))],
                                         seed: seed, trainPrompts: [], tokenizer: WordTokenizer())
            for p in set.probes { XCTAssertNotEqual(p.responses[0].text, examples[p.idx].chosen, "seed \(seed)") }
        }
    }

    func testShuffledWords() throws {
        let examples = syntheticExamples(8)
        let set = try ProbeSet.build(examples: examples, categories: ["s": .derive(.shuffledWords(field: "chosen"))], seed: 2,
                                     trainPrompts: [], tokenizer: WordTokenizer())
        for p in set.probes {
            let text = p.responses[0].text
            XCTAssertNotEqual(text, examples[p.idx].chosen)
            XCTAssertEqual(text.split(separator: " ").sorted(), examples[p.idx].chosen!.split(separator: " ").sorted())
        }
    }

    func testRandomTokensHaveTheSourceTokenCountAndNoControlTokens() throws {
        let sentences = ["alpha bravo charlie", "delta", "echo foxtrot golf hotel india juliet alpha bravo", "golf golf"]
        let examples = sentences.map { PreferenceExample(prompt: [user("q \($0)")], chosen: $0) }
        let tokenizer = WordTokenizer()
        let set = try ProbeSet.build(examples: examples, categories: ["noise": .derive(.randomTokens(field: "chosen"))],
                                     seed: 9, trainPrompts: [], tokenizer: tokenizer)
        var allIDs: [Int32] = []
        for p in set.probes {
            let r = p.responses[0]
            XCTAssertEqual(r.origin, "derived:random_tokens:seed=9")
            XCTAssertFalse(r.text.contains("<ctl"), "control token drawn: \(r.text)")
            let ids = tokenizer.encode(r.text)
            XCTAssertEqual(ids.count, tokenizer.encode(sentences[p.idx]).count)
            allIDs += ids
        }
        XCTAssertGreaterThan(Set(allIDs).count, 4, "draws should spread over the vocabulary")
        XCTAssertEqual(ProbeSet.randomTokenCandidates(tokenizer), Array(4..<14))
        let again = try ProbeSet.build(examples: examples, categories: ["noise": .derive(.randomTokens(field: "chosen"))],
                                       seed: 9, trainPrompts: [], tokenizer: tokenizer)
        XCTAssertEqual(again, set)
    }

    func testByteTokenizerCandidatesExcludeItsControlTokens() {
        XCTAssertEqual(ProbeSet.randomTokenCandidates(ByteTokenizer()), Array(0..<256))
    }

    /// A BPE vocabulary with ChatML control tokens: they are never drawn, ordinary tokens are.
    func testBPECandidatesExcludeControlTokens() throws {
        // GPT-2 byte-level symbols: printable bytes stand for themselves, the others for U+0100 on.
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var next = 256
        let byteSymbols = (0..<256).map { b -> String in
            let scalar = printable.contains(b) ? b : { defer { next += 1 }; return next }()
            return String(UnicodeScalar(UInt32(scalar))!)
        }
        let tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + byteSymbols + ["ab", "<b>"]
        let types = [Int32](repeating: 3, count: 3) + [Int32](repeating: 1, count: 258)
        let tokenizer = try BPETokenizer(tokens: tokens, merges: ["a b"], tokenTypes: types, pre: "gpt2", bos: 1, eos: 2)
        XCTAssertEqual(tokenizer.encode("<|im_end|>"), [2], "fixture check: control tokens are matched whole")
        XCTAssertEqual(ProbeSet.randomTokenCandidates(tokenizer), Array(3..<261))
    }

    func testWriteJSONLRoundTrips() throws {
        let examples = try loadExamples(path: fixturePath("format-prompt.jsonl"))
        let set = try ProbeSet.build(examples: examples,
                                     categories: ["chosen": .field("chosen"), "rejected": .field("rejected"),
                                                  "random": .derive(.otherPrompt(field: "chosen"))],
                                     seed: 1, trainPrompts: [examples[1].prompt], tokenizer: WordTokenizer())
        let out = try temporaryDirectory(self).appendingPathComponent("probes.jsonl").path
        try set.writeJSONL(path: out)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        // A prompt the source wrote as text is written as text (so that template "raw" reads it back as it was).
        XCTAssertTrue(lines[0].hasPrefix(#"{"idx":0,"split":"heldout","prompt":"How do I boil an egg?","chosen":"#),
                      String(lines[0]))
        let loaded = try ProbeSet.load(path: out)
        XCTAssertEqual(loaded, set)
        // The materialised file is also an ordinary probe file.
        let again = try loadExamples(path: out)
        XCTAssertEqual(again.map(\.prompt), examples.map(\.prompt))
        XCTAssertEqual(again[1].split, .train)
        XCTAssertEqual(again[0].origins["random"], "derived:other_prompt:seed=1")
    }

    func testReservedCategoryNamesAreRejected() {
        assertProbesError(.category(name: "split", reason: "reserved name (idx, messages, origins, prompt, split are keys of probe files)")) {
            try ProbeSet.build(examples: syntheticExamples(2), categories: ["split": .field("chosen")], seed: 0,
                               trainPrompts: [], tokenizer: WordTokenizer())
        }
    }

    /// The dynamic `greedy` category: the model's argmax decode on the tiny preset.
    func testGreedyResponseOnTheTinyModel() {
        let model = LlamaModel(config: .tiny(), maxTokens: 64)
        model.initializeRandom(seed: 3)
        let tokenizer = ByteTokenizer()
        let prompt = [tokenizer.bos!] + tokenizer.encode(ChatTemplate.hh.prompt([user("Hello there")]))
        let session = InferenceSession(model: model, capacity: prompt.count + 12)
        let out = greedyResponse(session: session, prompt: prompt, maxTokens: 12, stop: [tokenizer.eos])
        XCTAssertEqual(out.count, 12, "a random tiny model should not hit EOS in 12 tokens")
        XCTAssertEqual(session.length, prompt.count + 12)
        // Reference: argmax step by step with a fresh session.
        let reference = InferenceSession(model: model, capacity: prompt.count + 12)
        var logprobs = reference.append(prompt)
        var expected: [Int32] = []
        for _ in 0..<12 {
            let next = Int32(logprobs.indices.max(by: { logprobs[$0] < logprobs[$1] })!)
            expected.append(next)
            logprobs = reference.append([next])
        }
        XCTAssertEqual(out, expected)
        // Deterministic, and it stops before a stop token.
        XCTAssertEqual(greedyResponse(session: session, prompt: prompt, maxTokens: 12, stop: [tokenizer.eos]), out)
        XCTAssertEqual(greedyResponse(session: session, prompt: prompt, maxTokens: 12, stop: [out[3]]),
                       Array(out.prefix(out.firstIndex(of: out[3])!)))
    }
}
