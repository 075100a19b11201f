import Foundation

/// A problem with one value of an experiment spec, found while decoding it. Each names the key path
/// (`train.lr`, `data.probes.categories.random.derive`) and what was expected; the spec reader adds the
/// file and turns it into one line (`Experiments.SpecError`).
public enum SpecIssue: Error, Equatable {
    case invalid(path: String, expected: String, found: String)
    case unknownKey(path: String, allowed: [String])
    case missing(path: String, expected: String)
}

/// The fields of one object of a spec, read inside a `Decodable` initialiser so that the initialiser is
/// the field's only declaration: its key, its default, its range and the unknown-key check. Values are
/// read from the object as JSON (`JSONValue`), so that every error can say what was found.
///
/// ```swift
/// init(from decoder: any Decoder) throws {
///     let f = try SpecFields(decoder, allowed: ["steps", "lr"])
///     steps = try f.int("steps", min: 1)
///     lr = try f.double("lr", default: 2e-5, min: 0, max: 1, exclusiveMin: true)
/// }
/// ```
public struct SpecFields {
    /// The object's key path ("" at the top level).
    public let path: String
    public let fields: [String: JSONValue]
    private let container: KeyedDecodingContainer<SpecKey>?

    /// Reads the object at `decoder`; a key not in `allowed` is an error naming it and the allowed keys.
    public init(_ decoder: any Decoder, allowed: [String]) throws {
        path = decoder.codingPath.map(\.stringValue).joined(separator: ".")
        let value = try decoder.singleValueContainer().decode(JSONValue.self)
        guard case .object(let o) = value else {
            throw SpecIssue.invalid(path: path.isEmpty ? "(top level)" : path, expected: "an object", found: Self.describe(value))
        }
        fields = o
        container = try decoder.container(keyedBy: SpecKey.self)
        for key in o.keys.sorted() where !allowed.contains(key) {
            throw SpecIssue.unknownKey(path: sub(key), allowed: allowed)
        }
    }

    /// The key path of `key` in this object.
    public func sub(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func has(_ key: String) -> Bool { fields[key] != nil }

    public func value(_ key: String) -> JSONValue? { fields[key] }

    /// How an error shows a value: strings quoted, numbers as written, other types by name.
    public static func describe(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return "\"\(s)\""
        case .number(let x): return JSONValue.format(x)
        case .bool(let b): return b ? "true" : "false"
        default: return v.typeName
        }
    }

    public func invalid(_ key: String, _ expected: String) -> SpecIssue {
        .invalid(path: sub(key), expected: expected, found: fields[key].map(Self.describe) ?? "nothing")
    }

    public func string(_ key: String, default def: String? = nil, oneOf choices: [String]? = nil) throws -> String {
        let expected = choices.map { "one of " + $0.map { "\"\($0)\"" }.joined(separator: ", ") } ?? "a string"
        guard let v = fields[key] else {
            if let def { return def }
            throw SpecIssue.missing(path: sub(key), expected: expected)
        }
        guard case .string(let s) = v else { throw invalid(key, expected) }
        if let choices, !choices.contains(s) { throw invalid(key, expected) }
        return s
    }

    /// One of an enum's cases, by raw value (`"cosine"` -> `.cosine`).
    public func choice<E: RawRepresentable & CaseIterable>(_ key: String, default def: E? = nil) throws -> E where E.RawValue == String {
        let raw = try string(key, default: def?.rawValue, oneOf: E.allCases.map(\.rawValue))
        return E(rawValue: raw)!
    }

    public func int(_ key: String, default def: Int? = nil, min lo: Int? = nil, max hi: Int? = nil) throws -> Int {
        let expected = Self.rangeText("an integer", lo.map(Double.init), hi.map(Double.init), inclusiveLow: true)
        guard let v = fields[key] else {
            if let def { return def }
            throw SpecIssue.missing(path: sub(key), expected: expected)
        }
        guard case .number(let x) = v, x == x.rounded(), abs(x) < 1e15 else { throw invalid(key, expected) }
        let n = Int(x)
        if let lo, n < lo { throw invalid(key, expected) }
        if let hi, n > hi { throw invalid(key, expected) }
        return n
    }

    public func double(_ key: String, default def: Double? = nil, min lo: Double? = nil, max hi: Double? = nil,
                       exclusiveMin: Bool = false, exclusiveMax: Bool = false) throws -> Double {
        let expected = Self.rangeText("a number", lo, hi, inclusiveLow: !exclusiveMin, inclusiveHigh: !exclusiveMax)
        guard let v = fields[key] else {
            if let def { return def }
            throw SpecIssue.missing(path: sub(key), expected: expected)
        }
        guard case .number(let x) = v, x.isFinite else { throw invalid(key, expected) }
        if let lo, exclusiveMin ? x <= lo : x < lo { throw invalid(key, expected) }
        if let hi, exclusiveMax ? x >= hi : x > hi { throw invalid(key, expected) }
        return x
    }

    public func bool(_ key: String, default def: Bool) throws -> Bool {
        guard let v = fields[key] else { return def }
        guard case .bool(let b) = v else { throw invalid(key, "true or false") }
        return b
    }

    /// A nested object decoded by its own type's decoder (whose errors name their own key paths), or nil
    /// when absent. With `required`, absence is an error that lists the object's keys.
    public func object<T: Decodable>(_ key: String, as type: T.Type = T.self, required keys: [String]? = nil) throws -> T? {
        guard fields[key] != nil, let container else {
            if let keys { throw SpecIssue.missing(path: sub(key), expected: "an object with keys " + keys.joined(separator: ", ")) }
            return nil
        }
        return try container.decode(T.self, forKey: SpecKey(key))
    }

    public static func rangeText(_ kind: String, _ lo: Double?, _ hi: Double?, inclusiveLow: Bool, inclusiveHigh: Bool = true) -> String {
        switch (lo, hi) {
        case let (l?, h?): return "\(kind) in \(inclusiveLow ? "[" : "(")\(JSONValue.format(l)), \(JSONValue.format(h))\(inclusiveHigh ? "]" : ")")"
        case let (l?, nil): return "\(kind) \(inclusiveLow ? ">=" : ">") \(JSONValue.format(l))"
        case let (nil, h?): return "\(kind) \(inclusiveHigh ? "<=" : "<") \(JSONValue.format(h))"
        default: return kind
        }
    }
}

/// A coding key for any string, so that a spec object's keys can be listed, checked and named.
public struct SpecKey: CodingKey, Hashable {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(_ string: String) { stringValue = string }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

extension KeyedEncodingContainer where K == SpecKey {
    /// Encodes `value` under `key`.
    public mutating func encode<T: Encodable>(_ value: T, _ key: String) throws {
        try encode(value, forKey: SpecKey(key))
    }
}
