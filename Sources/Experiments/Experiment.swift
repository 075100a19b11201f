import Base
import Foundation
import Probes

/// A validated experiment spec expanded into its runs.
public struct Experiment: Sendable {
    public struct PlannedRun: Sendable, Equatable {
        /// Readable name, e.g. `sft-what/lr=1e-05,seed=2` (just the experiment name without a sweep).
        public var name: String
        public var config: RunConfig
        /// Canonical JSON of the resolved config, and its sha256 (the run's identity).
        public var configJSON: String
        public var configSHA256: String
        /// The swept values of this run, key path -> value text, in sweep order.
        public var sweepValues: [(key: String, value: String)]

        public static func == (a: PlannedRun, b: PlannedRun) -> Bool {
            a.configSHA256 == b.configSHA256 && a.name == b.name
        }
    }

    public var name: String
    public var specPath: String
    /// The directory that relative paths in the spec are resolved against.
    public var baseDirectory: URL
    public var specText: String
    public var specSHA256: String
    public var runs: [PlannedRun]

    /// Reads, validates and expands a spec file. Every problem is a `SpecError` naming the file and key path.
    public static func load(path: String) throws -> Experiment {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do {
            data = try TextFile.read(path)
        } catch {
            switch error {
            case let .unreadable(_, reason): throw SpecError.unreadable(file: path, reason: reason)
            case let .invalidText(_, offset): throw SpecError.syntax(file: path, line: 0, column: 0, message: "invalid UTF-8 at byte offset \(offset); expected UTF-8 text")
            }
        }
        let tree = try JSONValue.parseJSON5(data, file: path)
        return try parse(tree: tree, text: String(decoding: data, as: UTF8.self), file: path, baseDirectory: url.deletingLastPathComponent())
    }

    /// The same spec under another experiment name (`--new-version`): runs, run names and the results folder
    /// take the new name; the spec text and its sha256 stay the file's.
    public func renamed(_ newName: String) throws -> Experiment {
        guard case .object(var top) = try JSONValue.parseJSON5(Data(specText.utf8), file: specPath) else {
            throw SpecError.invalid(file: specPath, path: "(top level)", expected: "an object", found: "something else")
        }
        top["name"] = .string(newName)
        return try Self.parse(tree: .object(top), text: specText, file: specPath, baseDirectory: baseDirectory)
    }

    public static func parse(text: String, file: String, baseDirectory: URL) throws -> Experiment {
        try parse(tree: try JSONValue.parseJSON5(Data(text.utf8), file: file), text: text, file: file, baseDirectory: baseDirectory)
    }

