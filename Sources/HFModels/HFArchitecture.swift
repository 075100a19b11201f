import Base
import Model

/// One architecture of `config.json`'s `model_type`: how its config keys, tensor names and tensor layouts map
/// to our `LlamaConfig` and parameter table. Each lives in a file of its own (LlamaArchitecture.swift,
/// GPTNeoXArchitecture.swift); `HFModelDirectory` and `HFExport` dispatch through `HFArchitectures.named`.
protocol HFArchitecture {
    /// `config.json`'s `model_type` values this architecture reads.
    static var modelTypes: [String] { get }
    /// The model configuration of `config.json` (unsupported variants refused, naming the key).
    static func config(_ f: JSONFile) throws(HFError) -> LlamaConfig
    /// The checkpoint's tensor name for our parameter `ours`.
    static func tensorName(_ ours: String) -> String
    /// Checkpoint entries that are not parameters (buffers older versions saved) and are skipped.
    static func isBuffer(_ name: String) -> Bool
    /// A tensor as read from the checkpoint -> our layout, in place (`inverse`: ours -> the checkpoint's).
    static func convert(_ values: UnsafeMutableBufferPointer<Float>, parameter: String, _ c: LlamaConfig, inverse: Bool)
    /// `config.json` for a model of configuration `c` (export of a run that did not start from a directory).
    static func configJSON(_ c: LlamaConfig, eos: Int32, bos: Int32?) -> [String: JSONValue]
}

enum HFArchitectures {
    static let all: [any HFArchitecture.Type] = [LlamaArchitecture.self, GPTNeoXArchitecture.self]
    static var supported: [String] { all.flatMap { $0.modelTypes } }

    /// The architecture of `model_type`, or nil.
    static func named(_ modelType: String) -> (any HFArchitecture.Type)? {
        all.first { $0.modelTypes.contains(modelType) }
    }

    /// The architecture a configuration belongs to.
    static func of(_ c: LlamaConfig) -> any HFArchitecture.Type {
        c.block == .gptNeoX ? GPTNeoXArchitecture.self : LlamaArchitecture.self
    }
}

extension JSONFile {
    /// RoPE settings: `rope_theta` (or `legacyThetaKey`) at the top level (transformers 4) or in
    /// `rope_parameters` (transformers 5, also `partial_rotary_factor`); only unscaled RoPE is read.
    func rope(legacyThetaKey: String? = nil, legacyFractionKey: String? = nil) throws(HFError) -> (base: Double, fraction: Double) {
        var base = 10000.0, fraction = 1.0
        for key in ["rope_theta", legacyThetaKey].compactMap({ $0 }) where has(key) { base = try double(key) }
        if let legacyFractionKey, has(legacyFractionKey) { fraction = try double(legacyFractionKey) }
        for key in ["rope_parameters", "rope_scaling"] where has(key) {
            guard case let .object(rope) = try value(key) else { throw HFError.entry(path: path, key: key, reason: "expected an object") }
            if case let .string(kind)? = rope["rope_type"] ?? rope["type"], kind != "default" {
                throw HFError.entry(path: path, key: key + ".rope_type", reason: "\"\(kind)\" is not supported (default: no scaling)")
            }
            if case let .number(theta)? = rope["rope_theta"] { base = theta }
            if case let .number(f)? = rope["partial_rotary_factor"] { fraction = f }
        }
        guard base > 0 else { throw HFError.entry(path: path, key: "rope_theta", reason: "must be positive") }
        return (base, fraction)
    }

    /// Heads and head size of `hidden_size` / `num_attention_heads`, refused unless they split evenly.
    func heads(dim: Int) throws(HFError) -> Int {
        let heads = try int("num_attention_heads")
        guard dim % heads == 0, (dim / heads) % 2 == 0 else {
            throw HFError.entry(path: path, key: "num_attention_heads", reason: "\(heads) heads do not split hidden_size \(dim) into even head sizes")
        }
        if has("head_dim"), try int("head_dim") != dim / heads {
            throw HFError.entry(path: path, key: "head_dim", reason: "\(try int("head_dim")), expected hidden_size / num_attention_heads = \(dim / heads) (other head sizes are not supported)")
        }
        return heads
    }
}
