import Foundation
import XCTest
@testable import Probes
import Tokenizer

/// Absolute path of a file in Tests/ProbesTests/Fixtures (found from this file's path, so the
/// fixture scripts keep their executable bit).
func fixturePath(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent(name).path
}

func fixtureText(_ name: String) throws -> String {
    try String(contentsOfFile: fixturePath(name), encoding: .utf8)
}

/// A fresh empty directory under the temporary directory, removed by the test case's teardown.
func temporaryDirectory(_ testCase: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probes-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

/// Asserts that `body` throws a `ProbesError` equal to `expected`, and that its description is one line.
func assertProbesError<T>(_ expected: ProbesError, _ body: () throws -> T,
                          file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected \(expected)", file: file, line: line)
    } catch let error as ProbesError {
        XCTAssertEqual(error, expected, file: file, line: line)
        XCTAssertFalse(error.description.contains("\n"), "description must be one line", file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}

/// A word-level tokenizer for tests: ids 0...3 are control tokens (BOS 0, EOS 1, 2 and 3 other
/// specials, written "<ctlN>" and matched whole in text like BPE control tokens), then one id per
/// word of `words` (unknown words encode as "alpha"); decoding joins words with single spaces, so
/// a decoded text re-encodes to the same number of tokens.
struct WordTokenizer: TextTokenizer {
    static let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    var vocabSize: Int { 4 + WordTokenizer.words.count }
    var bos: Int32? { 0 }
    var eos: Int32 { 1 }

    func encode(_ text: String) -> [Int32] {
        text.split(whereSeparator: { $0.isWhitespace }).map { word in
            if word.hasPrefix("<ctl"), word.hasSuffix(">"), let n = Int32(word.dropFirst(4).dropLast()), (0..<4).contains(n) {
                return n
            }
            return Int32(4 + (WordTokenizer.words.firstIndex(of: String(word)) ?? 0))
        }
    }

    func decode(_ ids: [Int32]) -> String {
        ids.map { $0 < 4 ? "<ctl\($0)>" : WordTokenizer.words[Int($0) - 4] }.joined(separator: " ")
    }
}

func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
func assistant(_ content: String) -> ChatMessage { ChatMessage(role: "assistant", content: content) }

/// `count` simple examples with distinct prompts and responses.
func syntheticExamples(_ count: Int) -> [PreferenceExample] {
    (0..<count).map { i in
        PreferenceExample(prompt: [user("question \(i)?")], chosen: "answer number \(i) is good",
                          rejected: "answer \(i) bad", fields: ["other": "side note \(i)"])
    }
}
