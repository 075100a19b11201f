/// Typed metadata look-ups that throw `missingKey` / `wrongValueType` naming the key.
extension GGUFFile {
    /// The value stored under `key`; throws `missingKey` when absent.
    public func value(_ key: String) throws -> GGUFValue {
        guard let v = metadata[key] else { throw GGUFError.missingKey(file: path, key: key) }
        return v
    }

    /// A string value.
    public func string(_ key: String) throws -> String {
        let v = try value(key)
        guard let s = v.string else { throw wrongType(key, expected: "string", found: v) }
        return s
    }

    /// A value of any integer type, as `Int`.
    public func int(_ key: String) throws -> Int {
        let v = try value(key)
        guard let i = v.int else { throw wrongType(key, expected: "an integer", found: v) }
        return i
    }

    /// A float32 or float64 value, as `Double`.
    public func double(_ key: String) throws -> Double {
        let v = try value(key)
        guard let d = v.double else { throw wrongType(key, expected: "a float", found: v) }
        return d
    }

    /// A bool value.
    public func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard let b = v.bool else { throw wrongType(key, expected: "bool", found: v) }
        return b
    }

    /// An array of strings (e.g. `tokenizer.ggml.tokens`).
    public func strings(_ key: String) throws -> [String] {
        let v = try value(key)
        guard let items = v.array else { throw wrongType(key, expected: "array of string", found: v) }
        var out: [String] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let s = item.string else { throw wrongType(key, expected: "array of string", found: v) }
            out.append(s)
        }
        return out
    }

    /// An array of integers of any integer type (e.g. `tokenizer.ggml.token_type`).
    public func ints(_ key: String) throws -> [Int] {
        let v = try value(key)
        guard let items = v.array else { throw wrongType(key, expected: "array of integers", found: v) }
        var out: [Int] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let i = item.int else { throw wrongType(key, expected: "array of integers", found: v) }
            out.append(i)
        }
        return out
    }

    private func wrongType(_ key: String, expected: String, found: GGUFValue) -> GGUFError {
        var kind = found.type.description
        if let items = found.array {
            kind += items.first.map { " of \($0.type)" } ?? " (empty)"
        }
        return .wrongValueType(file: path, key: key, expected: expected, found: kind)
    }
}
