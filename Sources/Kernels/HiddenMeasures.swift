import Base

/// Sum of `count` hidden states of `dim` floats each (rows of `states` from `first`), in Double: H = sum_l h_l.
public func hiddenSum(_ states: UnsafeBufferPointer<Float>, first: Int, count: Int, dim: Int) -> [Double] {
    var out = [Double](repeating: 0, count: dim)
    for l in first..<(first + count) {
        for j in 0..<dim { out[j] += Double(states[l * dim + j]) }
    }
    return out
}

/// CHES (Razin et al. 2024, "Unintentional Unalignment", Definition 2) of a chosen and a rejected response from the sums of
/// the final hidden states at the positions that predict their tokens (`hiddenSum`), H+ over |y+| positions and H- over
/// |y-|: CHES = <H+, H-> - ||H+||^2, and the length-normalised <H+, H-> / (|y+| |y-|) - ||H+||^2 / |y+|^2.
/// `Measure.ches`, `Measure.chesNorm` on a probe's chosen row; `pair_measures` for training pairs.
public func chesValues(chosen: [Double], chosenLength: Int, rejected: [Double], rejectedLength: Int) -> (ches: Double, normalised: Double) {
    var cross = 0.0, own = 0.0
    for j in chosen.indices {
        cross += chosen[j] * rejected[j]
        own += chosen[j] * chosen[j]
    }
    let lp = Double(chosenLength), lr = Double(rejectedLength)
    return (cross - own, cross / (lp * lr) - own / (lp * lp))
}
