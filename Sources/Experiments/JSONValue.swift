import Base
import Foundation
import Probes

/// Spec handling on top of `Probes.JSONValue`: JSON5 decoding with located errors, and key paths.
extension JSONValue {
    /// Decodes JSON5 text. On a syntax error, locates it (line and column) with `JSON5Locator`,
    /// because Foundation's error on Linux carries no position. Two inputs trap in Foundation's
    /// JSON5 number parsing instead of throwing (found by FuzzSpec): a number with an empty exponent
    /// ("5e-"), rejected here first, and a number that ends the text (a top-level "5"), whose parse
    /// reads past the buffer; a newline is appended so that no number ends the text.
    ///
    /// The locator also runs on text Foundation accepts, for what Foundation lets through or reports
    /// without a place: a key repeated in one object (Foundation keeps one silently), a number too
    /// large for a Double, and a raw control character in a string. Bytes that are not UTF-8 are
    /// refused with their offset.
    public static func parseJSON5(_ data: Data, file: String) throws -> JSONValue {
        if let offset = TextFile.firstInvalidUTF8(data) {
            throw SpecError.syntax(file: file, line: 0, column: 0, message: "invalid UTF-8 at byte offset \(offset); expected UTF-8 text")
        }
        let text = String(decoding: data, as: UTF8.self)
        if let (line, column, what) = JSON5Locator.exponentWithoutDigits(in: text) {
            throw SpecError.syntax(file: file, line: line, column: column, message: what)
        }
        if let (line, column, what) = JSON5Locator.firstError(in: text) {
            throw SpecError.syntax(file: file, line: line, column: column, message: what)
        }
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        do {
            return try decoder.decode(JSONValue.self, from: data + [UInt8(ascii: "\n")])
        } catch {
            throw SpecError.syntax(file: file, line: 0, column: 0, message: "not valid JSON5 (\(Self.reason(error)))")
        }
    }

    /// A decoding error in a few words, without Foundation's boilerplate.
    static func reason(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): return (c.underlyingError.map { "\($0)" } ?? c.debugDescription)
        case DecodingError.typeMismatch(_, let c): return c.debugDescription
        default: return "\(error)"
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

extension JSONValue {
    /// Removes the value at a key path (nothing when absent).
    mutating func remove(at path: [String]) {
        guard let first = path.first, case .object(var o) = self else { return }
        if path.count == 1 {
            o[first] = nil
        } else if var child = o[first] {
            child.remove(at: Array(path.dropFirst()))
            o[first] = child
        }
        self = .object(o)
    }
}
