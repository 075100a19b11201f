import Base

/// A small command-line parser: AlignScope takes no package dependencies, so no ArgumentParser, but the
/// same shape. Each verb is a struct whose stored properties are its typed options; its `options` table
/// declares, once per option, the flag, the placeholder, the help and the property it fills. One parser
/// fills any verb from argv, `validate()` checks values against each other, and `arguments` turns a verb
/// back into argv (for `run --jobs` workers, so that every option reaches them).
protocol Verb {
    static var name: String { get }
    static var synopsis: String { get }
    static var summary: String { get }
    static var details: String { get }
    static var options: [VerbOption<Self>] { get }
    init()
    /// Checks the parsed values (ranges, combinations); throws `UsageError`.
    func validate() throws
    /// Does the work; returns the exit code.
    func run() throws -> Int32
}

extension Verb {
    static var details: String { "" }
    func validate() throws {}
}

/// How a verb samples: one declaration of the options (`VerbOption.sampling`) and of their bounds, the spec's
/// (`label.max_tokens`, `objective.temperature`, ...): max_tokens in [1, 4096], temperature >= 0 (> 0 where samples
/// must differ), top_p in (0, 1], seed >= 0.
struct SamplingFlags: Equatable {
    var maxTokens: Int
    var temperature: Double
    var topP = 1.0
    var seed = 0
    /// Whether temperature 0 (greedy decoding) is allowed.
    var greedyAllowed: Bool

    func validate() throws {
        guard (1...4096).contains(maxTokens) else { throw UsageError(message: "--max-tokens: expected an integer in [1, 4096], found \(maxTokens)") }
        if greedyAllowed {
            guard temperature >= 0 else { throw UsageError(message: "--temperature: expected a number >= 0, found \(JSONValue.format(temperature))") }
        } else {
            guard temperature > 0 else { throw UsageError(message: "--temperature: expected a number > 0 (samples must differ), found \(JSONValue.format(temperature))") }
        }
        guard topP > 0, topP <= 1 else { throw UsageError(message: "--top-p: expected a number in (0, 1], found \(JSONValue.format(topP))") }
        guard seed >= 0 else { throw UsageError(message: "--seed: expected an integer >= 0, found \(seed)") }
    }
}

/// A bad command line (exit code 2).
struct UsageError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// One option of verb `V`: a positional argument, an option with a value, or a flag, bound to a property.
struct VerbOption<V> {
    /// `rest`: a positional taking every remaining argument (at least one).
    /// `repeated`: an option that may be given several times, each value kept in order.
    enum Kind { case positional, rest, value(placeholder: String), repeated(placeholder: String), flag }
    let name: String
    let kind: Kind
    let help: String
    /// Parses `text` into the property.
    let set: (inout V, String) throws -> Void
    /// The property as argv text, or nil when it has its default (or is absent).
    let get: (V) -> String?

    static func positional(_ name: String, _ key: WritableKeyPath<V, String>, help: String) -> VerbOption {
        VerbOption(name: name, kind: .positional, help: help, set: { $0[keyPath: key] = $1 }, get: { $0[keyPath: key] })
    }

    var isPositional: Bool {
        switch kind {
        case .positional, .rest: return true
        case .value, .repeated, .flag: return false
        }
    }

    /// The last positional, repeated: `SHARD...`. As argv text (`get`), its values joined by newlines.
    static func rest(_ name: String, _ key: WritableKeyPath<V, [String]>, help: String) -> VerbOption {
        VerbOption(name: name, kind: .rest, help: help, set: { $0[keyPath: key].append($1) },
                   get: { $0[keyPath: key].isEmpty ? nil : $0[keyPath: key].joined(separator: "\n") })
    }

    /// An option given any number of times (`--sbatch-arg ARG`...); as argv text, its values joined by newlines.
    static func repeated(_ name: String, _ placeholder: String, _ key: WritableKeyPath<V, [String]>, help: String) -> VerbOption {
        VerbOption(name: name, kind: .repeated(placeholder: placeholder), help: help, set: { $0[keyPath: key].append($1) },
                   get: { $0[keyPath: key].isEmpty ? nil : $0[keyPath: key].joined(separator: "\n") })
    }

    static func option(_ name: String, _ placeholder: String, _ key: WritableKeyPath<V, String?>, help: String) -> VerbOption {
        VerbOption(name: name, kind: .value(placeholder: placeholder), help: help,
                   set: { $0[keyPath: key] = $1 }, get: { $0[keyPath: key] })
    }

    static func option(_ name: String, _ placeholder: String, _ key: WritableKeyPath<V, String>, help: String) -> VerbOption where V: Verb {
        VerbOption(name: name, kind: .value(placeholder: placeholder), help: help, set: { $0[keyPath: key] = $1 },
                   get: { $0[keyPath: key] == V()[keyPath: key] ? nil : $0[keyPath: key] })
    }