    static func parse(tree: JSONValue, text: String, file: String, baseDirectory: URL) throws -> Experiment {
        guard case .object(var top) = tree else {
            throw SpecError.invalid(file: file, path: "(top level)", expected: "an object", found: tree.typeName)
        }
        // a watched checkpoint folder: one run, whose identity holds the folder's absolute path
        if case .object(var model)? = top["model"], case .string(let folder)? = model["checkpoints"] {
            for key in ["stages", "sweep"] where top[key] != nil {
                throw SpecError.invalid(file: file, path: key, expected: "no \(key): a spec whose model is checkpoints is one run (the folder's checkpoints are its steps)",
                                        found: SpecFields.describe(top[key]!))
            }
            if !folder.isEmpty && !folder.hasPrefix("/") {
                model["checkpoints"] = .string(resolve(folder, against: baseDirectory))
                top["model"] = .object(model)
            }
        }
        let baseSweep = try Sweep(top["sweep"], file: file, path: "sweep")
        top["sweep"] = nil
        let stagesValue = top["stages"]
        top["stages"] = nil
        let base = JSONValue.object(top)

        // Stages: each is the base spec with its own keys merged in (objects recursively), its own
        // sweep added to the base sweep, and its runs named `<experiment>/<stage>[/<swept values>]`.
        var stages: [(name: String?, tree: JSONValue, sweep: Sweep)] = []
        if let stagesValue {
            guard case .array(let list) = stagesValue, !list.isEmpty else {
                throw SpecError.invalid(file: file, path: "stages", expected: "a non-empty list of stage objects", found: SpecFields.describe(stagesValue))
            }
            var names: Set<String> = []
            for (i, item) in list.enumerated() {
                let path = "stages[\(i)]"
                guard case .object(var o) = item else {
                    throw SpecError.invalid(file: file, path: path, expected: "an object with a name", found: SpecFields.describe(item))
                }
                guard case .string(let name)? = o["name"], SafeName.isPathComponent(name, maxBytes: 64), !name.contains("=") else {
                    throw SpecError.invalid(file: file, path: "\(path).name", expected: "a stage name of 1-64 bytes without '/', '=', spaces or control characters, not starting with '.'", found: o["name"].map(SpecFields.describe) ?? "nothing")
                }
                guard names.insert(name).inserted else {
                    throw SpecError.invalid(file: file, path: "\(path).name", expected: "a name used by no other stage", found: "\"\(name)\"")
                }
                for key in o.keys.sorted() where !(RunConfig.topKeys + ["name"]).contains(key) || ["stages", "description"].contains(key) {
                    throw SpecError.unknownKey(file: file, path: "\(path).\(key)", allowed: RunConfig.topKeys.filter { !["stages", "description", "name"].contains($0) } + ["name"])
                }
                let stageSweep = try Sweep(o["sweep"], file: file, path: "\(path).sweep")
                o["sweep"] = nil
                o["name"] = nil
                var tree = base
                tree.merge(.object(o))
                do {
                    _ = try RunConfig.resolve(tree, file: file)
                } catch let SpecError.invalid(f, p, e, found) {
                    throw SpecError.invalid(file: f, path: "\(path): \(p)", expected: e, found: found)
                }
                stages.append((name, tree, baseSweep.adding(stageSweep)))
            }
        } else {
            // Validate the base spec first so that its errors name the spec's own keys.
            _ = try RunConfig.resolve(base, file: file)
            stages = [(nil, base, baseSweep)]
        }

        let total = stages.reduce(0) { $0 > Sweep.maxRuns ? $0 : $0 + min($1.sweep.count, Sweep.maxRuns + 1) }
        if total > Sweep.maxRuns {
            throw SpecError.invalid(file: file, path: "sweep", expected: "at most \(Sweep.maxRuns) runs in one experiment",
                                    found: stages.map { String($0.sweep.count == Int.max ? "more than 2^63" : "\($0.sweep.count)") }.joined(separator: " + ") + " runs")
        }
        var runs: [PlannedRun] = []
        var seen: [String: String] = [:]
        var folderOf: [String: String] = [:]
        var stageOf: [String: String] = [:]  // run name -> its stage's name
        var spinBase: [String: String] = [:]  // a SPIN iteration's run name -> the name without "/iter=k"
        for stage in stages {
            for assignment in stage.sweep.assignments {
                var tree = stage.tree
                for (key, value) in assignment {
                    tree.set(value, at: key.split(separator: ".").map(String.init))
                }
                var config = try RunConfig.resolve(tree, file: file)
                let values = assignment.map { (key: $0.key, value: Sweep.valueText($0.value)) }
                var name = config.experiment
                if let s = stage.name { name += "/\(s)" }
                if !stage.sweep.isEmpty { name += "/" + values.map { "\(stage.sweep.shortName($0.key))=\($0.value)" }.joined(separator: ",") }
                let prefix = stage.name.map { "stage \($0): " } ?? ""
                let experimentName = config.experiment
                /// The run of stage `s` planned before this one whose swept values agree with this run's on every key
                /// both sweep (seed k's for seed k); the last iteration of a SPIN stage.
                func paired(stage s: String, _ path: String, what: String, where ok: (PlannedRun) -> Bool) throws -> String {
                    let mine = Dictionary(values.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                    let ofStage = runs.filter { stageOf[$0.name] == s && ok($0) }
                    let agreeing = ofStage.filter { parent in parent.sweepValues.allSatisfy { kv in mine[kv.key].map { $0 == kv.value } ?? true } }
                    let bases = Set(agreeing.map { spinBase[$0.name] ?? $0.name })
                    guard bases.count == 1, let last = agreeing.last else {
                        let found = agreeing.isEmpty ? "none of \(ofStage.count) run\(ofStage.count == 1 ? "" : "s")" : agreeing.map(\.name).joined(separator: ", ")
                        throw SpecError.invalid(file: file, path: prefix + path,
                                                expected: "a stage planned before this one with exactly one \(what) whose swept values match this run's (stages: \(Array(Set(runs.compactMap { stageOf[$0.name] })).sorted().joined(separator: ", ")))",
                                                found: "\"\(s)\" (\(found))")
                    }
                    return last.name
                }
                if let i = config.initFrom {
                    let path = i.pairedByStage ? "init_from.stage" : "init_from.run"
                    let full: String
                    if i.pairedByStage {
                        full = try paired(stage: i.run, path, what: "run", where: { _ in true })
                    } else {
                        // `run` may be a full run name or a stage name of this experiment.
                        full = runs.contains(where: { $0.name == i.run }) ? i.run : "\(config.experiment)/\(i.run)"
                        guard runs.contains(where: { $0.name == full }) else {
                            let hint = runs.contains(where: { stageOf[$0.name] == i.run }) ? " (init_from: { stage: \"\(i.run)\" } starts from that stage's run with this run's swept values)" : ""
                            throw SpecError.invalid(file: file, path: prefix + path,
                                                    expected: "the name of a run planned before this one (runs: \(runs.map(\.name).joined(separator: ", ")))\(hint)",
                                                    found: "\"\(i.run)\"")
                        }
                    }
                    config.initFrom = .init(run: full, step: i.step)
                    if let step = i.step, let parent = runs.first(where: { $0.name == full }), step > parent.config.train.steps {
                        throw SpecError.invalid(file: file, path: prefix + "init_from.step",
                                                expected: "a step of run \(full) (it trains \(parent.config.train.steps) steps)",
                                                found: "\(step)")
                    }
                }
                // A label stage's policy and scorer runs, and a stage training on labelled pairs, name earlier runs: a
                // run's name, or a stage's (its run with this run's swept values, when the stage was swept).
                func earlier(_ run: String, _ path: String, what: String, where ok: (PlannedRun) -> Bool) throws -> String {
                    let full = runs.contains(where: { $0.name == run }) ? run : "\(experimentName)/\(run)"
                    if !runs.contains(where: { $0.name == full }), runs.contains(where: { stageOf[$0.name] == run }) {
                        return try paired(stage: run, path, what: what, where: ok)
                    }
                    guard let found = runs.first(where: { $0.name == full }), ok(found) else {
                        throw SpecError.invalid(file: file, path: prefix + path,
                                                expected: "the name of \(what) planned before this one (runs: \(runs.filter(ok).map(\.name).joined(separator: ", ")))",
                                                found: "\"\(run)\"")
                    }
                    return full
                }
                if var l = config.label {
                    if let p = l.policy { l.policy = try earlier(p, "label.policy.run", what: "a training run", where: { $0.config.label == nil }) }
                    if let r = l.scorerRun {
                        l.scorerRun = try earlier(r, "label.scorer.run", what: "a reward-model run (objective kind \"reward\")",
                                                  where: { $0.config.objective.trainsRewardModel && $0.config.label == nil })
                    }
                    config.label = l
                }
                if let r = config.objective.rewardRun {
                    config.objective = config.objective.withRewardRun(try earlier(r, "objective.reward.run", what: "a reward-model run (objective kind \"reward\")",
                                                                                  where: { $0.config.objective.trainsRewardModel && $0.config.label == nil }))
                }
                if case .run(let r)? = config.reference {
                    let path = r.pairedByStage ? "objective.reference.stage" : "objective.reference.run"
                    let full = r.pairedByStage ? try paired(stage: r.run, path, what: "training run", where: { $0.config.label == nil })
                        : try earlier(r.run, path, what: "a training run", where: { $0.config.label == nil })
                    if let step = r.step, let parent = runs.first(where: { $0.name == full }), step > parent.config.train.steps {
                        throw SpecError.invalid(file: file, path: prefix + "objective.reference.step",
                                                expected: "a step of run \(full) (it trains \(parent.config.train.steps) steps)", found: "\(step)")
                    }
                    config.reference = .run(.init(run: full, step: r.step))
                }
                if let from = config.data.train.from {
                    let full = try earlier(from, "data.train.from.stage", what: "a label stage's run", where: { $0.config.label != nil })
                    config.data.train.from = full
                }
                // SPIN: one run per iteration (`.../iter=k`), each from the previous one's final weights.
                let baseName = name
                var planned = [(name, config)]
                if let iterations = config.objective.iterations {
                    planned = []
                    for k in 1...iterations {
                        var c = config
                        if k > 1 { c.initFrom = .init(run: "\(name)/iter=\(k - 1)", step: nil) }
                        planned.append(("\(name)/iter=\(k)", c))
                    }
                }
                for (name, config) in planned {
                    if let s = stage.name { stageOf[name] = s }
                    if config.objective.iterations != nil { spinBase[name] = baseName }
                    // The run's folder name must be one valid path component.
                    let leaf = RunExecutor.runFolder(experiment: config.experiment, runName: name)
                    if leaf.utf8.count > 200 {
                        throw SpecError.invalid(file: file, path: "sweep", expected: "run names whose folder name fits the file system (at most 200 bytes after the experiment name)",
                                                found: "\(leaf.utf8.count) bytes in \(name.prefix(80))...")
                    }
                    // results/<experiment>/ also holds the Slurm shards, scripts and the reference cache; and two runs
                    // whose names differ only by "/" against "_" would share one folder and overwrite each other's checkpoint
                    if RunExecutor.reservedFolders.contains(leaf) {
                        throw SpecError.invalid(file: file, path: (stage.name.map { "stages (\($0))" } ?? "sweep"),
                                                expected: "a run whose folder is not one AlignScope keeps beside the runs (\(RunExecutor.reservedFolders.sorted().joined(separator: ", ")))",
                                                found: "run \(name), folder \"\(leaf)\"")
                    }
                    if let other = folderOf[leaf] {
                        throw SpecError.invalid(file: file, path: "sweep", expected: "runs with folders of their own (a run's folder is its name with \"/\" written \"_\")",
                                                found: "\(other) and \(name) both in folder \"\(leaf)\"")
                    }
                    folderOf[leaf] = name
                    let json = config.identityJSON
                    let sha = SHA256.hex(Array(json.utf8))
                    if let other = seen[sha] {
                        throw SpecError.invalid(file: file, path: "sweep", expected: "distinct runs", found: "\(name) identical to \(other)")
                    }
                    seen[sha] = name
                    runs.append(PlannedRun(name: name, config: config, configJSON: json, configSHA256: sha, sweepValues: values))
                    // counted after SPIN's expansion into iterations too
                    if runs.count > Sweep.maxRuns {
                        throw SpecError.invalid(file: file, path: "sweep", expected: "at most \(Sweep.maxRuns) runs in one experiment (SPIN iterations included)",
                                                found: "more (\(name) is run \(runs.count))")
                    }
                }
            }
        }
        let first = runs[0].config
        return Experiment(
            name: first.experiment, specPath: file, baseDirectory: baseDirectory, specText: text,
            specSHA256: SHA256.hex(Array(text.utf8)), runs: runs)
    }

    /// Resolves a path written in the spec against the spec's directory.
    public func resolve(_ path: String) -> String { Self.resolve(path, against: baseDirectory) }

    static func resolve(_ path: String, against baseDirectory: URL) -> String {
        if path.hasPrefix("/") { return path }
        return baseDirectory.appendingPathComponent(path).standardizedFileURL.path
    }
}

/// `sweep: { "train.lr": [1e-5, 3e-5], seed: [1, 2] }`: the runs are the cartesian product, the
/// first key varying slowest. The order written in the spec file is not available from a decoded
/// dictionary, so keys are ordered by their last component (then the full path): names such as
/// `sft-what/lr=1e-05,seed=2` do not depend on how the spec orders its keys.
struct Sweep {
    var keys: [String] = []
    var values: [[JSONValue]] = []

