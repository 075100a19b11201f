import Base
import Model

/// `gpt_neox` (`GPTNeoXForCausalLM`, Pythia): LayerNorms with bias, attention and feed-forward in parallel
/// (`use_parallel_residual`, default true) or in sequence, RoPE on the first `rotary_pct` of each head
/// (transformers 4's `rotary_pct`, 5's `rope_parameters.partial_rotary_factor`), exact GELU, biases on every
/// linear layer, an untied output head (`embed_out`).
///
/// Layouts: the checkpoint's fused `query_key_value` has rows per head, q_h | k_h | v_h (head h at rows
/// 3hd ..< 3(h+1)d); ours (`attn_qkv`, as llama.cpp's converter writes it) all q, then all k, then all v.
/// Within q and k, the rotary rows are half-split in the checkpoint and adjacent pairs in ours
/// (`RotaryLayout`). No chat template: Pythia models are used with the `hh` or `raw` templates.
enum GPTNeoXArchitecture: HFArchitecture {
    static let modelTypes = ["gpt_neox"]

    static func config(_ f: JSONFile) throws(HFError) -> LlamaConfig {
        let dim = try f.int("hidden_size"), heads = try f.heads(dim: dim), headDim = dim / heads
        if f.has("hidden_act"), try f.string("hidden_act") != "gelu" {
            throw HFError.entry(path: f.path, key: "hidden_act", reason: "\"\(try f.string("hidden_act"))\" is not supported (gelu, the exact form)")
        }
        guard try f.bool("attention_bias", default: true) else {
            throw HFError.entry(path: f.path, key: "attention_bias", reason: "false is not supported (GPT-NeoX with biases)")
        }
        let rope = try f.rope(legacyThetaKey: "rotary_emb_base", legacyFractionKey: "rotary_pct")
        let rotary = Int(Double(headDim) * rope.fraction)  // transformers' int(head_size * rotary_pct)
        guard rotary >= 2, rotary % 2 == 0 else {
            throw HFError.entry(path: f.path, key: "rotary_pct", reason: "\(rope.fraction) of head size \(headDim) gives \(rotary) rotary dimensions; expected an even number >= 2")
        }
        let eps = try f.double("layer_norm_eps")
        guard eps > 0 else { throw HFError.entry(path: f.path, key: "layer_norm_eps", reason: "must be positive") }
        return LlamaConfig(
            vocabSize: try f.int("vocab_size"), dim: dim, nLayers: try f.int("num_hidden_layers"), nHeads: heads, nKVHeads: heads,
            ffnDim: try f.int("intermediate_size"), ropeBase: Float(rope.base), normEps: Float(eps),
            tiedEmbedding: try f.bool("tie_word_embeddings", default: false),
            contextLength: f.has("max_position_embeddings") ? try f.int("max_position_embeddings") : 2048,
            qkvBias: true, block: .gptNeoX, parallelResidual: try f.bool("use_parallel_residual", default: true), rotaryDims: rotary)
    }

    static func tensorName(_ ours: String) -> String {
        switch ours {
        case "token_embd.weight": return "gpt_neox.embed_in.weight"
        case "output_norm.weight": return "gpt_neox.final_layer_norm.weight"
        case "output_norm.bias": return "gpt_neox.final_layer_norm.bias"
        case "output.weight": return "embed_out.weight"
        default: break
        }
        let parts = ours.split(separator: ".")  // blk.i.name.weight|bias
        let theirs = [
            "attn_norm": "input_layernorm", "attn_qkv": "attention.query_key_value", "attn_output": "attention.dense",
            "ffn_norm": "post_attention_layernorm", "ffn_up": "mlp.dense_h_to_4h", "ffn_down": "mlp.dense_4h_to_h",
        ][String(parts[2])]!
        return "gpt_neox.layers.\(parts[1]).\(theirs).\(parts[3])"
    }

    /// Older checkpoints saved the causal mask and RoPE frequencies as tensors.
    static func isBuffer(_ name: String) -> Bool {
        name.hasSuffix(".attention.bias") || name.hasSuffix(".attention.masked_bias") || name.hasSuffix("rotary_emb.inv_freq")
    }

    static func convert(_ values: UnsafeMutableBufferPointer<Float>, parameter: String, _ c: LlamaConfig, inverse: Bool) {
        guard parameter.hasSuffix("attn_qkv.weight") || parameter.hasSuffix("attn_qkv.bias") else { return }
        let columns = parameter.hasSuffix(".bias") ? 1 : c.dim
        if inverse {
            RotaryLayout.permute(values, parameter: parameter, c, inverse: true)
            regroupQKV(values, heads: c.nHeads, headDim: c.headDim, columns: columns, toPerHead: true)
        } else {
            regroupQKV(values, heads: c.nHeads, headDim: c.headDim, columns: columns, toPerHead: false)
            RotaryLayout.permute(values, parameter: parameter, c)
        }
    }

    /// Per-head rows q_h | k_h | v_h (the checkpoint's) <-> q | k | v (ours); `toPerHead` the way out.
    static func regroupQKV(_ w: UnsafeMutableBufferPointer<Float>, heads: Int, headDim d: Int, columns c: Int, toPerHead: Bool) {
        let copy = Array(w)
        for h in 0..<heads {
            for part in 0..<3 {
                let theirs = (h * 3 + part) * d * c, ours = (part * heads + h) * d * c
                let (to, from) = toPerHead ? (theirs, ours) : (ours, theirs)
                for k in 0..<(d * c) { w[to + k] = copy[from + k] }
            }
        }
    }

    static func configJSON(_ c: LlamaConfig, eos: Int32, bos: Int32?) -> [String: JSONValue] {
        [
            "architectures": .array([.string("GPTNeoXForCausalLM")]), "model_type": .string("gpt_neox"),
            "hidden_size": .number(Double(c.dim)), "intermediate_size": .number(Double(c.ffnDim)),
            "num_hidden_layers": .number(Double(c.nLayers)), "num_attention_heads": .number(Double(c.nHeads)),
            "hidden_act": .string("gelu"), "layer_norm_eps": .number(Double(c.normEps)),
            // transformers 4's keys and 5's rope_parameters, so that either reads the file
            "rotary_emb_base": .number(Double(c.ropeBase)), "rotary_pct": .number(Double(c.rotaryDims) / Double(c.headDim)),
            "rope_parameters": .object(["rope_type": .string("default"), "rope_theta": .number(Double(c.ropeBase)),
                                        "partial_rotary_factor": .number(Double(c.rotaryDims) / Double(c.headDim))]),
            "use_parallel_residual": .bool(c.parallelResidual), "attention_bias": .bool(true),
            "max_position_embeddings": .number(Double(c.contextLength)),
            "vocab_size": .number(Double(c.vocabSize)), "tie_word_embeddings": .bool(c.tiedEmbedding),
        ]
    }
}