    static func option(_ name: String, _ placeholder: String, _ key: WritableKeyPath<V, Int>, help: String) -> VerbOption where V: Verb {
        VerbOption(name: name, kind: .value(placeholder: placeholder), help: help, set: { verb, text in
            guard let n = Int(text) else { throw UsageError(message: "\(name): expected an integer, found \"\(text)\"") }
            verb[keyPath: key] = n
        }, get: { $0[keyPath: key] == V()[keyPath: key] ? nil : String($0[keyPath: key]) })
    }

    static func option(_ name: String, _ placeholder: String, _ key: WritableKeyPath<V, Int?>, help: String) -> VerbOption {
        VerbOption(name: name, kind: .value(placeholder: placeholder), help: help, set: { verb, text in
            guard let n = Int(text) else { throw UsageError(message: "\(name): expected an integer, found \"\(text)\"") }
            verb[keyPath: key] = n
        }, get: { $0[keyPath: key].map(String.init) })
    }

    static func option(_ name: String, _ placeholder: String, _ key: WritableKeyPath<V, Double>, help: String) -> VerbOption where V: Verb {
        VerbOption(name: name, kind: .value(placeholder: placeholder), help: help, set: { verb, text in
            guard let x = Double(text), x.isFinite else { throw UsageError(message: "\(name): expected a number, found \"\(text)\"") }
            verb[keyPath: key] = x
        }, get: { $0[keyPath: key] == V()[keyPath: key] ? nil : "\($0[keyPath: key])" })
    }

    /// An option with a fixed set of values (a `ChatTemplate`, an export format, ...), parsed into its type: a
    /// value outside the set is a `UsageError` naming them.
    static func choice<T: RawRepresentable & CaseIterable>(_ name: String, _ placeholder: String, _ key: WritableKeyPath<V, T?>,
                                                           help: String) -> VerbOption where T.RawValue == String {
        VerbOption(name: name, kind: .value(placeholder: placeholder), help: help, set: { verb, text in
            verb[keyPath: key] = try parseChoice(name, text, as: T.self)
        }, get: { $0[keyPath: key]?.rawValue })
    }

    static func choice<T: RawRepresentable & CaseIterable & Equatable>(_ name: String, _ placeholder: String, _ key: WritableKeyPath<V, T>,
                                                                       help: String) -> VerbOption where T.RawValue == String, V: Verb {
        VerbOption(name: name, kind: .value(placeholder: placeholder), help: help, set: { verb, text in
            verb[keyPath: key] = try parseChoice(name, text, as: T.self)
        }, get: { $0[keyPath: key] == V()[keyPath: key] ? nil : $0[keyPath: key].rawValue })
    }

    /// `text` as a value of `T`, or the one line naming the values.
    static func parseChoice<T: RawRepresentable & CaseIterable>(_ name: String, _ text: String, as: T.Type) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: text) else {
            let all = T.allCases.map(\.rawValue)
            throw UsageError(message: "\(name): expected \(all.dropLast().joined(separator: ", ")) or \(all.last ?? ""), found \"\(text)\"")
        }
        return value
    }

    /// The sampling options (`--max-tokens`, `--temperature`, `--top-p`, `--seed`), declared once for every verb that
    /// samples; their bounds are `SamplingFlags.validate`'s, the spec's.
    static func sampling(_ key: WritableKeyPath<V, SamplingFlags>) -> [VerbOption] where V: Verb {
        let d = V()[keyPath: key]
        func number(_ name: String, _ placeholder: String, _ field: WritableKeyPath<SamplingFlags, Double>, _ help: String) -> VerbOption {
            VerbOption(name: name, kind: .value(placeholder: placeholder), help: help, set: { verb, text in
                guard let x = Double(text), x.isFinite else { throw UsageError(message: "\(name): expected a number, found \"\(text)\"") }
                verb[keyPath: key.appending(path: field)] = x
            }, get: { $0[keyPath: key.appending(path: field)] == d[keyPath: field] ? nil : "\($0[keyPath: key.appending(path: field)])" })
        }
        func integer(_ name: String, _ placeholder: String, _ field: WritableKeyPath<SamplingFlags, Int>, _ help: String) -> VerbOption {
            VerbOption(name: name, kind: .value(placeholder: placeholder), help: help, set: { verb, text in
                guard let n = Int(text) else { throw UsageError(message: "\(name): expected an integer, found \"\(text)\"") }
                verb[keyPath: key.appending(path: field)] = n
            }, get: { $0[keyPath: key.appending(path: field)] == d[keyPath: field] ? nil : String($0[keyPath: key.appending(path: field)]) })
        }
        return [
            integer("--max-tokens", "N", \.maxTokens, "at most N new tokens (default \(d.maxTokens))"),
            number("--temperature", "X", \.temperature, "sampling temperature" + (d.greedyAllowed ? ", 0 = greedy" : "") + " (default \(JSONValue.format(d.temperature)))"),
            number("--top-p", "P", \.topP, "nucleus sampling mass (default \(JSONValue.format(d.topP)))"),
            integer("--seed", "S", \.seed, "sampling seed (default \(d.seed))"),
        ]
    }

    /// `--db PATH`, the run store, defaulting to `Commands.defaultStore`.
    static func store(_ key: WritableKeyPath<V, String>) -> VerbOption where V: Verb {
        option("--db", "PATH", key, help: "run store (default \(Commands.defaultStore))")
    }

    static func flag(_ name: String, _ key: WritableKeyPath<V, Bool>, help: String) -> VerbOption {
        VerbOption(name: name, kind: .flag, help: help, set: { verb, _ in verb[keyPath: key] = true },
                   get: { $0[keyPath: key] ? "" : nil })
    }
}

