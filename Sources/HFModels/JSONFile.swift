import Base
import Foundation

/// A JSON file of a model directory, read whole, with typed accessors whose errors name the file and key.
struct JSONFile {
    let path: String
    let root: [String: JSONValue]

    init(path: String) throws(HFError) {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HFError.file(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "missing")
        }
        root = try Self.object(data, path: path, what: "")
    }

    /// The JSON object in `bytes` (UTF-8); errors name `path` and, when given, `what` part of the file it is.
    static func object(_ bytes: some Collection<UInt8>, path: String, what: String) throws(HFError) -> [String: JSONValue] {
        let prefix = what.isEmpty ? "" : what + " "
        guard let text = String(validating: bytes, as: UTF8.self) else { throw HFError.file(path: path, reason: prefix + "is not UTF-8 text") }
        let value: JSONValue
        do {
            value = try JSONValue.parse(Substring(text))
        } catch {
            throw HFError.file(path: path, reason: prefix + "is not valid JSON (\(error.message))")
        }
        guard case let .object(object) = value else { throw HFError.file(path: path, reason: prefix + "is not a JSON object (\(value.typeName))") }
        return object
    }

    func has(_ key: String) -> Bool {
        if let v = root[key], v != .null { return true }
        return false
    }

    func value(_ key: String) throws(HFError) -> JSONValue {
        guard let v = root[key], v != .null else { throw HFError.entry(path: path, key: key, reason: "missing") }
        return v
    }

    /// An integer in [min, max]; the default bound (2^24) is past every size a model file gives (vocabularies,
    /// widths, context lengths), so an absurd value is refused here, before anything is allocated for it.
    func int(_ key: String, min: Int = 1, max: Int = 1 << 24) throws(HFError) -> Int {
        let v = try value(key)
        guard case let .number(x) = v, x == x.rounded(), let n = Int(exactly: x) else {
            throw HFError.entry(path: path, key: key, reason: "expected an integer, found \(v.canonical.count > 40 ? v.typeName : v.canonical)")
        }
        guard n >= min, n <= max else { throw HFError.entry(path: path, key: key, reason: "expected an integer in [\(min), \(max)], found \(n)") }
        return n
    }

    func double(_ key: String) throws(HFError) -> Double {
        let v = try value(key)
        guard case let .number(x) = v else { throw HFError.entry(path: path, key: key, reason: "expected a number, found \(v.typeName)") }
        return x
    }

    func bool(_ key: String, default fallback: Bool) throws(HFError) -> Bool {
        guard has(key) else { return fallback }
        guard case let .bool(b) = try value(key) else { throw HFError.entry(path: path, key: key, reason: "expected true or false") }
        return b
    }

    func string(_ key: String) throws(HFError) -> String {
        let v = try value(key)
        guard case let .string(s) = v else { throw HFError.entry(path: path, key: key, reason: "expected a string, found \(v.typeName)") }
        return s
    }
}
