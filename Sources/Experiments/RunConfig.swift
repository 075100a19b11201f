import Base
import Foundation
import Probes
/// The fully resolved configuration of one run: every default filled in. Its canonical JSON is
/// stored in `runs.config` and its sha256 is the run's identity.
public struct RunConfig: Sendable, Equatable {
    public enum ModelSource: Sendable, Equatable {
        /// A GGUF file, path as written in the spec (relative to the spec file).
        case gguf(path: String)
        /// A built-in randomly initialised config ("tiny"), for tests and examples.
        case preset(name: String, seed: Int)
    }

    public struct TrainSettings: Sendable, Equatable {
        public var steps: Int
        public var batchSize: Int
        public var lr: Double
        public var warmup: Int
        public var schedule: String
        public var minLRRatio: Double
        public var maxLength: Int
        public var weightDecay: Double
        public var gradClip: Double
        public var gradAccum: Int
        public var beta1: Double
        public var beta2: Double
    }

    public struct EvalSettings: Sendable, Equatable {
        public var every: Int
        public var atStart: Bool
    }

    public struct ObjectiveSettings: Sendable, Equatable {
        /// "sft", "dpo", "ipo", "hinge" or "coh".
        public var kind: String
        /// "response" or "all" (sft).
        public var lossOn: String
        /// "chosen" or "rejected" (sft).
        public var target: String
        /// dpo and hinge: inverse temperature of the implicit reward.
        public var beta: Double = 0.1
        /// dpo: label smoothing (> 0 is conservative DPO).
        public var labelSmoothing: Double = 0
        /// ipo: regularisation strength.
        public var tau: Double = 0.1
        /// coh: the text before the chosen and before the rejected answer.
        public var helpful: String = "A helpful answer: "
        public var unhelpful: String = " An unhelpful answer: "

        public init(kind: String, lossOn: String, target: String) {
            self.kind = kind
            self.lossOn = lossOn
            self.target = target
        }

        /// Objectives trained on (chosen, rejected) pairs against a reference model.
        public var isPreference: Bool { ["dpo", "ipo", "hinge"].contains(kind) }

        var json: JSONValue {
            switch kind {
            case "dpo": return .object(["kind": .string(kind), "beta": .number(beta), "label_smoothing": .number(labelSmoothing)])
            case "ipo": return .object(["kind": .string(kind), "tau": .number(tau)])
            case "hinge": return .object(["kind": .string(kind), "beta": .number(beta)])
            case "coh": return .object(["kind": .string(kind), "helpful": .string(helpful), "unhelpful": .string(unhelpful)])
            default: return .object(["kind": .string(kind), "loss_on": .string(lossOn), "target": .string(target)])
            }
        }
    }

    /// Start from another run's weights instead of the model file.
    public struct InitFrom: Sendable, Equatable {
        /// Full run name within the same experiment.
        public var run: String
        /// A checkpoint step, or nil for the run's final weights.
        public var step: Int?
    }

    public var experiment: String
    public var model: ModelSource
    public var template: String
    public var trainPath: String
    public var trainLimit: Int
    public var probesPath: String
    /// Category id -> source, as written in the spec (decoded by the Probes module).
    public var categories: [String: JSONValue]
    public var objective: ObjectiveSettings
    public var initFrom: InitFrom?
    public var train: TrainSettings
    public var eval: EvalSettings
    public var checkpointEvery: Int
    public var seed: Int
    public var threads: Int

