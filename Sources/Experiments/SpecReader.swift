import Base
import Probes
/// Reads one JSON object of a spec with key-path-aware errors: every key must be consumed or
/// named as allowed, so a typo is an error instead of a silent default.
struct SpecReader {
    let file: String
    let path: String
    let fields: [String: JSONValue]

    init(_ value: JSONValue, file: String, path: String, allowed: [String]) throws {
        guard case .object(let o) = value else {
            throw SpecError.invalid(file: file, path: path.isEmpty ? "(top level)" : path, expected: "an object", found: Self.describe(value))
        }
        self.file = file
        self.path = path
        self.fields = o
        for key in o.keys.sorted() where !allowed.contains(key) {
            throw SpecError.unknownKey(file: file, path: sub(key), allowed: allowed)
        }
    }

    func sub(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return "\"\(s)\""
        case .number(let x): return JSONValue.format(x)
        case .bool(let b): return b ? "true" : "false"
        default: return v.typeName
        }
    }

    func has(_ key: String) -> Bool { fields[key] != nil }

    func value(_ key: String) -> JSONValue? { fields[key] }

    func invalid(_ key: String, _ expected: String) -> SpecError {
        .invalid(file: file, path: sub(key), expected: expected, found: fields[key].map(Self.describe) ?? "nothing")
    }

    func string(_ key: String, default def: String? = nil, oneOf choices: [String]? = nil) throws -> String {
        guard let v = fields[key] else {
            if let def { return def }
            throw SpecError.missing(file: file, path: sub(key), expected: choices.map { "one of " + $0.map { "\"\($0)\"" }.joined(separator: ", ") } ?? "a string")
        }
        guard case .string(let s) = v else {
            throw invalid(key, choices.map { "one of " + $0.map { "\"\($0)\"" }.joined(separator: ", ") } ?? "a string")
        }
        if let choices, !choices.contains(s) {
            throw invalid(key, "one of " + choices.map { "\"\($0)\"" }.joined(separator: ", "))
        }
        return s
    }

    func int(_ key: String, default def: Int? = nil, min lo: Int? = nil, max hi: Int? = nil) throws -> Int {
        let expected = Self.rangeText("an integer", lo.map(Double.init), hi.map(Double.init), inclusiveLow: true)
        guard let v = fields[key] else {
            if let def { return def }
            throw SpecError.missing(file: file, path: sub(key), expected: expected)
        }
        guard case .number(let x) = v, x == x.rounded(), abs(x) < 1e15 else { throw invalid(key, expected) }
        let n = Int(x)
        if let lo, n < lo { throw invalid(key, expected) }
        if let hi, n > hi { throw invalid(key, expected) }
        return n
    }

    func double(_ key: String, default def: Double? = nil, min lo: Double? = nil, max hi: Double? = nil, exclusiveMin: Bool = false,
                exclusiveMax: Bool = false) throws -> Double {
        let expected = Self.rangeText("a number", lo, hi, inclusiveLow: !exclusiveMin, inclusiveHigh: !exclusiveMax)
        guard let v = fields[key] else {
            if let def { return def }
            throw SpecError.missing(file: file, path: sub(key), expected: expected)
        }
        guard case .number(let x) = v, x.isFinite else { throw invalid(key, expected) }
        if let lo, exclusiveMin ? x <= lo : x < lo { throw invalid(key, expected) }
        if let hi, exclusiveMax ? x >= hi : x > hi { throw invalid(key, expected) }
        return x
    }

    func bool(_ key: String, default def: Bool) throws -> Bool {
        guard let v = fields[key] else { return def }
        guard case .bool(let b) = v else { throw invalid(key, "true or false") }
        return b
    }

    func object(_ key: String, allowed: [String], required: Bool = false) throws -> SpecReader? {
        guard let v = fields[key] else {
            if required { throw SpecError.missing(file: file, path: sub(key), expected: "an object with keys " + allowed.joined(separator: ", ")) }
            return nil
        }
        return try SpecReader(v, file: file, path: sub(key), allowed: allowed)
    }

    static func rangeText(_ kind: String, _ lo: Double?, _ hi: Double?, inclusiveLow: Bool, inclusiveHigh: Bool = true) -> String {
        switch (lo, hi) {
        case let (l?, h?): return "\(kind) in \(inclusiveLow ? "[" : "(")\(JSONValue.format(l)), \(JSONValue.format(h))\(inclusiveHigh ? "]" : ")")"
        case let (l?, nil): return "\(kind) \(inclusiveLow ? ">=" : ">") \(JSONValue.format(l))"
        case let (nil, h?): return "\(kind) \(inclusiveHigh ? "<=" : "<") \(JSONValue.format(h))"
        default: return kind
        }
    }
}
