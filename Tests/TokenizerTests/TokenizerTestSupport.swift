import Foundation
import XCTest
import GGUF
@testable import Tokenizer

/// Package root, derived from this file's path (Tests/TokenizerTests/<file>).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// The real model: $ALIGNSCOPE_MODEL, else <package root>/models/SmolLM2-135M-Instruct.Q4_1.gguf.
let modelPath: String = {
    if let p = ProcessInfo.processInfo.environment["ALIGNSCOPE_MODEL"], !p.isEmpty { return p }
    return packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
}()

/// SmolLM2's tokenizer read from the GGUF once for all tests (nil when the model file is absent).
private let smolLM: Result<BPETokenizer, any Error>? = {
    guard FileManager.default.fileExists(atPath: modelPath) else { return nil }
    return Result { try loadTokenizer(gguf: modelPath) }
}()

/// Reads the tokenizer arrays from a GGUF with the GGUF module's reader and builds a BPETokenizer
/// directly (independently of `GGUFFile.tokenizer()`).
func loadTokenizer(gguf path: String, pre overridePre: String? = nil) throws -> BPETokenizer {
    let file = try GGUFFile(path: path)
    typealias K = GGUFKeys.Tokenizer
    return try BPETokenizer(
        tokens: try file.strings(K.tokens),
        merges: try file.strings(K.merges),
        tokenTypes: try file.ints(K.tokenType).map { Int32($0) },
        pre: try overridePre ?? file.string(K.pre),
        bos: Int32(try file.int(K.bosTokenID)),
        eos: Int32(try file.int(K.eosTokenID)))
}

/// SmolLM2's tokenizer, or XCTSkip when the model file is absent.
func smolLMTokenizer() throws -> BPETokenizer {
    guard let smolLM else { throw XCTSkip("model file not found at \(modelPath); run `make models`") }
    return try smolLM.get()
}

/// The bytes SmolLM2's vocabulary has no token for (printed by scripts/make-reference.py's checks);
/// encoding drops them, as transformers does.
let smolLMMissingBytes = Set<UInt8>([0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2])
    .union(0xF5...0xFF)

/// What decoding the ids of `text` must give back: its bytes less those without a token.
func expectedRoundTripBytes(_ text: String) -> [UInt8] {
    text.utf8.filter { !smolLMMissingBytes.contains($0) }
}

/// Reference token ids written by scripts/make-reference.py.
struct TokenIDFixture: Decodable {
    struct Case: Decodable {
        var text: String
        var ids: [Int32]
        /// From transformers' stock GGUF tokenizer, which uses the plain GPT-2 pattern.
        var ids_gpt2: [Int32]
    }
    var model: String
    var cases: [Case]

    static func load() throws -> TokenIDFixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "token-ids", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(TokenIDFixture.self, from: Data(contentsOf: url))
    }
}

/// Reference prompt/response pairs (Tests/GGUFTests/Fixtures/reference-logprobs.json), used here
/// for their rendered texts and token ids.
struct LogprobFixture: Decodable {
    struct Pair: Decodable {
        var kind: String
        var messages: [ChatMessage]?
        var response_text: String?
        var prompt: String
        var response: String
        var prompt_ids: [Int32]
        var response_ids: [Int32]
    }
    var pairs: [Pair]

    static func load() throws -> LogprobFixture {
        let url = packageRoot.appendingPathComponent("Tests/GGUFTests/Fixtures/reference-logprobs.json")
        return try JSONDecoder().decode(LogprobFixture.self, from: Data(contentsOf: url))
    }
}

/// A small byte-level vocabulary: the 256 byte tokens (ids 0...255), then `extra` tokens with their
/// types, for tests that need no model file.
func handMadeTokenizer(merges: [String], extra: [(String, Int32)] = [], pre: String = "gpt2") throws -> BPETokenizer {
    var tokens = (0..<256).map { ByteLevel.string(of: [UInt8($0)]) }
    var types = [Int32](repeating: 1, count: 256)
    for (t, ty) in extra {
        tokens.append(t)
        types.append(ty)
    }
    return try BPETokenizer(tokens: tokens, merges: merges, tokenTypes: types, pre: pre, bos: nil, eos: 0)
}

/// The pieces of `ids` as strings, for readable failure messages.
func pieces(_ tok: BPETokenizer, _ ids: [Int32]) -> [String] {
    ids.map { tok.decode([$0]) }
}

func assertUTF8Equal(_ a: String, _ b: String, _ message: String = "",
                     file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(Array(a.utf8), Array(b.utf8), "\(message) \(a.debugDescription) vs \(b.debugDescription)",
                   file: file, line: line)
}
