/// The two row orders of the Q and K projections. Our RoPE (like llama.cpp's for `llama`) rotates adjacent
/// pairs (2j, 2j+1) of each head; transformers (and llama.cpp for `qwen2` and `gptneox`, "NEOX" order)
/// rotates the halves (j, j + r/2) of the head's first r = `rotaryDims` entries (r = head size but for
/// GPT-NeoX's partial rotary). The same model in the two orders differs only by a permutation of the rows of
/// Wq and Wk (and of the entries of their biases): our row h*d + 2j + s is their row h*d + s*r/2 + j for
/// j < r/2 (d the head size, s in {0, 1}); rows h*d + r ..< (h+1)*d are not rotated and stay. q.k is
/// unchanged. Loaders of half-split checkpoints permute on the way in, exporters back.
public enum RotaryLayout {
    /// For the parameters whose rows feed RoPE (`blk.N.attn_q/attn_k` weights and biases, or the Q and K parts
    /// of GPT-NeoX's `blk.N.attn_qkv`): where the rotary rows start, their heads, and columns per row; nil for
    /// every other parameter.
    public static func rows(of parameter: String, _ c: LlamaConfig) -> (parts: [(firstRow: Int, heads: Int)], columns: Int)? {
        let parts = parameter.split(separator: ".")
        guard parts.count == 4 else { return nil }
        let columns = parts[3] == "bias" ? 1 : c.dim
        switch parts[2] {
        case "attn_q": return ([(0, c.nHeads)], columns)
        case "attn_k": return ([(0, c.nKVHeads)], columns)
        case "attn_qkv": return ([(0, c.nHeads), (c.dim, c.nKVHeads)], columns)
        default: return nil
        }
    }

    /// Half-split row order -> adjacent-pair order, in place, for `heads` heads of `headDim` rows starting at
    /// row 0 of `w`; `inverse` the way back.
    public static func permute(_ w: UnsafeMutableBufferPointer<Float>, heads: Int, headDim d: Int, rotaryDims r: Int? = nil,
                               columns c: Int, inverse: Bool = false) {
        let r = r ?? d
        let copy = Array(w[0..<(heads * d * c)])
        for h in 0..<heads {
            for j in 0..<r / 2 {
                for s in 0..<2 {
                    let ours = (h * d + 2 * j + s) * c, theirs = (h * d + s * (r / 2) + j) * c
                    let (to, from) = inverse ? (theirs, ours) : (ours, theirs)
                    for k in 0..<c { w[to + k] = copy[from + k] }
                }
            }
        }
    }

    /// Permutes every rotary row block of `values`, the tensor `parameter` of a model of configuration `c`
    /// (nothing for other parameters).
    public static func permute(_ values: UnsafeMutableBufferPointer<Float>, parameter: String, _ c: LlamaConfig, inverse: Bool = false) {
        guard let r = rows(of: parameter, c) else { return }
        for part in r.parts {
            let start = part.firstRow * r.columns, count = part.heads * c.headDim * r.columns
            permute(UnsafeMutableBufferPointer(rebasing: values[start..<(start + count)]), heads: part.heads, headDim: c.headDim,
                    rotaryDims: c.rotaryDims, columns: r.columns, inverse: inverse)
        }
    }

    /// Permutes every rotary parameter of `model` from half-split to adjacent-pair order.
    public static func toAdjacentPairs(_ model: LlamaModel) {
        for (name, _) in model.parameterTable {
            permute(model.parameter(name), parameter: name, model.config)
        }
    }
}
