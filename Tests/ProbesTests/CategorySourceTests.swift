import Foundation
import XCTest
@testable import Probes

final class CategorySourceTests: XCTestCase {
    private func decode(_ json: String) throws -> [String: CategorySource] {
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        return try decoder.decode([String: CategorySource].self, from: Data(json.utf8))
    }

    func testAllForms() throws {
        let categories = try decode("""
        {
          chosen: "chosen", rejected: "rejected",
          random: { derive: "other_prompt", field: "chosen" },
          shuffled: { derive: "shuffled_words", field: "chosen" },
          noise: { derive: "random_tokens", field: "chosen" },
          variant: { generate: { command: ["python3", "gen.py", "--style", "pirate"], template: "{prompt}", seed: 1 } },
          paraphrased_rejected: { generate: { model: "models/m.gguf", template: "Paraphrase the following text: {text}",
                                              field: "rejected", temperature: 0.5, top_p: 0.95, max_tokens: 64, seed: 3 } },
          greedy: { greedy: { max_tokens: 48 } },
        }
        """)
        XCTAssertEqual(categories["rejected"], .field("rejected"))
        XCTAssertEqual(categories["random"], .derive(.otherPrompt(field: "chosen")))
        XCTAssertEqual(categories["shuffled"], .derive(.shuffledWords(field: "chosen")))
        XCTAssertEqual(categories["noise"], .derive(.randomTokens(field: "chosen")))
        XCTAssertEqual(categories["variant"], .generate(GeneratorSpec(
            backend: .command(["python3", "gen.py", "--style", "pirate"]), template: "{prompt}", seed: 1)))
        XCTAssertEqual(categories["paraphrased_rejected"], .generate(GeneratorSpec(
            backend: .model("models/m.gguf"), template: "Paraphrase the following text: {text}", field: "rejected",
            seed: 3, temperature: 0.5, topP: 0.95, maxTokens: 64)))
        XCTAssertEqual(categories["greedy"], .greedy(maxTokens: 48))
        // Encoding gives the same form back.
        let encoded = try JSONEncoder().encode(categories)
        XCTAssertEqual(try JSONDecoder().decode([String: CategorySource].self, from: encoded), categories)
    }

    private func assertDecodingError(_ json: String, path: String, mentions: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(json), file: file, line: line) { error in
            guard case let DecodingError.dataCorrupted(context) = error else {
                return XCTFail("expected dataCorrupted, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(context.codingPath.map(\.stringValue).joined(separator: "."), path, file: file, line: line)
            XCTAssertTrue(context.debugDescription.contains(mentions), context.debugDescription, file: file, line: line)
        }
    }

    func testUnknownKeysAreErrorsWithTheirPath() {
        assertDecodingError(#"{ random: { derive: "other_prompt", field: "chosen", feild: "x" } }"#,
                            path: "random.feild", mentions: "unknown key \"feild\"")
        assertDecodingError(#"{ g: { greedy: { max_token: 4 } } }"#, path: "g.greedy.max_token", mentions: "unknown key")
        assertDecodingError(#"{ v: { generate: { command: ["x"], template: "t", temperature: 0.3 } } }"#,
                            path: "v.generate.temperature", mentions: "unknown key \"temperature\"")
        assertDecodingError(#"{ v: { generate: { model: "m.gguf", template: "t", top_k: 3 } } }"#,
                            path: "v.generate.top_k", mentions: "unknown key \"top_k\"")
        assertDecodingError(#"{ v: { derivee: "other_prompt" } }"#, path: "v.derivee", mentions: "unknown key")
        assertDecodingError(#"{ v: { derive: "reversed", field: "chosen" } }"#, path: "v.derive", mentions: "unknown derivation")
        assertDecodingError(#"{ v: { greedy: { max_tokens: 0 } } }"#, path: "v.greedy.max_tokens", mentions: "positive")
        assertDecodingError(#"{ v: { generate: { model: "m.gguf", template: "t", top_p: 1.5 } } }"#,
                            path: "v.generate.top_p", mentions: "top_p")
        assertDecodingError(#"{ v: { generate: { command: [], template: "t" } } }"#, path: "v.generate.command", mentions: "argv")
    }
}
