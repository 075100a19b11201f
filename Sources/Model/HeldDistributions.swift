import Base
import Kernels

/// The next-token distributions of a model at fixed positions, kept as what makes them: the final hidden state at each
/// position (dim floats) and that model's output matrix (vocabulary x dim). Their logits are recomputed when compared
/// (one head product per position), which costs the head's time but holds dim floats a position instead of the
/// vocabulary's: for SmolLM2 576 floats instead of 49,152, and one 113 MB copy of the output matrix.
/// What `BatchSession.scoreDistributions(_:comparing:)` compares the model's distributions with: the objective's
/// reference model, or the model's own starting weights (issue 38: KL to the reference, where the mass went).
public final class HeldDistributions: @unchecked Sendable {
    public let dim: Int
    public let vocabulary: Int
    /// rows x dim final hidden states.
    public let hidden: [Float]
    /// vocabulary x dim, copied when made (the model may train on).
    let output: UnsafeMutableBufferPointer<Float>
    /// The output matrix rounded to bf16, for a bf16 session (the rounding a bf16 head product applies).
    let rounded: UnsafeMutableBufferPointer<UInt16>?
    public var rows: Int { hidden.count / dim }

    init(hidden: [Float], model: LlamaModel, precision: Precision) {
        dim = model.config.dim
        vocabulary = model.config.vocabSize
        self.hidden = hidden
        output = .allocate(capacity: vocabulary * dim)
        _ = output.initialize(from: UnsafeBufferPointer(start: model.p.output, count: vocabulary * dim))
        if precision == .bf16 && Products.backend == .onednn {
            let r = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: vocabulary * dim)
            roundToBF16Parallel(r.baseAddress!, output.baseAddress!, count: vocabulary * dim)
            rounded = r
        } else {
            rounded = nil
        }
    }

    deinit {
        output.deallocate()
        rounded?.deallocate()
    }

    /// Bytes held.
    public var bytes: Int { 4 * hidden.count + 4 * output.count + 2 * (rounded?.count ?? 0) }
}

extension BatchSession {
    /// The model's distributions at every response token's position of `items` (laid out as `scoreResponses` lays them
    /// out), held for later comparison: per item and response, its first position's row in the result.
    public func hold(_ items: [(prompt: [Int32], responses: [[Int32]])]) -> (held: HeldDistributions, firstRows: [[Int]]) {
        let (flat, firstRows) = finalHiddenStates(items)
        return (HeldDistributions(hidden: flat, model: model, precision: precision), firstRows)
    }

    /// The final hidden state (dim floats) at every response token's position of `items` (the position that predicts
    /// it), laid out as `scoreResponses` lays them out; the output head is not run. Rows in item, response, token order;
    /// per item and response, its first row.
    public func finalHiddenStates(_ items: [(prompt: [Int32], responses: [[Int32]])]) -> (states: [Float], firstRows: [[Int]]) {
        let c = model.config.dim
        let states = layOut(items, read: { positions in positions.map { Array(UnsafeBufferPointer(start: self.hidden + $0.slot * c, count: c)) } })
        var flat: [Float] = [], firstRows: [[Int]] = []
        for item in states {
            var rows: [Int] = []
            for response in item {
                rows.append(flat.count / c)
                for position in response { flat += position }
            }
            firstRows.append(rows)
        }
        return (flat, firstRows)
    }

    /// What `scoreDistributions(_:comparing:)` reads at each response position besides its distribution.
    public struct PositionExtras: Sendable {
        /// Against each held set's distribution at the position's row, in their order (empty: the response has no held rows).
        public var comparisons: [DistributionComparison]
        /// The final hidden state there (dim floats), when asked for.
        public var hidden: [Float]
    }

    /// `scoreDistributions`, and at each response position: the comparison with each of `held` (all made by `hold` of the
    /// same items: row `firstRows[item][response]` + the token's index; a nil first row: none) and, with `hiddenStates`,
    /// the final hidden state there.
    public func scoreDistributions(_ items: [(prompt: [Int32], responses: [[Int32]])], comparing held: [HeldDistributions],
                                   firstRows: [[Int?]], hiddenStates: Bool) -> [[[(TokenDistribution, PositionExtras)]]] {
        var heldRows: [Int] = []
        for (k, item) in items.enumerated() {
            for (r, response) in item.responses.enumerated() {
                let first = held.isEmpty ? nil : firstRows[k][r]
                for i in 0..<response.count { heldRows.append(first.map { $0 + i } ?? -1) }
            }
        }
        var next = 0
        return layOut(items, read: { positions in
            defer { next += positions.count }
            return self.distributions(at: positions, held: held, rows: heldRows[next..<next + positions.count], hiddenStates: hiddenStates)
        })
    }

    private func distributions(at positions: [(slot: Int, token: Int32)], held: [HeldDistributions], rows: ArraySlice<Int>,
                               hiddenStates: Bool) -> [(TokenDistribution, PositionExtras)] {
        let v = model.config.vocabSize, c = model.config.dim
        var result: [(TokenDistribution, PositionExtras)] = []
        result.reserveCapacity(positions.count)
        var targets = [Int32](repeating: 0, count: headRows)
        let block = UnsafeMutablePointer<TokenDistribution>.allocate(capacity: headRows)
        let compared = UnsafeMutablePointer<DistributionComparison>.allocate(capacity: max(1, held.count) * headRows)
        let heldLogits = UnsafeMutablePointer<Float>.allocate(capacity: held.isEmpty ? 0 : headRows * v)
        let heldHidden = UnsafeMutablePointer<Float>.allocate(capacity: held.isEmpty ? 0 : headRows * c)
        defer {
            block.deallocate()
            compared.deallocate()
            heldLogits.deallocate()
            heldHidden.deallocate()
        }
        let first = rows.startIndex
        headBlocks(positions.map(\.slot)) { start, m in
            for i in 0..<m { targets[i] = positions[start + i].token }
            tokenDistributions(block, logits, targets, m: m, v: v)
            let any = (0..<m).contains { rows[first + start + $0] >= 0 }
            if any {
                for (h, set) in held.enumerated() {
                    for i in 0..<m {
                        let row = rows[first + start + i]
                        if row >= 0 {
                            set.hidden.withUnsafeBufferPointer { (heldHidden + i * c).update(from: $0.baseAddress! + row * c, count: c) }
                        } else {
                            (heldHidden + i * c).update(repeating: 0, count: c)
                        }
                    }
                    matmul(heldLogits, heldHidden, set.output.baseAddress!, m: m, n: v, k: c, transB: true, precision: precision,
                           roundedB: set.rounded.map { UnsafePointer($0.baseAddress!) })
                    compareDistributions(compared + h * headRows, now: logits, held: heldLogits, m: m, v: v)
                }
            }
            for i in 0..<m {
                let own = any && rows[first + start + i] >= 0
                let extras = PositionExtras(
                    comparisons: own ? held.indices.map { compared[$0 * headRows + i] } : [],
                    hidden: hiddenStates ? Array(UnsafeBufferPointer(start: hidden + positions[start + i].slot * c, count: c)) : [])
                result.append((block[i], extras))
            }
            block.deinitialize(count: m)
            if any { for h in held.indices { (compared + h * headRows).deinitialize(count: m) } }
        }
        return result
    }
}
