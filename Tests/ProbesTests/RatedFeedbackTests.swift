import Foundation
import XCTest
@testable import Probes

/// Rated lines into reward-model pairs (margin = rating difference) and KTO examples (by a threshold), by hand.
final class RatedFeedbackTests: XCTestCase {
    func examples() throws -> [PreferenceExample] {
        let lines = [
            #"{"prompt": "A?", "response": "a0", "rating": 7}"#,
            #"{"prompt": "A?", "response": "a1", "rating": 3}"#,
            #"{"prompt": "B?", "response": "b0", "score": 5}"#,
            #"{"prompt": "A?", "response": "a2", "rating": 7}"#,
            #"{"prompt": "B?", "response": "b1", "score": 9}"#,
            #"{"prompt": "C?", "chosen": "yes", "rejected": "no"}"#,
        ]
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rated-\(UUID().uuidString).jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try loadExamples(path: path)
    }

    func testRatedLinesBecomePairsWithTheirRatingDifference() throws {
        let pairs = RatedFeedback.pairs(try examples())
        // the paired line passes through first; then prompt A (first seen): (a0, a1), tie (a0, a2) skipped, (a2 over a1);
        // then prompt B: (b1 over b0)
        let got = pairs.map { "\($0.chosen ?? "-")>\($0.rejected ?? "-"):\($0.numbers["margin"].map { String($0) } ?? "-")" }
        XCTAssertEqual(got, ["yes>no:-", "a0>a1:4.0", "a2>a1:4.0", "b1>b0:4.0"])
        XCTAssertEqual(pairs[1].line, 1)
        XCTAssertEqual(pairs[2].line, 2, "a pair keeps its first line's number")
        XCTAssertEqual(pairs[3].promptText, "B?")
    }

    func testRatedLinesBecomeKTOExamplesByThreshold() throws {
        let unpaired = RatedFeedback.unpaired(try examples(), threshold: 6)
        XCTAssertEqual(unpaired.compactMap(\.label), [true, false, false, true, true])
        XCTAssertEqual(unpaired.prefix(5).map { $0.fields["completion"] }, ["a0", "a1", "b0", "a2", "b1"])
        XCTAssertNil(unpaired[5].label, "a paired line passes through")
        // the threshold is inclusive
        XCTAssertEqual(RatedFeedback.unpaired(try examples(), threshold: 7).compactMap(\.label), [true, false, false, true, true])
        XCTAssertEqual(RatedFeedback.unpaired(try examples(), threshold: 7.5).compactMap(\.label), [false, false, false, false, true])
    }
}
