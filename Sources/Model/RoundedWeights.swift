import Base
import Kernels

// bf16 products read their inputs rounded to bf16. Scoring and sampling run many passes over the same
// weights (a probe set's passes, every decoding step, the output head every 64 rows), and each product
// used to round its weight matrix again. Inside a `withRoundedWeights` scope the model keeps one rounded
// copy of all its parameters (2 bytes each, made at the outermost scope's entry, freed at its exit) and
// the products read that. The values are those the products would round themselves (`roundToBF16`), so
// results are bit for bit the same; only the time changes (docs/PERFORMANCE.md, round 10).
//
// Training does not use it: the copy is 2 bytes per parameter more at the step's peak (260 MiB for
// SmolLM2, past the 3 GiB budget of the 4 x 256 step), for a saving that measured in the noise (each
// weight is read by two products per step, and the activations are rounded per product either way).
//
// The weights must not change inside a scope: `BatchSession` opens one around each of its calls, and
// nothing inside a call updates weights.
extension LlamaModel {
    /// Runs `body` with the bf16 copy of the weights made when `precision` is bf16 (at the outermost
    /// scope's entry; freed when it ends). The weights must not change inside `body`.
    public func withRoundedWeights<T>(_ precision: Precision, _ body: () throws -> T) rethrows -> T {
        guard precision == .bf16 && Products.backend == .onednn else { return try body() }
        if roundedScopes == 0 {
            let copy = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: parameterCount)
            roundToBF16Parallel(copy.baseAddress!, parameters.baseAddress!, count: parameterCount)
            roundedStorage = copy
        }
        roundedScopes += 1
        defer {
            roundedScopes -= 1
            if roundedScopes == 0 {
                roundedStorage?.deallocate()
                roundedStorage = nil
            }
        }
        return try body()
    }

    /// The bf16 copy of the weight matrix at `w` (a pointer into `parameters`) inside a
    /// `withRoundedWeights` scope; nil outside one (the product then rounds `w` itself).
    func roundedWeight(_ w: UnsafePointer<Float>) -> UnsafePointer<UInt16>? {
        guard let copy = roundedStorage?.baseAddress else { return nil }
        let offset = w - UnsafePointer(parameters.baseAddress!)
        precondition(offset >= 0 && offset < parameterCount, "LlamaModel.roundedWeight: not a parameter")
        return UnsafePointer(copy + offset)
    }
}