    /// The resolved config as a JSON tree; its canonical text is the identity.
    public var json: JSONValue {
        let modelJSON: JSONValue
        switch model {
        case .gguf(let path): modelJSON = .object(["gguf": .string(path)])
        case .preset(let name, let seed): modelJSON = .object(["preset": .string(name), "seed": .number(Double(seed))])
        }
        return .object([
            "name": .string(experiment),
            "model": modelJSON,
            "template": .string(template),
            "data": .object([
                "train": .object(["path": .string(trainPath), "limit": .number(Double(trainLimit))]),
                "probes": .object(["path": .string(probesPath), "categories": .object(categories)]),
            ]),
            "objective": objective.json,
            "train": .object([
                "steps": .number(Double(train.steps)), "batch_size": .number(Double(train.batchSize)),
                "lr": .number(train.lr), "warmup": .number(Double(train.warmup)), "schedule": .string(train.schedule),
                "min_lr_ratio": .number(train.minLRRatio), "max_length": .number(Double(train.maxLength)),
                "weight_decay": .number(train.weightDecay), "grad_clip": .number(train.gradClip),
                "grad_accum": .number(Double(train.gradAccum)), "beta1": .number(train.beta1), "beta2": .number(train.beta2),
            ]),
            "eval": .object(["every": .number(Double(eval.every)), "at_start": .bool(eval.atStart)]),
            "checkpoint": .object(["every": .number(Double(checkpointEvery))]),
            "seed": .number(Double(seed)),
            "threads": .number(Double(threads)),
        ].merging(initFrom.map { i in
            ["init_from": .object(["run": .string(i.run), "step": i.step.map { .number(Double($0)) } ?? .string("final")])]
        } ?? [:]) { a, _ in a })
    }

    /// Steps at which the probe set is scored: 0 (when `at_start`), every `eval.every`, and the last.
    public var evalSteps: [Int] {
        var steps: [Int] = eval.atStart ? [0] : []
        var s = eval.every
        while s < train.steps { steps.append(s); s += eval.every }
        steps.append(train.steps)
        return steps
    }

    public func isEvalStep(_ step: Int) -> Bool {
        (step == 0 && eval.atStart) || step == train.steps || (step > 0 && step % eval.every == 0)
    }

    public func isCheckpointStep(_ step: Int) -> Bool {
        step == train.steps || (step > 0 && step % checkpointEvery == 0)
    }
}

extension RunConfig {
    static let topKeys = ["name", "description", "model", "template", "data", "objective", "train", "eval", "checkpoint", "seed", "threads", "init_from", "sweep", "stages"]

    /// Validates one (sweep-applied) spec tree and fills in every default.
    static func resolve(_ tree: JSONValue, file: String) throws -> RunConfig {
        let top = try SpecReader(tree, file: file, path: "", allowed: topKeys)
        let name = try top.string("name")
        if !isPathSafeName(name, maxBytes: 128) {
            throw top.invalid("name", "a name of 1-128 bytes without '/', spaces or control characters, not starting with '.' (it names the results folder)")
        }

        let modelReader = try top.object("model", allowed: ["gguf", "preset", "seed"], required: true)!
        let model: ModelSource
        if modelReader.has("gguf") {
            if modelReader.has("preset") { throw modelReader.invalid("preset", "either gguf or preset, not both") }
            if modelReader.has("seed") { throw modelReader.invalid("seed", "no seed with a gguf model (seed is for presets)") }
            let path = try modelReader.string("gguf")
            if path.isEmpty { throw modelReader.invalid("gguf", "a path to a .gguf file") }
            model = .gguf(path: path)
        } else if modelReader.has("preset") {
            let preset = try modelReader.string("preset", oneOf: ModelPresets.names)
            model = .preset(name: preset, seed: try modelReader.int("seed", default: 0, min: 0))
        } else {
            throw SpecError.missing(file: file, path: "model.gguf", expected: "a GGUF path, or model.preset (one of \(ModelPresets.names.joined(separator: ", ")))")
        }

        let template = try top.string("template", default: "chatml", oneOf: ["chatml", "hh"])

        let data = try top.object("data", allowed: ["train", "probes"], required: true)!
        let trainData = try data.object("train", allowed: ["path", "limit"], required: true)!
        let trainPath = try trainData.string("path")
        let trainLimit = try trainData.int("limit", default: 0, min: 0)
        let probes = try data.object("probes", allowed: ["path", "categories"], required: true)!
        let probesPath = try probes.string("path")
        var categories: [String: JSONValue] = [
            "chosen": .string("chosen"), "rejected": .string("rejected"),
        ]
        if let cats = probes.value("categories") {
            guard case .object(let o) = cats, !o.isEmpty else { throw probes.invalid("categories", "an object mapping category ids to sources") }
            for (id, _) in o where id.isEmpty || id.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) {
                throw SpecError.invalid(file: file, path: "data.probes.categories.\(id)", expected: "a category id of letters, digits, '_' or '-'", found: "\"\(id)\"")
            }
            categories = o
        }

