/// Where a tensor lives in a GGUF file and what it holds.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// GGML order: `dimensions[0]` (ne0) varies fastest. A matrix with `dimensions == [in, out]` is
    /// stored row-major as `out` rows of `in` values.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Byte offset of the data, relative to the start of the file's data section.
    public internal(set) var offset: Int
    public let elementCount: Int
    public let byteCount: Int

    /// The shape in row-major order, outermost first (`dimensions` reversed): `[out, in]` for a matrix.
    public var shape: [Int] { dimensions.reversed() }
}
