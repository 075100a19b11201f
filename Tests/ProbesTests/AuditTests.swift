import XCTest
@testable import Probes
import Tokenizer

final class AuditTests: XCTestCase {
    private func flags(_ name: String) throws -> [AuditReport.Flag] {
        try audit(path: fixturePath(name), tokenizer: WordTokenizer()).flags
    }

    func testJaccardAndLengthStats() {
        XCTAssertEqual(jaccard("Put it in the fridge.", "put IT in the fridge, please"), 5.0 / 6.0, accuracy: 1e-12)
        XCTAssertEqual(jaccard("", ""), 1)
        XCTAssertEqual(jaccard("a b", "c d"), 0)
        XCTAssertEqual(overlapWords("Don't stop-now, 42!"), ["don", "t", "stop", "now", "42"])
        let s = LengthStats([5, 1, 4, 2])
        XCTAssertEqual([s.min, s.max], [1, 5])
        XCTAssertEqual(s.median, 3)
        XCTAssertEqual(s.mean, 3)
        XCTAssertEqual(LengthStats([7, 1, 3]).median, 3)
    }

    func testCleanFixtureHasNoFlagsAndAllStats() throws {
        let report = try audit(path: fixturePath("audit-clean.jsonl"), tokenizer: WordTokenizer())
        XCTAssertEqual(report.flags, [])
        XCTAssertEqual(report.probeCount, 3)
        XCTAssertEqual(report.categories.map(\.category), ["chosen", "rejected", "paraphrased_rejected", "random", "non_response"])
        let chosen = report.categories[0]
        XCTAssertEqual(chosen.overlapWithChosen, 1)
        // Word counts of the three chosen responses: 16, 9, 11.
        XCTAssertEqual(chosen.tokens, LengthStats([16, 9, 11]))
        XCTAssertEqual([chosen.tokens.min, chosen.tokens.max], [9, 16])
        XCTAssertEqual(chosen.tokens.median, 11)
        XCTAssertEqual(chosen.tokens.mean, 12, accuracy: 1e-12)
        XCTAssertLessThan(report.categories[2].overlapWithRejected!, 0.2)
        XCTAssertTrue(report.rendered.contains("flags: none"), report.rendered)
        XCTAssertTrue(report.rendered.hasPrefix("probes: 3 (0 train, 3 heldout)\n"), report.rendered)
    }

    func testEmptyResponseIsFlagged() throws {
        XCTAssertEqual(try flags("audit-empty.jsonl"),
                       [.init(kind: .empty, probe: 1, category: "non_response", detail: "empty response")])
    }

    func testDuplicateIsFlagged() throws {
        XCTAssertEqual(try flags("audit-duplicate.jsonl"),
                       [.init(kind: .duplicate, probe: 2, category: "non_response", detail: "same text as probe 0 non_response")])
    }

    func testRandomEqualToItsOwnChosenIsFlagged() throws {
        XCTAssertEqual(try flags("audit-random-chosen.jsonl"),
                       [.init(kind: .randomEqualsChosen, probe: 1, category: "random", detail: "equal to its own chosen response")])
    }

    func testParaphraseCopyingItsSourceIsFlagged() throws {
        let found = try flags("audit-paraphrase-copy.jsonl")
        XCTAssertEqual(found.filter { $0.kind == .paraphraseCopiesSource }, [
            .init(kind: .paraphraseCopiesSource, probe: 0, category: "paraphrased_rejected",
                  detail: "word overlap 0.83 with rejected (limit 0.60)"),
            .init(kind: .paraphraseCopiesSource, probe: 2, category: "paraphrased_rejected", detail: "identical to rejected"),
        ])
        // The identical copy is also the same text in two places.
        XCTAssertEqual(found.filter { $0.kind == .duplicate },
                       [.init(kind: .duplicate, probe: 2, category: "paraphrased_rejected", detail: "same text as probe 2 rejected")])
        let rendered = try audit(path: fixturePath("audit-paraphrase-copy.jsonl"), tokenizer: WordTokenizer()).rendered
        XCTAssertTrue(rendered.contains("flags: 3\n"), rendered)
        XCTAssertTrue(rendered.contains("  probe 2 paraphrased_rejected: paraphrase_copies_source: identical to rejected"), rendered)
    }

    func testParaphraseSourceNames() {
        XCTAssertEqual(paraphraseSource("paraphrased_rejected"), "rejected")
        XCTAssertEqual(paraphraseSource("paraphrase_chosen"), "chosen")
        XCTAssertNil(paraphraseSource("variant"))
        XCTAssertNil(paraphraseSource("rejected"))
    }

    /// A derived `random` copies another probe's chosen response: not a duplicate.
    func testDerivedRandomIsNotADuplicate() throws {
        let set = try ProbeSet.build(examples: syntheticExamples(5),
                                     categories: ["chosen": .field("chosen"), "random": .derive(.otherPrompt(field: "chosen"))],
                                     seed: 1, trainPrompts: [], tokenizer: WordTokenizer())
        XCTAssertEqual(audit(set, tokenizer: WordTokenizer()).flags, [])
    }
}