        let objectiveReader = try top.object("objective", allowed: ["kind", "loss_on", "target", "beta", "label_smoothing", "tau", "helpful", "unhelpful"])
        let kind = try objectiveReader?.string("kind", default: "sft", oneOf: ["sft", "dpo", "ipo", "hinge", "coh"]) ?? "sft"
        var objective = ObjectiveSettings(
            kind: kind,
            lossOn: try objectiveReader?.string("loss_on", default: "response", oneOf: ["response", "all"]) ?? "response",
            target: try objectiveReader?.string("target", default: "chosen", oneOf: ["chosen", "rejected"]) ?? "chosen")
        if let o = objectiveReader {
            let allowedHere: [String: [String]] = [
                "sft": ["kind", "loss_on", "target"], "dpo": ["kind", "beta", "label_smoothing"], "ipo": ["kind", "tau"],
                "hinge": ["kind", "beta"], "coh": ["kind", "helpful", "unhelpful"],
            ]
            for key in o.fields.keys.sorted() where !allowedHere[kind]!.contains(key) {
                throw SpecError.unknownKey(file: file, path: o.sub(key), allowed: allowedHere[kind]!)
            }
            objective.beta = try o.double("beta", default: 0.1, min: 0, exclusiveMin: true)
            objective.labelSmoothing = try o.double("label_smoothing", default: 0, min: 0, max: 0.49)
            objective.tau = try o.double("tau", default: 0.1, min: 0, exclusiveMin: true)
            objective.helpful = try o.string("helpful", default: objective.helpful)
            objective.unhelpful = try o.string("unhelpful", default: objective.unhelpful)
        }
        var initFrom: InitFrom?
        if let i = try top.object("init_from", allowed: ["run", "step"]) {
            let run = try i.string("run")
            var step: Int?
            if case .number? = i.value("step") { step = try i.int("step", min: 0) } else if try i.string("step", default: "final", oneOf: ["final"]) != "final" { step = nil }
            initFrom = InitFrom(run: run, step: step)
        }

        let t = try top.object("train", allowed: ["steps", "batch_size", "lr", "warmup", "schedule", "min_lr_ratio", "max_length",
                                                 "weight_decay", "grad_clip", "grad_accum", "beta1", "beta2"], required: true)!
        let train = TrainSettings(
            steps: try t.int("steps", min: 1, max: 1_000_000),
            batchSize: try t.int("batch_size", default: 4, min: 1, max: 4096),
            lr: try t.double("lr", default: 2e-5, min: 0, max: 1, exclusiveMin: true),
            warmup: try t.int("warmup", default: 0, min: 0),
            schedule: try t.string("schedule", default: "cosine", oneOf: ["constant", "linear", "cosine"]),
            minLRRatio: try t.double("min_lr_ratio", default: 0, min: 0, max: 1),
            maxLength: try t.int("max_length", default: 256, min: 8, max: 1 << 16),
            weightDecay: try t.double("weight_decay", default: 0, min: 0, max: 1),
            gradClip: try t.double("grad_clip", default: 1.0, min: 0),
            gradAccum: try t.int("grad_accum", default: 1, min: 1, max: 1024),
            beta1: try t.double("beta1", default: 0.9, min: 0, max: 1, exclusiveMax: true),
            beta2: try t.double("beta2", default: 0.999, min: 0, max: 1, exclusiveMax: true))
        if train.warmup > train.steps { throw t.invalid("warmup", "an integer <= train.steps (\(train.steps))") }

