// libFuzzer target: the byte-level BPE tokenizer with the real SmolLM2 vocabulary (from
// ALIGNSCOPE_MODEL or models/SmolLM2-135M-Instruct.Q4_1.gguf). Built only with ALIGNSCOPE_FUZZ set.
// Checks the encoder's documented contract (BPETokenizer): every id is in the vocabulary, and
// decodeBytes(encode(s)) is the UTF-8 of s with the bytes that no token stands for removed; so
// decode(encode(s)) == s whenever s holds none of them. Invalid UTF-8 is read with replacement characters.
import Foundation
import FuzzDriver
import GGUF
import Tokenizer

let modelPath = ProcessInfo.processInfo.environment["ALIGNSCOPE_MODEL"] ?? "models/SmolLM2-135M-Instruct.Q4_1.gguf"

struct Vocabulary {
    let tokenizer: BPETokenizer
    /// Bytes without a single-byte token, computed from the vocabulary: no token other than a
    /// control or user-defined one (types 3, 4, matched as text) decodes to exactly that byte.
    let bytesWithoutToken: Set<UInt8>

    init(path: String) throws {
        let file = try GGUFFile(path: path)
        tokenizer = try file.tokenizer()
        let types = file.metadata["tokenizer.ggml.token_type"] == nil ? [] : try file.ints("tokenizer.ggml.token_type")
        var covered = Set<UInt8>()
        for id in 0..<tokenizer.vocabSize where types.isEmpty || (types[id] != 3 && types[id] != 4) {
            let bytes = tokenizer.decodeBytes([Int32(id)])
            if bytes.count == 1 { covered.insert(bytes[0]) }
        }
        bytesWithoutToken = Set((0...255).map(UInt8.init)).subtracting(covered)
    }
}

nonisolated(unsafe) let vocabulary: Vocabulary = {
    do {
        let v = try Vocabulary(path: modelPath)
        let missing = v.bytesWithoutToken.sorted().map { String(format: "%02X", $0) }.joined(separator: " ")
        FileHandle.standardError.write(Data("FuzzTokenizer: \(v.bytesWithoutToken.count) bytes have no token: \(missing)\n".utf8))
        return v
    } catch {
        fatalError("FuzzTokenizer: cannot load the vocabulary of \(modelPath): \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buffer = UnsafeBufferPointer(start: data, count: size)
    let text = String(decoding: buffer, as: UTF8.self)
    let tokenizer = vocabulary.tokenizer
    let ids = tokenizer.encode(text)
    precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabSize }, "id out of range for \(Array(buffer))")
    let expected = Array(text.utf8).filter { !vocabulary.bytesWithoutToken.contains($0) }
    let back = tokenizer.decodeBytes(ids)
    precondition(back == expected, "round trip failed for \(Array(buffer)): \(ids) -> \(back), expected \(expected)")
    if expected.count == text.utf8.count {
        precondition(tokenizer.decode(ids) == text, "decode(encode(s)) != s for \(Array(buffer))")
    }
    return 0
}

runFuzzer(fuzzTokenizer)
