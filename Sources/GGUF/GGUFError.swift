/// Everything that can go wrong reading, mapping or writing a GGUF file.
///
/// Each case carries the file and the place (byte offset, metadata key or tensor name) so that
/// `description` is one line a user can act on.
public enum GGUFError: Error, CustomStringConvertible, Equatable, Sendable {
    case cannotOpen(file: String, reason: String)
    case badMagic(file: String, found: UInt32)
    case unsupportedVersion(file: String, version: UInt32)
    /// The file ends before `what` is complete: it starts at `offset` and needs `needed` bytes (for a
    /// list, at least that many), but only `available` remain.
    case truncated(file: String, offset: Int, needed: Int, available: Int, what: String)
    case invalidValueType(file: String, offset: Int, key: String, type: UInt32)
    case invalidString(file: String, offset: Int, what: String)
    case duplicateKey(file: String, key: String)
    case duplicateTensor(file: String, tensor: String)
    case invalidAlignment(file: String, value: String)
    case invalidTensorDimensions(file: String, tensor: String, dimensions: [UInt64], reason: String)
    /// A tensor type id that GGUF does not define (or this reader does not know).
    case unknownTensorType(file: String, tensor: String, type: UInt32)
    /// A known tensor type that cannot be dequantised here (e.g. Q4_K).
    case unsupportedTensorType(file: String, tensor: String, type: String)
    case misalignedTensorOffset(file: String, tensor: String, offset: UInt64, alignment: Int)
    /// The tensor's bytes `[start, start+size)` (absolute file offsets) run past the end of the file.
    case offsetBeyondFile(file: String, tensor: String, start: UInt64, size: UInt64, fileSize: Int)
    case missingKey(file: String, key: String)
    case wrongValueType(file: String, key: String, expected: String, found: String)
    case invalidMetadata(file: String, key: String, reason: String)
    case missingTensor(file: String, tensor: String)
    case unexpectedTensor(file: String, tensor: String)
    /// Shapes are given in the model's row-major order (outermost first).
    case shapeMismatch(file: String, tensor: String, expected: [Int], found: [Int])
    case unsupportedArchitecture(file: String, architecture: String)
    case writeFailed(file: String, reason: String)
    case invalidWrite(file: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(file, reason):
            return "\(file): cannot open: \(reason)"
        case let .badMagic(file, found):
            return "\(file): not a GGUF file: bad magic 0x\(String(found, radix: 16)) at byte offset 0 (expected \"GGUF\")"
        case let .unsupportedVersion(file, version):
            return "\(file): unsupported GGUF version \(version) at byte offset 4 (supported: 2, 3)"
        case let .truncated(file, offset, needed, available, what):
            return "\(file): truncated: \(what) at byte offset \(offset) needs \(needed) bytes, only \(available) remain"
        case let .invalidValueType(file, offset, key, type):
            return "\(file): metadata key '\(key)' at byte offset \(offset) has unknown value type \(type)"
        case let .invalidString(file, offset, what):
            return "\(file): \(what) at byte offset \(offset) is not valid UTF-8"
        case let .duplicateKey(file, key):
            return "\(file): metadata key '\(key)' appears twice"
        case let .duplicateTensor(file, tensor):
            return "\(file): tensor '\(tensor)' appears twice"
        case let .invalidAlignment(file, value):
            return "\(file): metadata key 'general.alignment' is \(value), expected a uint32 power of two"
        case let .invalidTensorDimensions(file, tensor, dimensions, reason):
            return "\(file): tensor '\(tensor)' has invalid dimensions \(dimensions): \(reason)"
        case let .unknownTensorType(file, tensor, type):
            return "\(file): tensor '\(tensor)' has unknown tensor type id \(type)"
        case let .unsupportedTensorType(file, tensor, type):
            return "\(file): tensor '\(tensor)' has type \(type), which cannot be dequantised (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)"
        case let .misalignedTensorOffset(file, tensor, offset, alignment):
            return "\(file): tensor '\(tensor)' data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .offsetBeyondFile(file, tensor, start, size, fileSize):
            return "\(file): tensor '\(tensor)' data at byte offset \(start) (\(size) bytes) runs past the end of the file (\(fileSize) bytes)"
        case let .missingKey(file, key):
            return "\(file): missing metadata key '\(key)'"
        case let .wrongValueType(file, key, expected, found):
            return "\(file): metadata key '\(key)' is \(found), expected \(expected)"
        case let .invalidMetadata(file, key, reason):
            return "\(file): metadata key '\(key)': \(reason)"
        case let .missingTensor(file, tensor):
            return "\(file): missing tensor '\(tensor)'"
        case let .unexpectedTensor(file, tensor):
            return "\(file): tensor '\(tensor)' is not part of the model"
        case let .shapeMismatch(file, tensor, expected, found):
            return "\(file): tensor '\(tensor)' has shape \(found), expected \(expected)"
        case let .unsupportedArchitecture(file, architecture):
            return "\(file): unsupported architecture '\(architecture)' (supported: llama)"
        case let .writeFailed(file, reason):
            return "\(file): write failed: \(reason)"
        case let .invalidWrite(file, reason):
            return "\(file): cannot write GGUF: \(reason)"
        }
    }
}
