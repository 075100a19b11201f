import Base
import Foundation
import Model
import Tokenizer

/// A Hugging Face model directory, read unconverted: `config.json`, the weights (`model.safetensors`, or
/// shards listed by `model.safetensors.index.json`), `tokenizer.json` and, for the end-of-turn token,
/// `generation_config.json` / `tokenizer_config.json`.
///
/// Architectures: `llama` (`LlamaForCausalLM`) and `qwen2` (`Qwen2ForCausalLM`: the llama block with biases on
/// the Q, K and V projections; sliding-window attention refused). Transformers applies RoPE to the two halves of each
/// head (`rotate_half`), our model (like llama.cpp) to adjacent pairs, so the rows of `q_proj` and `k_proj`
/// (and the entries of their biases) are permuted on the way in: our row h*d + 2j + s is their row
/// h*d + s*d/2 + j (d the head size, s in {0, 1}); the product q.k is unchanged.
public struct HFModelDirectory {
    public let path: String
    public let config: LlamaConfig
    public let tokenizer: BPETokenizer
    /// Which file holds each tensor.
    let shards: [String: SafetensorsFile]

    public static let supportedArchitectures = ["llama", "qwen2"]
    /// `config.json`'s `model_type`.
    public let architecture: String

    /// Reads and checks everything but the weights' values: config, tokenizer, and every tensor's name,
    /// shape and type. A bad or missing file throws `HFError` naming it.
    public init(path: String) throws(HFError) {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw HFError.file(path: path, reason: "expected a Hugging Face model directory (config.json, *.safetensors, tokenizer.json)")
        }
        let configFile = try JSONFile(path: path + "/config.json")
        let config = try Self.readConfig(configFile)
        self.config = config
        architecture = try configFile.string("model_type")
        tokenizer = try HFTokenizer.read(directory: path, vocabSize: config.vocabSize)
        shards = try Self.openWeights(path)
        try checkWeights()
    }

    // MARK: config.json

    /// The model configuration of `directory/config.json` alone (what `bench` needs to build a model of a
    /// checkpoint's shapes with random weights).
    public static func config(directory: String) throws(HFError) -> LlamaConfig {
        try readConfig(JSONFile(path: directory + "/config.json"))
    }

    static func readConfig(_ f: JSONFile) throws(HFError) -> LlamaConfig {
        let type = f.has("model_type") ? try f.string("model_type") : "(none)"
        guard supportedArchitectures.contains(type) else {
            throw HFError.entry(path: f.path, key: "model_type", reason: "architecture \"\(type)\" is not supported (supported: \(supportedArchitectures.joined(separator: ", ")))")
        }
        let dim = try f.int("hidden_size"), heads = try f.int("num_attention_heads")
        let kvHeads = f.has("num_key_value_heads") ? try f.int("num_key_value_heads") : heads
        guard dim % heads == 0, (dim / heads) % 2 == 0 else {
            throw HFError.entry(path: f.path, key: "num_attention_heads", reason: "\(heads) heads do not split hidden_size \(dim) into even head sizes")
        }
        if f.has("head_dim"), try f.int("head_dim") != dim / heads {
            throw HFError.entry(path: f.path, key: "head_dim", reason: "\(try f.int("head_dim")), expected hidden_size / num_attention_heads = \(dim / heads) (other head sizes are not supported)")
        }
        guard heads % kvHeads == 0 else {
            throw HFError.entry(path: f.path, key: "num_key_value_heads", reason: "\(kvHeads) does not divide \(heads) heads")
        }
        if f.has("hidden_act"), try f.string("hidden_act") != "silu" {
            throw HFError.entry(path: f.path, key: "hidden_act", reason: "\"\(try f.string("hidden_act"))\" is not supported (silu)")
        }
        for key in ["attention_bias", "mlp_bias"] where try f.bool(key, default: false) {
            throw HFError.entry(path: f.path, key: key, reason: "biases are not supported for \(type)")
        }
        if try f.bool("use_sliding_window", default: false) {
            throw HFError.entry(path: f.path, key: "use_sliding_window", reason: "sliding-window attention is not supported")
        }
        if f.has("layer_types"), case let .array(kinds) = try f.value("layer_types"), let other = kinds.first(where: { $0 != .string("full_attention") }) {
            throw HFError.entry(path: f.path, key: "layer_types", reason: "\(other.canonical) is not supported (full_attention only)")
        }
        // rope_theta: top level (transformers 4) or in rope_parameters (transformers 5); only unscaled RoPE.
        var ropeBase = 10000.0
        if f.has("rope_theta") { ropeBase = try f.double("rope_theta") }
        for key in ["rope_parameters", "rope_scaling"] where f.has(key) {
            guard case let .object(rope) = try f.value(key) else { throw HFError.entry(path: f.path, key: key, reason: "expected an object") }
            if case let .string(kind)? = rope["rope_type"] ?? rope["type"], kind != "default" {
                throw HFError.entry(path: f.path, key: key + ".rope_type", reason: "\"\(kind)\" is not supported (default: no scaling)")
            }
            if case let .number(theta)? = rope["rope_theta"] { ropeBase = theta }
        }
        let eps = try f.double("rms_norm_eps")
        guard eps > 0, ropeBase > 0 else { throw HFError.entry(path: f.path, key: eps > 0 ? "rope_theta" : "rms_norm_eps", reason: "must be positive") }
        return LlamaConfig(
            vocabSize: try f.int("vocab_size"), dim: dim, nLayers: try f.int("num_hidden_layers"), nHeads: heads, nKVHeads: kvHeads,
            ffnDim: try f.int("intermediate_size"), ropeBase: Float(ropeBase), normEps: Float(eps),
            tiedEmbedding: try f.bool("tie_word_embeddings", default: true),
            contextLength: f.has("max_position_embeddings") ? try f.int("max_position_embeddings") : 2048,
            qkvBias: type == "qwen2")
    }

    // MARK: weights

    static func openWeights(_ dir: String) throws(HFError) -> [String: SafetensorsFile] {
        let single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json"
        if FileManager.default.fileExists(atPath: index) {
            let f = try JSONFile(path: index)
            guard case let .object(map) = try f.value("weight_map") else {
                throw HFError.entry(path: index, key: "weight_map", reason: "expected an object from tensor name to file name")
            }
            var files: [String: SafetensorsFile] = [:]
            var out: [String: SafetensorsFile] = [:]
            for (tensor, value) in map.sorted(by: { $0.key < $1.key }) {
                guard case let .string(name) = value, !name.isEmpty, !name.contains("/") else {
                    throw HFError.entry(path: index, key: "weight_map.\(tensor)", reason: "expected a file name in the directory")
                }
                if files[name] == nil { files[name] = try SafetensorsFile(path: dir + "/" + name) }
                guard files[name]!.tensors[tensor] != nil else {
                    throw HFError.entry(path: dir + "/" + name, key: tensor, reason: "missing (model.safetensors.index.json places it here)")
                }
                out[tensor] = files[name]!
            }
            return out
        }
        guard FileManager.default.fileExists(atPath: single) else {
            throw HFError.file(path: single, reason: "missing (and no model.safetensors.index.json lists shards)")
        }
        let file = try SafetensorsFile(path: single)
        return Dictionary(uniqueKeysWithValues: file.tensors.keys.map { ($0, file) })
    }

    /// Our parameter name -> the checkpoint's tensor name.
    static func tensorName(_ ours: String) -> String {
        if ours == "token_embd.weight" { return "model.embed_tokens.weight" }
        if ours == "output_norm.weight" { return "model.norm.weight" }
        if ours == "output.weight" { return "lm_head.weight" }
        let parts = ours.split(separator: ".")  // blk.i.name.weight|bias
        let i = parts[1], name = String(parts[2]), kind = parts[3]
        let theirs = [
            "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
            "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
        ][name]!
        return "model.layers.\(i).\(theirs).\(kind)"
    }

    func checkWeights() throws(HFError) {
        let table = LlamaModel.parameterTable(for: config)
        var expected = Set(table.map { Self.tensorName($0.name) })
        if config.tiedEmbedding { expected.insert("lm_head.weight") }  // may be saved beside a tied embedding; not read
        for name in shards.keys.sorted() where !expected.contains(name) && !name.hasSuffix("rotary_emb.inv_freq") {
            throw HFError.entry(path: shards[name]!.path, key: name, reason: "unexpected tensor for a \(config.nLayers)-layer \(architecture)")
        }
        for (ours, shape) in table {
            let name = Self.tensorName(ours)
            guard let file = shards[name], let t = file.tensors[name] else {
                throw HFError.entry(path: path, key: name, reason: "missing from the weights")
            }
            guard t.shape == shape else { throw HFError.entry(path: file.path, key: name, reason: "shape \(t.shape), expected \(shape)") }
            guard SafetensorsFile.readableTypes.contains(t.dtype) else {
                throw HFError.entry(path: file.path, key: name, reason: "dtype \(t.dtype) is not supported (F32, F16, BF16)")
            }
        }
    }

    /// A model holding the directory's weights, for batches of up to `maxTokens` tokens.
    public func load(maxTokens: Int, maxSequenceLength: Int? = nil, checkpointActivations: Bool = false) throws(HFError) -> LlamaModel {
        let model = LlamaModel(config: config, maxTokens: maxTokens, maxSequenceLength: maxSequenceLength,
                               checkpointActivations: checkpointActivations)
        try loadWeights(into: model)
        return model
    }

    /// Copies every tensor into `model` (of this directory's configuration), permuting Q and K rows.
    public func loadWeights(into model: LlamaModel) throws(HFError) {
        for (ours, _) in model.parameterTable {
            let name = Self.tensorName(ours)
            try shards[name]!.read(name, into: model.parameter(ours))
        }
        RotaryLayout.toAdjacentPairs(model)
    }

}
