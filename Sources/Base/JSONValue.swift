import Foundation

/// A JSON value: a line of a data file (inspected for its format, so that every type error can name
/// the field and what was found), or a decoded experiment spec (module Experiments adds JSON5 decoding
/// and key paths). `canonical` is the serialisation used for run identities and hashes.
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
        case .string(let s): out += jsonQuoted(s)
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
                out += jsonQuoted(key)
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

    /// Parses one JSON text; the error message is the decoder's, shortened to its first line.
    /// One JSON value (a JSONL line), with an error message that names the column where it can.
    public static func parseLine(_ text: Substring) throws -> JSONValue { try parse(text) }

    public static func parse(_ text: Substring) throws(JSONParseError) -> JSONValue {
        do {
            // A trailing newline, so that no number ends the buffer: Foundation's number parse can read past
            // the end of its input (found by FuzzSpec in the spec decoder, which has the same guard).
            let value = try JSONDecoder().decode(JSONValue.self, from: Data((text + "\n").utf8))
            // Foundation keeps one of a repeated key silently (and Python's json the last): refuse the line instead
            if text.contains("\""), let (line, column, what) = JSON5Locator.firstError(in: String(text)), what.hasPrefix("duplicate key") {
                throw JSONParseError(message: (line > 1 ? "line \(line), " : "") + "column \(column): \(what)")
            }
            return value
        } catch let error as JSONParseError {
            throw error
        } catch {
            // Foundation says where nothing is wrong ("The given data was not valid JSON."); the JSON5
            // locator (JSON is a subset) names the column and the reason where it can.
            if let (line, column, what) = JSON5Locator.firstError(in: String(text)) {
                throw JSONParseError(message: (line > 1 ? "line \(line), " : "") + "column \(column): \(what)")
            }
            if case let DecodingError.dataCorrupted(context) = error {
                let short = JSONParseError.shorten(context)
                if !short.hasPrefix("The given data was not valid JSON") { throw JSONParseError(message: short) }
            }
            throw JSONParseError(message: "JSON5-only syntax (e.g. unquoted keys, single quotes, comments or trailing commas) is not JSON")
        }
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
}

/// A JSON text that did not parse, with a message that names the column where it can.
public struct JSONParseError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    static func shorten(_ context: DecodingError.Context) -> String {
        var text = context.debugDescription
        if let underlying = context.underlyingError {
            let detail = (underlying as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            if let detail, !detail.isEmpty { text = detail }
        }
        return text.split(separator: "\n").first.map(String.init) ?? text
    }
}

/// A JSON string literal for `text`: quotes, backslashes and control characters escaped, the rest
/// written as UTF-8.
public func jsonQuoted(_ text: String) -> String {
    var out = "\""
    out.reserveCapacity(text.utf8.count + 2)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case let s where s.value < 0x20:
            out += "\\u" + String(repeating: "0", count: 4 - String(s.value, radix: 16).count)
                + String(s.value, radix: 16)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
