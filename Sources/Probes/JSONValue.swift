import Foundation

/// A parsed JSON value, so that each line of a data file can be inspected for its format and every
/// type error can name the field and what was found.
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Parses one JSON text; the error message is the decoder's, shortened to its first line.
    static func parse(_ text: Substring) throws(JSONParseError) -> JSONValue {
        do {
            // A trailing newline, so that no number ends the buffer: Foundation's number parse can read past
            // the end of its input (found by FuzzSpec in the spec decoder, which has the same guard).
            return try JSONDecoder().decode(JSONValue.self, from: Data((text + "\n").utf8))
        } catch let DecodingError.dataCorrupted(context) {
            throw JSONParseError(message: JSONParseError.shorten(context))
        } catch {
            throw JSONParseError(message: "\(error)")
        }
    }

    /// "a string", "an object", ... for error messages.
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Compact JSON text; object keys are written in sorted order so the text is reproducible.
    var serialized: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .number(x):
            if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
            return "\(x)"
        case let .string(s): return jsonQuoted(s)
        case let .array(items): return "[" + items.map(\.serialized).joined(separator: ",") + "]"
        case let .object(fields):
            return "{" + fields.keys.sorted().map { jsonQuoted($0) + ":" + fields[$0]!.serialized }
                .joined(separator: ",") + "}"
        }
    }
}

struct JSONParseError: Error {
    var message: String

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
func jsonQuoted(_ text: String) -> String {
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
