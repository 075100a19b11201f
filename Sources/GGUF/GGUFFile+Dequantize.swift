import Base
import Dispatch

extension GGUFFile {
    /// The tensor called `name`, dequantised to Float, in storage order (ne0 fastest, i.e. row-major
    /// in `shape`). Throws `missingTensor`, or `unsupportedTensorType` naming the type and the tensor.
    public func floats(_ name: String) throws -> [Float] {
        let info = try tensor(name)
        try checkDequantizable(info)
        if info.elementCount == 0 { return [] }
        return [Float](unsafeUninitializedCapacity: info.elementCount) { buffer, initialized in
            dequantize(info, into: buffer.baseAddress!)
            initialized = info.elementCount
        }
    }

    /// Dequantises `name` into `destination`, which must hold exactly its element count.
    func dequantize(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try tensor(name)
        try checkDequantizable(info)
        precondition(destination.count == info.elementCount, "destination size \(destination.count) != \(info.elementCount) for \(name)")
        guard let base = destination.baseAddress else { return }
        dequantize(info, into: base)
    }

    func checkDequantizable(_ info: GGUFTensorInfo) throws {
        guard info.type.isDequantizable else {
            throw GGUFError.unsupportedTensorType(file: path, tensor: info.name, type: info.type.description)
        }
    }

    /// Big tensors are split into two halves of whole blocks, dequantised on two threads; each output
    /// element depends only on its own block, so the result does not depend on scheduling.
    private func dequantize(_ info: GGUFTensorInfo, into out: UnsafeMutablePointer<Float>) {
        let src = data(of: info)
        guard let base = src.baseAddress, info.elementCount > 0 else { return }
        let blockElements = info.type.blockLayout.elements
        let nBlocks = info.elementCount / blockElements
        let type = info.type
        let parallelThreshold = 1 << 20  // elements
        if info.elementCount >= parallelThreshold {
            // Pointers are not Sendable; pass addresses into the concurrent closure.
            let srcAddress = UInt(bitPattern: base), dstAddress = UInt(bitPattern: out)
            let half = nBlocks / 2
            DispatchQueue.concurrentPerform(iterations: 2) { part in
                Dequantize.blocks(
                    type, part == 0 ? 0..<half : half..<nBlocks,
                    from: UnsafeRawPointer(bitPattern: srcAddress)!,
                    to: UnsafeMutablePointer<Float>(bitPattern: dstAddress)!)
            }
        } else {
            Dequantize.blocks(type, 0..<nBlocks, from: base, to: out)
        }
        withExtendedLifetime(bytes) {}
    }
}

/// Block decoders. `src` points at block 0 of the tensor, `dst` at element 0; `range` is in blocks.
enum Dequantize {
    static func blocks(_ type: GGMLType, _ range: Range<Int>, from src: UnsafeRawPointer, to dst: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            for i in range { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in range { dst[i] = Half.toFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .bf16:
            for i in range { dst[i] = Half.bf16ToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .q8_0:
            // block: f16 d, int8 q[32]; x = q * d
            for b in range {
                let p = src + 34 * b
                let d = half(p)
                let y = dst + 32 * b
                for j in 0..<32 { y[j] = Float(Int8(bitPattern: p.load(fromByteOffset: 2 + j, as: UInt8.self))) * d }
            }
        case .q4_0:
            // block: f16 d, 16 bytes; low nibbles are elements 0..15, high nibbles 16..31; x = (q - 8) * d
            for b in range {
                let p = src + 18 * b
                let d = half(p)
                let y = dst + 32 * b
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 2 + j, as: UInt8.self)
                    y[j] = Float(Int(q & 0xf) - 8) * d
                    y[j + 16] = Float(Int(q >> 4) - 8) * d
                }
            }
        case .q4_1:
            // block: f16 d, f16 m, 16 bytes (nibbles as Q4_0); x = q * d + m
            for b in range {
                let p = src + 20 * b
                let d = half(p)
                let m = half(p + 2)
                let y = dst + 32 * b
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 4 + j, as: UInt8.self)
                    y[j] = Float(q & 0xf) * d + m
                    y[j + 16] = Float(q >> 4) * d + m
                }
            }
        default:
            preconditionFailure("dequantize called for \(type)")
        }
    }

    @inline(__always)
    private static func half(_ p: UnsafeRawPointer) -> Float {
        Half.toFloat(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
    }
}