    var isEmpty: Bool { keys.isEmpty }

    init(_ value: JSONValue?, file: String, path sweepPath: String) throws {
        guard let value else { return }
        guard case .object(let o) = value else {
            throw SpecError.invalid(file: file, path: sweepPath, expected: "an object mapping key paths to lists", found: value.typeName)
        }
        let ordered = o.keys.sorted { a, b in
            let (la, lb) = (a.split(separator: ".").last ?? "", b.split(separator: ".").last ?? "")
            return la != lb ? la < lb : a < b
        }
        for key in ordered {
            let path = "\(sweepPath).\(key)"
            guard case .array(let list) = o[key]!, !list.isEmpty else {
                throw SpecError.invalid(file: file, path: path, expected: "a non-empty list of values", found: SpecFields.describe(o[key]!))
            }
            let first = key.split(separator: ".").first.map(String.init) ?? ""
            if !RunConfig.topKeys.contains(first) || ["sweep", "stages", "name"].contains(first) || key.hasSuffix(".") || key.contains("..") {
                throw SpecError.invalid(file: file, path: path, expected: "a key path into the spec such as train.lr or seed", found: "\"\(key)\"")
            }
            if Set(list).count != list.count {
                throw SpecError.invalid(file: file, path: path, expected: "distinct values", found: "a repeated value")
            }
            keys.append(key)
            values.append(list)
        }
    }

