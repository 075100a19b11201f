import Base
import Model

/// `llama` (`LlamaForCausalLM`) and `qwen2` (`Qwen2ForCausalLM`: the llama block with biases on the Q, K and V
/// projections; sliding-window attention refused). Transformers applies RoPE to the two halves of each head
/// (`rotate_half`), our model to adjacent pairs, so the rows of `q_proj` and `k_proj` (and their biases) are
/// permuted on the way in and back on the way out (`RotaryLayout`).
enum LlamaArchitecture: HFArchitecture {
    static let modelTypes = ["llama", "qwen2"]

    static func config(_ f: JSONFile) throws(HFError) -> LlamaConfig {
        let type = try f.string("model_type")
        let dim = try f.int("hidden_size"), heads = try f.heads(dim: dim)
        let kvHeads = f.has("num_key_value_heads") ? try f.int("num_key_value_heads") : heads
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
        let rope = try f.rope()
        guard rope.fraction == 1 else {
            throw HFError.entry(path: f.path, key: "rope_parameters.partial_rotary_factor", reason: "\(rope.fraction) is not supported for \(type) (1)")
        }
        let eps = try f.double("rms_norm_eps")
        guard eps > 0 else { throw HFError.entry(path: f.path, key: "rms_norm_eps", reason: "must be positive") }
        return LlamaConfig(
            vocabSize: try f.int("vocab_size"), dim: dim, nLayers: try f.int("num_hidden_layers"), nHeads: heads, nKVHeads: kvHeads,
            ffnDim: try f.int("intermediate_size"), ropeBase: Float(rope.base), normEps: Float(eps),
            tiedEmbedding: try f.bool("tie_word_embeddings", default: true),
            contextLength: f.has("max_position_embeddings") ? try f.int("max_position_embeddings") : 2048,
            qkvBias: type == "qwen2")
    }

    static func tensorName(_ ours: String) -> String {
        if ours == "token_embd.weight" { return "model.embed_tokens.weight" }
        if ours == "output_norm.weight" { return "model.norm.weight" }
        if ours == "output.weight" { return "lm_head.weight" }
        let parts = ours.split(separator: ".")  // blk.i.name.weight|bias
        let theirs = [
            "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
            "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
        ][String(parts[2])]!
        return "model.layers.\(parts[1]).\(theirs).\(parts[3])"
    }

    static func isBuffer(_ name: String) -> Bool { name.hasSuffix("rotary_emb.inv_freq") }

    static func convert(_ values: UnsafeMutableBufferPointer<Float>, parameter: String, _ c: LlamaConfig, inverse: Bool) {
        RotaryLayout.permute(values, parameter: parameter, c, inverse: inverse)
    }

    static func configJSON(_ c: LlamaConfig, eos: Int32, bos: Int32?) -> [String: JSONValue] {
        [
            "architectures": .array([.string(c.qkvBias ? "Qwen2ForCausalLM" : "LlamaForCausalLM")]),
            "model_type": .string(c.qkvBias ? "qwen2" : "llama"),
            "hidden_size": .number(Double(c.dim)), "intermediate_size": .number(Double(c.ffnDim)),
            "num_hidden_layers": .number(Double(c.nLayers)), "num_attention_heads": .number(Double(c.nHeads)),
            "num_key_value_heads": .number(Double(c.nKVHeads)), "head_dim": .number(Double(c.headDim)),
            "hidden_act": .string("silu"), "rms_norm_eps": .number(Double(c.normEps)),
            "rope_theta": .number(Double(c.ropeBase)), "max_position_embeddings": .number(Double(c.contextLength)),
            "vocab_size": .number(Double(c.vocabSize)), "tie_word_embeddings": .bool(c.tiedEmbedding),
            "mlp_bias": .bool(false),
        ]
    }
}
