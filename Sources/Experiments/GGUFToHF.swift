import Base
import GGUF
import HFModels

/// The tokenizer files of a Hugging Face export of a GGUF-based model, rebuilt from the GGUF's
/// `tokenizer.*` metadata: `tokenizer.json` (BPE: every token in `model.vocab`, the merges in rank order,
/// control and user-defined tokens as `added_tokens`, the pre-tokenizer our `BPETokenizer` implements
/// for the GGUF's `tokenizer.ggml.pre`, a ByteLevel decoder) and `tokenizer_config.json` (end-of-turn and
/// BOS tokens, the chat template).
public enum GGUFToHF {
    public static func files(from file: GGUFFile) throws -> HFExport.Files {
        typealias K = GGUFKeys.Tokenizer
        let model = try file.string(K.model)
        guard model == "gpt2" else {
            throw GGUFError.invalidMetadata(file: file.path, key: K.model, reason: "tokenizer model '\(model)' cannot be exported (supported: gpt2)")
        }
        let tokens = try file.strings(K.tokens), merges = try file.strings(K.merges)
        let types = file.metadata[K.tokenType] == nil ? [] : try file.ints(K.tokenType)
        let pre = file.metadata[K.pre] == nil ? "default" : try file.string(K.pre)
        let eos = try file.int(K.eosTokenID)
        let bos = file.metadata[K.bosTokenID] == nil ? nil : try file.int(K.bosTokenID)
        let byteLevel: JSONValue = .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(false), "trim_offsets": .bool(true),
                                            "use_regex": .bool(true)])
        let preTokenizer: JSONValue
        switch pre {
        case "gpt2", "gpt-2", "olmo", "default": preTokenizer = byteLevel
        case "smollm":
            preTokenizer = .object(["type": .string("Sequence"), "pretokenizers": .array([
                .object(["type": .string("Digits"), "individual_digits": .bool(true)]), byteLevel])])
        default:
            throw GGUFError.invalidMetadata(file: file.path, key: K.pre, reason: "pre-tokenizer '\(pre)' cannot be exported (supported: gpt2, smollm)")
        }
        var vocab: [String: JSONValue] = [:]
        var added: [JSONValue] = []
        for (id, token) in tokens.enumerated() {
            vocab[token] = .number(Double(id))
            let type = types.isEmpty ? 1 : types[id]
            if type == 3 || type == 4 {
                added.append(.object(["id": .number(Double(id)), "content": .string(token), "single_word": .bool(false), "lstrip": .bool(false),
                                      "rstrip": .bool(false), "normalized": .bool(false), "special": .bool(type == 3)]))
            }
        }
        let tokenizer: JSONValue = .object([
            "version": .string("1.0"), "truncation": .null, "padding": .null, "added_tokens": .array(added), "normalizer": .null,
            "pre_tokenizer": preTokenizer, "post_processor": .null,
            "decoder": .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(true), "trim_offsets": .bool(true), "use_regex": .bool(true)]),
            "model": .object([
                "type": .string("BPE"), "dropout": .null, "unk_token": .null, "continuing_subword_prefix": .null, "end_of_word_suffix": .null,
                "fuse_unk": .bool(false), "byte_fallback": .bool(false), "ignore_merges": .bool(false),
                "vocab": .object(vocab), "merges": .array(merges.map { .string($0) }),
            ]),
        ])
        var config: [String: JSONValue] = [
            "tokenizer_class": .string("PreTrainedTokenizerFast"), "eos_token": .string(tokens[eos]),
            "clean_up_tokenization_spaces": .bool(false), "model_max_length": .number(Double(try file.llamaConfig().contextLength)),
        ]
        if let bos { config["bos_token"] = .string(tokens[bos]) }
        if file.metadata[GGUFKeys.Tokenizer.chatTemplate] != nil { config["chat_template"] = .string(try file.string(GGUFKeys.Tokenizer.chatTemplate)) }
        return .generated(tokenizerJSON: tokenizer.canonical + "\n", tokenizerConfigJSON: JSONValue.object(config).canonical + "\n",
                          eos: Int32(eos), bos: bos.map(Int32.init))
    }
}