        for id in categories.keys.sorted() {
            let source = try decodeCategory(id: id, source: categories[id]!, file: file)
            if case .greedy(let maxTokens) = source, maxTokens >= train.maxLength {
                throw SpecError.invalid(file: file, path: "data.probes.categories.\(id).greedy.max_tokens",
                                        expected: "a token count < train.max_length (\(train.maxLength)), so the prompt keeps a token",
                                        found: "\(maxTokens)")
            }
        }

        let e = try top.object("eval", allowed: ["every", "at_start"])
        let eval = EvalSettings(
            every: try e?.int("every", default: 10, min: 1) ?? 10,
            atStart: try e?.bool("at_start", default: true) ?? true)
        let c = try top.object("checkpoint", allowed: ["every"])
        let checkpointEvery = try c?.int("every", default: eval.every, min: 1) ?? eval.every

        return RunConfig(
            experiment: name, model: model, template: template,
            trainPath: trainPath, trainLimit: trainLimit, probesPath: probesPath, categories: categories,
            objective: objective, initFrom: initFrom, train: train, eval: eval, checkpointEvery: checkpointEvery,
            seed: try top.int("seed", default: 1, min: 0, max: Int(UInt32.max)),
            threads: try top.int("threads", default: 2, min: 1, max: 256))
    }
}

extension RunConfig {
    /// A name that can be one path component: non-empty, at most `maxBytes` UTF-8 bytes, no '/',
    /// whitespace or control characters, not starting with '.' (so never "." or "..").
    static func isPathSafeName(_ name: String, maxBytes: Int) -> Bool {
        !name.isEmpty && name.utf8.count <= maxBytes && !name.hasPrefix(".") && !name.contains("/")
            && !name.unicodeScalars.contains { $0.properties.isWhitespace || $0.properties.generalCategory == .control }
    }

    /// Category ids that name the probe line's own keys, not responses.
    static let reservedCategoryIDs: Set<String> = ["prompt", "messages", "origins", "split", "idx"]

    /// Decodes one `data.probes.categories` entry; any problem is a `SpecError` naming the key path
    /// (`data.probes.categories.<id>[.<key>...]`) and what is allowed there.
    public static func decodeCategory(id: String, source: JSONValue, file: String) throws -> CategorySource {
        let path = "data.probes.categories.\(id)"
        if reservedCategoryIDs.contains(id) {
            throw SpecError.invalid(file: file, path: path, expected: "a category id other than \(reservedCategoryIDs.sorted().joined(separator: ", ")) (keys of the probe line itself)", found: "\"\(id)\"")
        }
        do {
            return try JSONDecoder().decode(CategorySource.self, from: Data(source.canonical.utf8))
        } catch let error as DecodingError {
            let (codingPath, message): ([any CodingKey], String)
            switch error {
            case .dataCorrupted(let c): (codingPath, message) = (c.codingPath, c.debugDescription)
            case .keyNotFound(let key, let c): (codingPath, message) = (c.codingPath + [key], "missing")
            case .typeMismatch(let type, let c): (codingPath, message) = (c.codingPath, "expected \(typeName(type))")
            case .valueNotFound(let type, let c): (codingPath, message) = (c.codingPath, "expected \(typeName(type))")
            @unknown default: (codingPath, message) = ([], "\(error)")
            }
            let keys = codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            let found = source.value(at: codingPath.map(\.stringValue)).map(SpecReader.describe) ?? "nothing"
            throw SpecError.invalid(file: file, path: path + keys.replacingOccurrences(of: ".[", with: "["),
                                    expected: expectedPart(of: message), found: found)
        }
    }

    /// "unknown derivation "x"; expected A or B" -> "A or B"; "expected A" -> "A".
    private static func expectedPart(of message: String) -> String {
        if let r = message.range(of: "; expected ") { return String(message[r.upperBound...]) }
        return message.hasPrefix("expected ") ? String(message.dropFirst(9)) : message
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is [String].Type: return "a list of strings"
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default: return "a field name, or an object with derive, generate or greedy"
        }
    }
}

/// Built-in model presets (random initialisation, byte tokenizer): small enough for tests.
public enum ModelPresets {
    public static let names = ["tiny", "tiny-2l"]
}
