import Foundation

/// A JSON value as decoded from a spec (JSON5 via Foundation's `JSONDecoder.allowsJSON5`), with
/// a canonical serialisation (sorted keys, shortest round-trip numbers) used for run identities.
public indirect enum JSONValue: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Short name of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Canonical JSON text: object keys sorted, no whitespace, integers without a fraction.
    public var canonical: String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let x): out += JSONValue.format(x)
        case .string(let s): out += JSONValue.quote(s)
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                v.write(into: &out)
            }
            out += "]"
        case .object(let dict):
            out += "{"
            for (i, key) in dict.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                out += JSONValue.quote(key)
                out += ":"
                dict[key]!.write(into: &out)
            }
            out += "}"
        }
    }

    /// Numbers: integral values within 2^53 print without a fraction, others with Swift's shortest
    /// round-trip form (`1e-05`), which is also what readable run names use.
    public static func format(_ x: Double) -> String {
        if x.isFinite, x == x.rounded(), abs(x) < 9_007_199_254_740_992 {
            return String(Int64(x))
        }
        return "\(x)"
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let x = try? c.decode(Double.self) {
            self = .number(x)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let x): try c.encode(x)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Decodes JSON5 text. On a syntax error, locates it (line and column) with `JSON5Locator`,
    /// because Foundation's error on Linux carries no position. Two inputs trap in Foundation's
    /// JSON5 number parsing instead of throwing (found by FuzzSpec): a number with an empty exponent
    /// ("5e-"), rejected here first, and a number that ends the text (a top-level "5"), whose parse
    /// reads past the buffer; a newline is appended so that no number ends the text.
    public static func parseJSON5(_ data: Data, file: String) throws -> JSONValue {
        let text = String(decoding: data, as: UTF8.self)
        if let (line, column, what) = JSON5Locator.exponentWithoutDigits(in: text) {
            throw SpecError.syntax(file: file, line: line, column: column, message: what)
        }
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        do {
            return try decoder.decode(JSONValue.self, from: data + [UInt8(ascii: "\n")])
        } catch {
            if let (line, column, what) = JSON5Locator.firstError(in: text) {
                throw SpecError.syntax(file: file, line: line, column: column, message: what)
            }
            throw SpecError.syntax(file: file, line: 0, column: 0, message: "not valid JSON5")
        }
    }

    /// Returns the value at a dotted key path, if present.
    public func value(at path: [String]) -> JSONValue? {
        guard let first = path.first else { return self }
        guard case .object(let o) = self, let v = o[first] else { return nil }
        return v.value(at: Array(path.dropFirst()))
    }

    /// Merges `other` into this value: objects key by key (recursively), anything else replaced.
    public mutating func merge(_ other: JSONValue) {
        guard case .object(var mine) = self, case .object(let theirs) = other else { self = other; return }
        for (k, v) in theirs {
            if var existing = mine[k] {
                existing.merge(v)
                mine[k] = existing
            } else {
                mine[k] = v
            }
        }
        self = .object(mine)
    }

    /// Sets the value at a dotted key path, creating intermediate objects.
    public mutating func set(_ newValue: JSONValue, at path: [String]) {
        guard let first = path.first else { self = newValue; return }
        var o: [String: JSONValue]
        if case .object(let existing) = self { o = existing } else { o = [:] }
        var child = o[first] ?? .object([:])
        child.set(newValue, at: Array(path.dropFirst()))
        o[first] = child
        self = .object(o)
    }
}
