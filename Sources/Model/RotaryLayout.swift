/// The two row orders of the Q and K projections. Our RoPE (like llama.cpp's for `llama`) rotates adjacent
/// pairs (2j, 2j+1) of each head; transformers (and llama.cpp for `qwen2`, "NEOX" order) rotates the halves
/// (j, j + d/2). The same model in the two orders differs only by a permutation of the rows of Wq and Wk (and
/// of the entries of their biases): our row h*d + 2j + s is their row h*d + s*d/2 + j (d the head size, s in
/// {0, 1}); q.k is unchanged. Loaders of half-split checkpoints permute on the way in, exporters back.
public enum RotaryLayout {
    /// For the parameters whose rows feed RoPE (`blk.N.attn_q/attn_k` weights and biases): heads and columns
    /// per row; nil for every other parameter.
    public static func rows(of parameter: String, _ c: LlamaConfig) -> (heads: Int, columns: Int)? {
        let parts = parameter.split(separator: ".")
        guard parts.count == 4, parts[2] == "attn_q" || parts[2] == "attn_k" else { return nil }
        return (parts[2] == "attn_q" ? c.nHeads : c.nKVHeads, parts[3] == "bias" ? 1 : c.dim)
    }

    /// Half-split row order -> adjacent-pair order, in place; `inverse` the way back.
    public static func permute(_ w: UnsafeMutableBufferPointer<Float>, heads: Int, headDim d: Int, columns c: Int, inverse: Bool = false) {
        let copy = Array(w)
        for h in 0..<heads {
            for j in 0..<d / 2 {
                for s in 0..<2 {
                    let ours = (h * d + 2 * j + s) * c, theirs = (h * d + s * (d / 2) + j) * c
                    let (to, from) = inverse ? (theirs, ours) : (ours, theirs)
                    for k in 0..<c { w[to + k] = copy[from + k] }
                }
            }
        }
    }

    /// Permutes every rotary parameter of `model` from half-split to adjacent-pair order.
    public static func toAdjacentPairs(_ model: LlamaModel) {
        for (name, _) in model.parameterTable {
            if let r = rows(of: name, model.config) {
                permute(model.parameter(name), heads: r.heads, headDim: model.config.headDim, columns: r.columns)
            }
        }
    }
}
