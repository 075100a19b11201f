/// GPT-2's reversible byte <-> printable-character mapping used by byte-level BPE vocabularies.
///
/// Bytes that are printable Latin-1 characters ('!'...'~', '¡'...'¬', '®'...'ÿ') stand for
/// themselves; the other 68 bytes (controls, space, DEL, the Latin-1 controls and soft hyphen), in
/// increasing order, stand for U+0100, U+0101, ... So a space is "Ġ" (U+0120) and "\n" is "Ċ".
enum ByteLevel {
    /// Scalar value of the character that stands for each byte.
    static let scalarOfByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if standsForItself(UInt8(b)) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// Byte for each character scalar below 512, -1 where the scalar stands for no byte.
    static let byteOfScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 512)
        for b in 0..<256 { table[Int(scalarOfByte[b])] = Int16(b) }
        return table
    }()

    private static func standsForItself(_ b: UInt8) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }

    /// The bytes a vocabulary string stands for, or nil if a character is outside the mapping.
    static func bytes(of token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard s.value < 512, case let b = byteOfScalar[Int(s.value)], b >= 0 else { return nil }
            out.append(UInt8(b))
        }
        return out
    }

    /// The vocabulary string for `bytes` (the inverse of `bytes(of:)`).
    static func string(of bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(scalarOfByte[Int(b)])!) }
        return String(s)
    }
}
