/// A small command-line parser: AlignScope takes no package dependencies, so no ArgumentParser.
/// Each verb declares its options; `--help` prints the verb's text; errors are `UsageError`s.
struct UsageError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

struct OptionSpec {
    let name: String        // "--db"
    let value: String?      // placeholder, nil for a flag
    let help: String
}

struct ParsedArguments {
    var positional: [String] = []
    var values: [String: String] = [:]
    var flags: Set<String> = []

    func string(_ name: String) -> String? { values[name] }

    func int(_ name: String, default def: Int, min lo: Int? = nil, max hi: Int? = nil) throws -> Int {
        guard let text = values[name] else { return def }
        let range = switch (lo, hi) {
        case let (l?, h?): " in [\(l), \(h)]"
        case let (l?, nil): " >= \(l)"
        case let (nil, h?): " <= \(h)"
        default: ""
        }
        guard let n = Int(text), n >= (lo ?? .min), n <= (hi ?? .max) else {
            throw UsageError(message: "\(name): expected an integer\(range), found \"\(text)\"")
        }
        return n
    }

    func double(_ name: String, default def: Double) throws -> Double {
        guard let text = values[name] else { return def }
        guard let x = Double(text), x.isFinite else { throw UsageError(message: "\(name): expected a number, found \"\(text)\"") }
        return x
    }

    func has(_ flag: String) -> Bool { flags.contains(flag) }
}

struct Verb {
    let name: String
    let synopsis: String
    let summary: String
    let details: String
    let positionals: [String]       // names, all required
    let options: [OptionSpec]

    var help: String {
        var out = "usage: alignscope \(name) \(synopsis)\n\n\(summary)\n"
        if !details.isEmpty { out += "\n\(details)\n" }
        if !options.isEmpty {
            out += "\noptions:\n"
            for o in options + [OptionSpec(name: "--help", value: nil, help: "show this help")] {
                let left = o.value.map { "\(o.name) \($0)" } ?? o.name
                out += "  " + left.padding(toLength: max(24, left.count + 2), withPad: " ", startingAt: 0) + o.help + "\n"
            }
        }
        return out
    }

    func parse(_ args: [String]) throws -> ParsedArguments {
        var parsed = ParsedArguments()
        var i = 0
        while i < args.count {
            let a = args[i]
            if a.hasPrefix("--") {
                var name = a
                var inlineValue: String?
                if let eq = a.firstIndex(of: "=") {
                    name = String(a[..<eq])
                    inlineValue = String(a[a.index(after: eq)...])
                }
                guard let spec = options.first(where: { $0.name == name }) else {
                    throw UsageError(message: "alignscope \(self.name): unknown option \(name) (see alignscope \(self.name) --help)")
                }
                if spec.value != nil {
                    if let inlineValue {
                        parsed.values[name] = inlineValue
                    } else {
                        guard i + 1 < args.count else {
                            throw UsageError(message: "alignscope \(self.name): \(name) needs a value (\(spec.value!))")
                        }
                        parsed.values[name] = args[i + 1]
                        i += 1
                    }
                } else {
                    if let inlineValue {
                        throw UsageError(message: "alignscope \(self.name): \(name) is a flag and takes no value (found \"\(a)\"; write \(name) alone, or leave it out)")
                    }
                    parsed.flags.insert(name)
                }
            } else {
                parsed.positional.append(a)
            }
            i += 1
        }
        if parsed.positional.count < positionals.count {
            throw UsageError(message: "alignscope \(name): missing \(positionals[parsed.positional.count]) (usage: alignscope \(name) \(synopsis))")
        }
        if parsed.positional.count > positionals.count {
            throw UsageError(message: "alignscope \(name): unexpected argument \"\(parsed.positional[positionals.count])\"")
        }
        return parsed
    }
}