extension Verb {
    /// Fills a verb from argv (after the verb's name). Unknown options, missing values, flags given a value,
    /// missing or extra positional arguments are `UsageError`s naming the option.
    static func parse(_ args: [String]) throws -> Self {
        var verb = Self()
        let positionals = options.filter(\.isPositional)
        var nextPositional = 0
        var i = 0
        while i < args.count {
            let a = args[i]
            if a.hasPrefix("--") {
                var name = a
                var inline: String?
                if let eq = a.firstIndex(of: "=") {
                    name = String(a[..<eq])
                    inline = String(a[a.index(after: eq)...])
                }
                guard let option = options.first(where: { $0.name == name }) else {
                    throw UsageError(message: "alignscope \(Self.name): unknown option \(name) (see alignscope \(Self.name) --help)")
                }
                switch option.kind {
                case .flag:
                    if inline != nil {
                        throw UsageError(message: "alignscope \(Self.name): \(name) is a flag and takes no value (found \"\(a)\"; write \(name) alone, or leave it out)")
                    }
                    try option.set(&verb, "")
                case .value(let placeholder), .repeated(let placeholder):
                    if let inline {
                        try option.set(&verb, inline)
                    } else {
                        guard i + 1 < args.count else {
                            throw UsageError(message: "alignscope \(Self.name): \(name) needs a value (\(placeholder))")
                        }
                        try option.set(&verb, args[i + 1])
                        i += 1
                    }
                case .positional, .rest:
                    throw UsageError(message: "alignscope \(Self.name): unknown option \(name)")
                }
            } else if nextPositional == positionals.count, let last = positionals.last, case .rest = last.kind {
                try last.set(&verb, a)
            } else {
                guard nextPositional < positionals.count else {
                    throw UsageError(message: "alignscope \(Self.name): unexpected argument \"\(a)\"")
                }
                try positionals[nextPositional].set(&verb, a)
                nextPositional += 1
            }
            i += 1
        }
        if nextPositional < positionals.count {
            throw UsageError(message: "alignscope \(Self.name): missing \(positionals[nextPositional].name) (usage: alignscope \(Self.name) \(synopsis))")
        }
        try verb.validate()
        return verb
    }

    /// The verb as argv (after its name): positionals, then every option that differs from its default.
    var arguments: [String] {
        var positional: [String] = [], named: [String] = []
        for option in Self.options {
            guard let text = option.get(self) else { continue }
            switch option.kind {
            case .positional: positional.append(text)
            case .rest: positional += text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            case .value: named += [option.name, text]
            case .repeated: named += text.split(separator: "\n", omittingEmptySubsequences: false).flatMap { [option.name, String($0)] }
            case .flag: named.append(option.name)
            }
        }
        return positional + named
    }

    static var help: String {
        var out = "usage: alignscope \(name) \(synopsis)\n\n\(summary)\n"
        if !details.isEmpty { out += "\n\(details)\n" }
        let named = options.filter { !$0.isPositional }
        let positional = options.filter(\.isPositional)
        if !positional.isEmpty {
            out += "\narguments:\n"
            for o in positional { out += "  " + o.name.padding(toLength: max(24, o.name.count + 2), withPad: " ", startingAt: 0) + o.help + "\n" }
        }
        out += "\noptions:\n"
        for o in named + [VerbOption(name: "--help", kind: .flag, help: "show this help", set: { _, _ in }, get: { _ in nil })] {
            var left = o.name
            if case .value(let placeholder) = o.kind { left += " \(placeholder)" }
            if case .repeated(let placeholder) = o.kind { left += " \(placeholder) (repeatable)" }
            out += "  " + left.padding(toLength: max(24, left.count + 2), withPad: " ", startingAt: 0) + o.help + "\n"
        }
        return out
    }
}
