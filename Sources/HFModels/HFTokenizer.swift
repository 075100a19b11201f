import Base
import Foundation
import Tokenizer

/// `tokenizer.json` (the `tokenizers` library's format) read into our byte-level BPE.
///
/// Read: `model` (type `BPE`: `vocab` token -> id, `merges` as "a b" strings or [a, b] pairs, in rank
/// order), `added_tokens` (matched whole in text: `special` ones as control tokens), and the
/// `pre_tokenizer`, which must be one of the two byte-level forms we implement: `ByteLevel` with the GPT-2
/// regex (`gpt2`), or `Sequence[Digits(individual_digits), ByteLevel]` (`smollm`). Anything else is
/// refused with the key that differs, rather than tokenised differently from transformers.
/// End of turn: `generation_config.json`'s `eos_token_id` (the first, when it is a list), else
/// `tokenizer_config.json`'s `eos_token`, else `config.json`'s `eos_token_id`.
enum HFTokenizer {
    /// `modelDirectory` (default `dir`) holds `generation_config.json` and `config.json`, when the tokenizer's files lie
    /// elsewhere (a Trainer checkpoint saved without them: the run's output folder has them).
    static func read(directory dir: String, vocabSize: Int, modelDirectory: String? = nil) throws(HFError) -> BPETokenizer {
        let f = try JSONFile(path: dir + "/tokenizer.json")
        guard case let .object(model) = try f.value("model") else { throw HFError.entry(path: f.path, key: "model", reason: "expected an object") }
        guard case .string("BPE")? = model["type"] else {
            throw HFError.entry(path: f.path, key: "model.type", reason: "\(model["type"]?.canonical ?? "missing"), only BPE is supported")
        }
        for key in ["byte_fallback", "ignore_merges"] {
            if case .bool(true)? = model[key] { throw HFError.entry(path: f.path, key: "model.\(key)", reason: "true is not supported") }
        }
        var nfc = false
        if f.has("normalizer") {
            guard try f.value("normalizer") == .object(["type": .string("NFC")]) else {
                throw HFError.entry(path: f.path, key: "normalizer", reason: "\(try f.value("normalizer").canonical.prefix(80)) is not supported (null or NFC)")
            }
            nfc = true
        }
        let pre = try preTokenizer(f)

        guard case let .object(vocab)? = model["vocab"], !vocab.isEmpty else {
            throw HFError.entry(path: f.path, key: "model.vocab", reason: "expected a non-empty object from token to id")
        }
        var byID: [Int: (String, Int32)] = [:]  // id -> (token, GGUF-style type)
        for (token, value) in vocab {
            guard case let .number(x) = value, let id = Int(exactly: x), id >= 0, id < max(vocabSize, vocab.count) + 65536 else {
                throw HFError.entry(path: f.path, key: "model.vocab.\(token)", reason: "expected a token id")
            }
            byID[id] = (token, 1)
        }
        if case let .array(added)? = f.root["added_tokens"] {
            for (i, entry) in added.enumerated() {
                guard case let .object(t) = entry, case let .number(x)? = t["id"], let id = Int(exactly: x), id >= 0,
                      case let .string(content)? = t["content"] else {
                    throw HFError.entry(path: f.path, key: "added_tokens[\(i)]", reason: "expected {id, content, special}")
                }
                let special = t["special"] == .bool(true)
                byID[id] = (content, special ? 3 : 4)
            }
        }
        let count = max(vocabSize, (byID.keys.max() ?? 0) + 1)
        guard count == vocabSize else {
            throw HFError.entry(path: f.path, key: "model.vocab", reason: "token ids reach \(count - 1), but config.json's vocab_size is \(vocabSize)")
        }
        // Ids without a token (a vocabulary padded to a round size) become empty control tokens: never produced
        // by encoding, decoded to nothing.
        var tokens: [String] = [], types: [Int32] = []
        for id in 0..<count {
            let (token, type) = byID[id] ?? ("", 3)
            tokens.append(token)
            types.append(type)
        }

        var merges: [String] = []
        if case let .array(list)? = model["merges"] {
            for (rank, m) in list.enumerated() {
                switch m {
                case let .string(s): merges.append(s)
                case let .array(pair) where pair.count == 2:
                    guard case let .string(a) = pair[0], case let .string(b) = pair[1], !a.contains(" "), !b.contains(" ") else {
                        throw HFError.entry(path: f.path, key: "model.merges[\(rank)]", reason: "expected two tokens without spaces")
                    }
                    merges.append(a + " " + b)
                default:
                    throw HFError.entry(path: f.path, key: "model.merges[\(rank)]", reason: "expected \"a b\" or [a, b]")
                }
            }
        }
        let eos = try endOfTurn(dir, modelDirectory: modelDirectory ?? dir, tokens: tokens)
        do {
            return try BPETokenizer(tokens: tokens, merges: merges, tokenTypes: types, pre: pre, bos: nil, eos: eos, normalizesNFC: nfc)
        } catch let error as TokenizerError {
            throw HFError.file(path: f.path, reason: error.message(source: .tokenizerJSON))
        } catch {
            throw HFError.file(path: f.path, reason: "\(error)")
        }
    }