    /// This sweep followed by another's keys (a stage's own sweep after the experiment's). A key both
    /// sweep takes the other's values, as a stage's keys override the experiment's.
    func adding(_ other: Sweep) -> Sweep {
        var out = self
        for (k, v) in zip(other.keys, other.values) {
            if let i = out.keys.firstIndex(of: k) {
                out.values[i] = v
            } else {
                out.keys.append(k)
                out.values.append(v)
            }
        }
        return out
    }

    /// Number of runs the sweep expands into (saturating, so that a huge grid is not multiplied out).
    var count: Int {
        values.reduce(1) { $0.multipliedReportingOverflow(by: $1.count).overflow ? Int.max : $0 * $1.count }
    }

    /// Most runs one experiment may plan.
    static let maxRuns = 10_000

    /// Every combination, as ordered (key, value) lists.
    var assignments: [[(key: String, value: JSONValue)]] {
        var out: [[(key: String, value: JSONValue)]] = [[]]
        for (k, list) in zip(keys, values) {
            out = out.flatMap { prefix in list.map { prefix + [(key: k, value: $0)] } }
        }
        return out
    }

    /// The last component of a key path, unless two swept keys share it.
    func shortName(_ key: String) -> String {
        let last = key.split(separator: ".").last.map(String.init) ?? key
        let clash = keys.filter { ($0.split(separator: ".").last.map(String.init) ?? $0) == last }.count > 1
        return clash ? key : last
    }

    static func valueText(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return s
        case .number(let x): return JSONValue.format(x)
        default: return v.canonical
        }
    }
}
