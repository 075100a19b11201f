/// Model FLOPs (useful work, not what a kernel happens to execute), counted as 2 per multiply-add.
///
/// Training step over sequences of lengths T_s with M targeted positions, N = block-matrix weights
/// (`ModelShape.nonEmbeddingMatrixParameters`), L layers, H query heads of size d, hidden c, vocabulary V:
///
///     6 N sum(T_s)                       block matmuls: forward 2N per token, backward 4N (dX and dW)
///   + 3 * L H * sum_s 2 d T_s (T_s + 1)  causal attention: query t meets t + 1 keys in QKᵀ and in PV
///                                        (2 d (t + 1) FLOPs each), summed over t; backward twice forward
///   + 6 c V M                            output head, only on targeted positions
///
/// Norms, RoPE, SwiGLU, softmax and AdamW are elementwise (O(N) per step, not per token) and left out, as
/// in the usual 6N rule. The attention term counts only the causal half (the masked half is not needed).
public enum FlopCount {
    /// FLOPs of one training step (forward + backward).
    public static func trainingStep(_ shape: BenchReport.ModelShape, sequenceLengths: [Int], targets: Int) -> Double {
        forward(shape, sequenceLengths: sequenceLengths, targets: targets) * 3
    }

    /// FLOPs of one forward over the sequences, with the head on `targets` positions.
    public static func forward(_ shape: BenchReport.ModelShape, sequenceLengths: [Int], targets: Int) -> Double {
        let tokens = Double(sequenceLengths.reduce(0, +))
        let matrices = 2 * Double(shape.nonEmbeddingMatrixParameters) * tokens
        var pairs = 0.0
        for t in sequenceLengths { pairs += Double(t) * Double(t + 1) / 2 }
        let attention = Double(shape.nLayers * shape.nHeads) * 4 * Double(shape.headDim) * pairs
        let head = 2 * Double(shape.dim) * Double(shape.vocabSize) * Double(targets)
        return matrices + attention + head
    }
}