    /// Qwen2's pre-tokenizer pattern (the `Split` regex of its tokenizer.json).
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pre-tokenizer's name in `PreTokenizer` terms.
    static func preTokenizer(_ f: JSONFile) throws(HFError) -> String {
        let supported = "supported: ByteLevel with the GPT-2 regex; Sequence[Digits(individual_digits: true), ByteLevel]; Sequence[Split(Qwen2's pattern, Isolated), ByteLevel without regex]"
        func byteLevel(_ v: JSONValue) -> Bool {
            guard case let .object(o) = v, o["type"] == .string("ByteLevel") else { return false }
            return o["add_prefix_space"] != .bool(true) && o["use_regex"] != .bool(false)
        }
        let v = try f.value("pre_tokenizer")
        if byteLevel(v) { return "gpt2" }
        if case let .object(o) = v, o["type"] == .string("Sequence"), case let .array(parts)? = o["pretokenizers"], parts.count == 2,
           case let .object(digits) = parts[0], digits["type"] == .string("Digits"), digits["individual_digits"] == .bool(true),
           byteLevel(parts[1]) {
            return "smollm"
        }
        if case let .object(o) = v, o["type"] == .string("Sequence"), case let .array(parts)? = o["pretokenizers"], parts.count == 2,
           case let .object(split) = parts[0], split["type"] == .string("Split"), split["pattern"] == .object(["Regex": .string(qwen2Pattern)]),
           split["behavior"] == .string("Isolated"), split["invert"] != .bool(true),
           case let .object(byte) = parts[1], byte["type"] == .string("ByteLevel"), byte["use_regex"] == .bool(false), byte["add_prefix_space"] != .bool(true) {
            return "qwen2"
        }
        throw HFError.entry(path: f.path, key: "pre_tokenizer", reason: "\(v.canonical.prefix(120)) is not supported (\(supported))")
    }

    static func endOfTurn(_ dir: String, modelDirectory model: String, tokens: [String]) throws(HFError) -> Int32 {
        func id(_ value: JSONValue, _ path: String, _ key: String) throws(HFError) -> Int32 {
            var v = value
            if case let .array(list) = v, let first = list.first { v = first }
            guard case let .number(x) = v, let n = Int(exactly: x), n >= 0, n < tokens.count else {
                throw HFError.entry(path: path, key: key, reason: "expected a token id below \(tokens.count), found \(value.canonical)")
            }
            return Int32(n)
        }
        let generation = model + "/generation_config.json"
        if FileManager.default.fileExists(atPath: generation) {
            let f = try JSONFile(path: generation)
            if f.has("eos_token_id") { return try id(f.value("eos_token_id"), generation, "eos_token_id") }
        }
        let tokenizerConfig = dir + "/tokenizer_config.json"
        if FileManager.default.fileExists(atPath: tokenizerConfig) {
            let f = try JSONFile(path: tokenizerConfig)
            if f.has("eos_token") {
                var text = ""
                switch try f.value("eos_token") {
                case let .string(s): text = s
                case let .object(o): if case let .string(s)? = o["content"] { text = s }
                default: break
                }
                guard let i = tokens.firstIndex(of: text) else {
                    throw HFError.entry(path: tokenizerConfig, key: "eos_token", reason: "\"\(text)\" is not a token of tokenizer.json")
                }
                return Int32(i)
            }
        }
        let config = try JSONFile(path: model + "/config.json")
        return try id(config.value("eos_token_id"), config.path, "eos_token_id")
    }
}
