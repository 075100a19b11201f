import Base
import Foundation
import Probes
import Tokenizer
import Training

/// The fully resolved configuration of one run: every default filled in. Each section is a `Codable`
/// struct whose coding keys are the spec's own names and whose decoder is the only declaration of its
/// fields (key, default, range, unknown-key check; `SpecFields`). The same structs encode the resolved
/// config; its canonical JSON (`identityJSON`) is stored in `runs.config` and its sha256 is the run's
/// identity.
///
/// Identity rule: a key added after the first identity version is listed in `defaultedSinceV1` with its
/// default, and is left out of the identity while it has that default. So adding a defaulted key changes
/// no existing run's identity, and a store written by an older AlignScope keeps recognising its runs.
public struct RunConfig: Codable, Sendable, Equatable {
    public enum ModelSource: Codable, Sendable, Equatable {
        /// A GGUF file, path as written in the spec (relative to the spec file).
        case gguf(path: String)
        /// A Hugging Face model directory (config.json, *.safetensors, tokenizer.json), path as written.
        case hf(path: String)
        /// A built-in randomly initialised config ("tiny"), for tests and examples.
        case preset(name: String, seed: Int)
        /// A training output folder as transformers' Trainer writes it (`checkpoint-N/` folders), evaluated checkpoint
        /// by checkpoint (`WatchStage`); `base`, a GGUF file or a Hugging Face directory, is evaluated as step 0. The
        /// folder's path is made absolute when the experiment is loaded (it is part of the run's identity).
        case checkpoints(path: String, base: String?)

        public init(from decoder: any Decoder) throws {
            let f = try SpecFields(decoder, allowed: ["gguf", "hf", "preset", "seed", "checkpoints", "base"])
            let given = ["gguf", "hf", "preset", "checkpoints"].filter(f.has)
            if given.count > 1 { throw f.invalid(given[1], "one of gguf, hf, preset or checkpoints, not several") }
            if f.has("base") && !f.has("checkpoints") { throw f.invalid("base", "no base without checkpoints (base is the model a checkpoint folder's run started from)") }
            if f.has("checkpoints") {
                let path = try f.string("checkpoints")
                if path.isEmpty { throw f.invalid("checkpoints", "a path to a training output folder (checkpoint-N/ folders)") }
                let base = f.has("base") ? try f.string("base") : nil
                if base?.isEmpty == true { throw f.invalid("base", "a path to a GGUF file or a Hugging Face model directory") }
                self = .checkpoints(path: path, base: base)
                return
            }
            if f.has("seed") && !f.has("preset") { throw f.invalid("seed", "no seed with a \(given.first ?? "file") model (seed is for presets)") }
            if f.has("gguf") {
                let path = try f.string("gguf")
                if path.isEmpty { throw f.invalid("gguf", "a path to a .gguf file") }
                self = .gguf(path: path)
            } else if f.has("hf") {
                let path = try f.string("hf")
                if path.isEmpty { throw f.invalid("hf", "a path to a Hugging Face model directory") }
                self = .hf(path: path)
            } else if f.has("preset") {
                self = .preset(name: try f.string("preset", oneOf: ModelPresets.names), seed: try f.int("seed", default: 0, min: 0))
            } else {
                throw SpecIssue.missing(path: f.sub("gguf"), expected: "a GGUF path, model.hf (a Hugging Face model directory), or model.preset (one of \(ModelPresets.names.joined(separator: ", ")))")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: SpecKey.self)
            switch self {
            case .gguf(let path): try c.encode(path, "gguf")
            case .hf(let path): try c.encode(path, "hf")
            case .preset(let name, let seed):
                try c.encode(name, "preset")
                try c.encode(seed, "seed")
            case .checkpoints(let path, let base):
                try c.encode(path, "checkpoints")
                try c.encodeIfPresent(base, forKey: SpecKey("base"))
            }
        }

        /// Whether the model is a training output folder to watch (`checkpoints`).
        public var isCheckpoints: Bool {
            if case .checkpoints = self { return true }
            return false
        }
    }

    /// `data.train`: the training file and how many of its examples to use; or `from: { stage: NAME }`, the
    /// pairs an earlier label stage wrote (then `path` is empty).
    public struct TrainData: Codable, Sendable, Equatable {
        public var path: String
        /// > 0 keeps the first `limit` examples.
        public var limit: Int
        /// The label run whose pairs this run trains on (a stage name until the plan resolves it).
        public var from: String?

        public init(from decoder: any Decoder) throws {
            let f = try SpecFields(decoder, allowed: ["path", "limit", "from"])
            limit = try f.int("limit", default: 0, min: 0)
            if let source = f.value("from") {
                // `from` replaces `path` (a stage's from merges over the experiment's path)
                guard case .object(let o) = source, o.count == 1, case .string(let stage)? = o["stage"], !stage.isEmpty else {
                    throw f.invalid("from", "{ stage: NAME }, an earlier label stage")
                }
                from = stage
                path = ""
            } else {
                path = try f.string("path")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: SpecKey.self)
            if let from { try c.encode(["stage": from], "from") } else { try c.encode(path, "path") }
            try c.encode(limit, "limit")
        }

        init(path: String, limit: Int, from: String?) {
            self.path = path
            self.limit = limit
            self.from = from
        }

        /// No training file (a watched checkpoint folder's optional `data.train`).
        public var isAbsent: Bool { path.isEmpty && from == nil }
    }

    /// A label stage (`label: {...}`): instead of training, the run samples responses to the training
    /// prompts from `policy` and scores them with `scorer` (`Labeller`), writing preference pairs that a
    /// later stage trains on (`data.train.from`).
    public struct LabelStage: Codable, Sendable, Equatable {
        /// The run whose final weights sample (a stage name until the plan resolves it); nil: the spec's model.
        public var policy: String?
        /// A reward-model run (`objective.kind` "reward"), or nil with `judge`.
        public var scorerRun: String?
        /// A judge model (GGUF or Hugging Face directory, relative to the spec), or nil with `scorerRun`.
        public var judge: String?
        /// The judge's question (a text file with {prompt}, {a}, {b}); nil: `Judge.defaultTemplate`.
        public var judgeTemplate: String?
        public var samples: Int
        public var temperature: Double
        public var topP: Double
        public var maxTokens: Int
        public var seed: Int

        public init(from decoder: any Decoder) throws {
            let f = try SpecFields(decoder, allowed: ["policy", "scorer", "samples", "temperature", "top_p", "max_tokens", "seed"])
            if let p = f.value("policy") {
                guard case .object(let o) = p, o.count == 1, case .string(let run)? = o["run"], !run.isEmpty else {
                    throw f.invalid("policy", "{ run: NAME }, the run whose weights sample (leave it out for the spec's model)")
                }
                policy = run
            }
            guard let scorer = f.value("scorer") else {
                throw SpecIssue.missing(path: f.sub("scorer"), expected: "{ run: NAME } (a reward-model run) or { judge: MODEL, template?: FILE }")
            }
            switch scorer {
            case .object(let o) where o.count == 1 && o["run"] != nil:
                guard case .string(let run)? = o["run"], !run.isEmpty else { throw f.invalid("scorer", "{ run: NAME }, a reward-model run") }
                scorerRun = run
            case .object(let o) where o["judge"] != nil && Set(o.keys).isSubset(of: ["judge", "template"]):
                guard case .string(let path)? = o["judge"], !path.isEmpty else { throw f.invalid("scorer", "{ judge: MODEL }, a GGUF file or model directory") }
                judge = path
                if let t = o["template"] {
                    guard case .string(let tp) = t, !tp.isEmpty else { throw f.invalid("scorer", "{ judge: MODEL, template: FILE }") }
                    judgeTemplate = tp
                }
            default:
                throw f.invalid("scorer", "{ run: NAME } (a reward-model run) or { judge: MODEL, template?: FILE }")
            }
            samples = try f.int("samples", default: 4, min: 2, max: 64)
            temperature = try f.double("temperature", default: 1, min: 0, exclusiveMin: true)
            topP = try f.double("top_p", default: 1, min: 0, max: 1, exclusiveMin: true)
            maxTokens = try f.int("max_tokens", default: 64, min: 1, max: 4096)
            seed = try f.int("seed", default: 0, min: 0)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: SpecKey.self)
            if let policy { try c.encode(["run": policy], "policy") }
            if let scorerRun { try c.encode(["run": scorerRun], "scorer") }
            if let judge {
                var o = ["judge": judge]
                if let judgeTemplate { o["template"] = judgeTemplate }
                try c.encode(o, "scorer")
            }
            try c.encode(samples, "samples")
            try c.encode(temperature, "temperature")
            try c.encode(topP, "top_p")
            try c.encode(maxTokens, "max_tokens")
            try c.encode(seed, "seed")
        }
    }

    /// `data.probes`: the probe file and its category sources.
    public struct ProbeData: Codable, Sendable, Equatable {
        public var path: String
        /// Category id -> source as written in the spec: this is what the identity hashes, so that a new
        /// default inside a source (a generator option, say) cannot change an identity.
        public var categories: [String: JSONValue]
        /// The same sources decoded (`CategorySource`), checked when the spec is read.
        public var sources: [String: CategorySource]

        enum CodingKeys: String, CodingKey { case path, categories }

        public init(from decoder: any Decoder) throws {
            let f = try SpecFields(decoder, allowed: ["path", "categories"])
            path = try f.string("path")
            categories = ["chosen": .string("chosen"), "rejected": .string("rejected")]
            if let cats = f.value("categories") {
                guard case .object(let o) = cats, !o.isEmpty else { throw f.invalid("categories", "an object mapping category ids to sources") }
                for (id, _) in o where id.isEmpty || id.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) {
                    throw SpecIssue.invalid(path: "data.probes.categories.\(id)", expected: "a category id of letters, digits, '_' or '-'", found: "\"\(id)\"")
                }
                categories = o
            }
            sources = [:]
            for id in categories.keys.sorted() {
                sources[id] = try RunConfig.decodeCategory(id: id, source: categories[id]!)
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(path, forKey: .path)
            try c.encode(categories, forKey: .categories)
        }
    }

    public struct DataSettings: Codable, Sendable, Equatable {
        public var train: TrainData
        public var probes: ProbeData

        public init(from decoder: any Decoder) throws {
            let f = try SpecFields(decoder, allowed: ["train", "probes"])
            // optional only for a watched checkpoint folder (RunConfig refuses its absence otherwise)
            train = try f.object("train") ?? TrainData(path: "", limit: 0, from: nil)
            probes = try f.object("probes", required: ["path", "categories"])!
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: SpecKey.self)
            if !train.isAbsent { try c.encode(train, "train") }
            try c.encode(probes, "probes")
        }
    }

    public struct EvalSettings: Codable, Sendable, Equatable {
        public var every: Int
        public var atStart: Bool
        /// The input type of the scoring pass's weight products (`BatchSession.precision`).
        public var precision: Precision
        /// Also record every response token's log-probability and argmax (`token_logprobs`).
        public var tokens: Bool
        /// Per-step attribution of the probes' changes to the training examples (`Training.Attribution`); nil: off.
        public var attribution: AttributionSettings?
        /// Record the full-vocabulary KL between the reference's and the model's distributions at every response position
        /// (`kl_to_reference`, `reverse_kl_to_reference`).
        public var kl: Bool

        enum CodingKeys: String, CodingKey { case every, atStart = "at_start", precision, tokens, attribution, kl }

        public static let defaults = try! JSONDecoder().decode(EvalSettings.self, from: Data("{}".utf8))

        public init(from decoder: any Decoder) throws {
            let f = try SpecFields(decoder, allowed: ["every", "at_start", "precision", "tokens", "attribution", "kl"])
            every = try f.int("every", default: 10, min: 1)
            atStart = try f.bool("at_start", default: true)
            precision = try f.choice("precision", default: .fp32)
            tokens = try f.bool("tokens", default: false)
            attribution = try f.object("attribution")
            kl = try f.bool("kl", default: false)
        }
    }

    /// `eval.attribution`: at every `every`-th step, each response of the first `probes` probes (default all) gets its
    /// predicted and observed change and its decomposition over the step's training examples; with `project`, the
    /// examples' gradients are compared through a CountSketch of that dimension (`Training.CountSketch`).
    public struct AttributionSettings: Codable, Sendable, Equatable {
        public var every: Int
        public var probes: Int?
        public var project: Int?

        public init(from decoder: any Decoder) throws {
            let f = try SpecFields(decoder, allowed: ["every", "probes", "project"])
            every = try f.int("every", default: 10, min: 1)
            probes = f.has("probes") ? try f.int("probes", min: 1) : nil
            project = f.has("project") ? try f.int("project", min: 16, max: 1 << 24) : nil
        }
    }

    /// `checkpoint.every` defaults to `eval.every`, so it is decoded as optional and resolved by `RunConfig`.
    public struct CheckpointSettings: Codable, Sendable, Equatable {
        public var every: Int?

        public init(from decoder: any Decoder) throws {
            let f = try SpecFields(decoder, allowed: ["every"])
            every = f.has("every") ? try f.int("every", min: 1) : nil
        }
    }

    /// Start from another run's weights instead of the model file.
    public struct InitFrom: Codable, Sendable, Equatable {
        /// Full run name within the same experiment (a run or stage name until the plan resolves it).
        public var run: String
        /// A checkpoint step, or nil for the run's final weights ("final").
        public var step: Int?
        /// `init_from: { stage: NAME }`: `run` names a stage, whose run with the same swept values (seed k for
        /// seed k) the plan picks. False once planned (the identity holds the run's full name only).
        public var pairedByStage = false

        public init(run: String, step: Int?) {
            self.run = run
            self.step = step
        }

        public init(from decoder: any Decoder) throws {
            let f = try SpecFields(decoder, allowed: ["run", "stage", "step"])
            if f.has("stage") {
                if f.has("run") { throw f.invalid("run", "either run (a run's name) or stage (the run of that stage with this run's swept values), not both") }
                run = try f.string("stage")
                pairedByStage = true
            } else {
                run = try f.string("run")
            }
            if case .number? = f.value("step") { step = try f.int("step", min: 0) } else { _ = try f.string("step", default: "final", oneOf: ["final"]) }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: SpecKey.self)
            try c.encode(run, pairedByStage ? "stage" : "run")
            if let step { try c.encode(step, "step") } else { try c.encode("final", "step") }
        }
    }

    /// `objective.reference`: the model whose log-probabilities the objective's log-ratios are taken against, when it is
    /// not the policy's starting weights (the default): a model file or preset (`{ gguf }`, `{ hf }`, `{ preset, seed }`),
    /// or another run's weights (`{ run: NAME, step: "final" | N }`, or `{ stage: NAME }` for the stage's run with this
    /// run's swept values). It must share the policy's tokenizer (checked when the plan is validated).
    public enum ReferenceModel: Codable, Sendable, Equatable {
        case model(ModelSource)
        case run(InitFrom)

        public init(from decoder: any Decoder) throws {
            let f = try SpecFields(decoder, allowed: ["gguf", "hf", "preset", "seed", "run", "stage", "step"])
            if f.has("run") || f.has("stage") {
                for key in ["gguf", "hf", "preset", "seed"] where f.has(key) {
                    throw f.invalid(key, "either a model (gguf, hf or preset) or a run (run or stage), not both")
                }
                self = .run(try InitFrom(from: decoder))
            } else {
                if f.has("step") { throw f.invalid("step", "a step only with run or stage") }
                guard ["gguf", "hf", "preset"].contains(where: f.has) else {
                    throw SpecIssue.missing(path: f.path, expected: "a model ({ gguf }, { hf } or { preset, seed }) or a run ({ run, step } or { stage, step })")
                }
                self = .model(try ModelSource(from: decoder))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            switch self {
            case .model(let source): try source.encode(to: encoder)
            case .run(let initFrom): try initFrom.encode(to: encoder)
            }
        }

        /// The model the reference is: its file or preset, or the model the named run (planned in `experiment`) trains.
        func modelSource(in experiment: Experiment) throws -> ModelSource {
            switch self {
            case .model(let source): return source
            case .run(let r):
                guard let planned = experiment.runs.first(where: { $0.name == r.run }) else { throw RunError.unknownRun(r.run) }
                return planned.config.model
            }
        }
    }

    /// The objective's section of a spec: the objective's own keys (`Objective`'s decoder) and `reference`.
    struct ObjectiveSection: Codable {
        var objective: Objective
        var reference: ReferenceModel?

        init(objective: Objective, reference: ReferenceModel?) {
            self.objective = objective
            self.reference = reference
        }

        init(from decoder: any Decoder) throws {
            objective = try Objective(from: decoder)
            reference = try decoder.container(keyedBy: SpecKey.self).decodeIfPresent(ReferenceModel.self, forKey: SpecKey("reference"))
            if reference != nil && !objective.takesReferenceModel {
                throw SpecIssue.invalid(path: (decoder.codingPath.map(\.stringValue) + ["reference"]).joined(separator: "."),
                                        expected: "no reference: objective \(objective.kind) \(objective.needsReference ? "takes its reference from its starting weights" : "reads no reference model")",
                                        found: "an object")
            }
            if reference != nil && objective.referenceSync != nil {
                throw SpecIssue.invalid(path: (decoder.codingPath.map(\.stringValue) + ["reference"]).joined(separator: "."),
                                        expected: "no reference with sync_ref_model: TR-DPO's reference starts as the policy's starting weights and is mixed with the policy",
                                        found: "an object")
            }
        }

        func encode(to encoder: any Encoder) throws {
            try objective.encode(to: encoder)
            var c = encoder.container(keyedBy: SpecKey.self)
            try c.encodeIfPresent(reference, forKey: SpecKey("reference"))
        }
    }

    public var experiment: String
    public var model: ModelSource
    public var template: ChatTemplate
    public var data: DataSettings
    public var objective: Objective
    /// `objective.reference` (nil: the starting weights).
    public var reference: ReferenceModel?
    public var initFrom: InitFrom?
    /// A label stage's settings (the run labels instead of training).
    public var label: LabelStage?
    public var train: TrainSettings
    public var eval: EvalSettings
    public var checkpointEvery: Int
    public var seed: Int
    /// `threads` as the spec sets it; nil: `Threads.automatic` (every core this process may use, or its `--jobs` share).
    /// Speed only: results do not depend on it, and it is not part of the identity (`frozenKeys`).
    public var threads: Int?

    /// The threads the run's kernels use.
    public var threadCount: Int { threads ?? Threads.automatic }

    /// Top-level keys of a spec: the config's own, and `description`, `sweep` and `stages` (read by `Experiment`).
    static let topKeys = ["name", "description", "model", "template", "data", "objective", "train", "eval", "checkpoint", "seed", "threads", "init_from", "label", "sweep", "stages", "system"]

    public init(from decoder: any Decoder) throws {
        let f = try SpecFields(decoder, allowed: Self.topKeys)
        experiment = try f.string("name")
        if !SafeName.isPathComponent(experiment, maxBytes: 128) {
            throw f.invalid("name", "a name of 1-128 bytes without '/', spaces or control characters, not starting with '.' (it names the results folder)")
        }
        model = try f.object("model", required: ["gguf", "preset", "seed"])!
        template = try f.choice("template", default: .chatml)
        if f.has("system") {
            // ChatML's system message: "" none; SmolLM2's default text is the default (so left out of the identity)
            let system = try f.string("system")
            if template.kind != .chatml {
                throw f.invalid("system", "no system message with template \"\(template.rawValue)\" (only chatml has a system turn; leave system out)")
            }
            template = template.with(system: system == ChatTemplate.defaultSystemMessage ? nil : system)
        }
        data = try f.object("data", required: ["train", "probes"])!
        let watching = model.isCheckpoints
        if watching {
            // a run trained elsewhere: nothing here trains it
            for key in ["objective", "train", "init_from", "label", "checkpoint"] where f.has(key) {
                throw f.invalid(key, "no \(key): a spec whose model is checkpoints evaluates a run trained elsewhere (its steps are the checkpoints')")
            }
            if case .object(let e)? = f.value("eval"), let key = ["every", "at_start", "attribution", "kl"].first(where: { e[$0] != nil }) {
                throw SpecIssue.invalid(path: "eval.\(key)", expected: "no eval.\(key): a watched run is evaluated at each of its checkpoints (and its base)", found: e[key]!.canonical)
            }
        } else if data.train.isAbsent {
            throw SpecIssue.missing(path: "data.train", expected: "an object with keys path, limit")
        }
        let section = try f.object("objective", as: ObjectiveSection.self)
        objective = section?.objective ?? Objective.defaultSpec
        reference = section?.reference
        initFrom = try f.object("init_from")
        label = try f.object("label")
        if label != nil, data.train.from != nil { throw f.invalid("label", "a label stage labels data.train.path, not another stage's pairs") }
        train = watching ? WatchStage.scoringSettings : try f.object("train", required: TrainSettings.CodingKeys.allCases.map(\.rawValue))!
        for (id, source) in data.probes.sources.sorted(by: { $0.key < $1.key }) {
            if case .greedy(let maxTokens) = source, maxTokens >= train.maxLength {
                throw SpecIssue.invalid(path: "data.probes.categories.\(id).greedy.max_tokens",
                                        expected: "a token count < train.max_length (\(train.maxLength)), so the prompt keeps a token",
                                        found: "\(maxTokens)")
            }
            if case .argmax(let field) = source, !data.probes.sources.values.contains(.field(field)) {
                throw SpecIssue.invalid(path: "data.probes.categories.\(id).argmax.field",
                                        expected: "a field that another category reads as it is (add e.g. \(field): \"\(field)\")",
                                        found: "\"\(field)\", which no category reads")
            }
        }
        try objective.check(train: train)
        if label != nil, objective.isOnline { throw f.invalid("label", "a label stage samples with label.policy, not a ppo objective") }
        eval = try f.object("eval") ?? EvalSettings.defaults
        if eval.kl, case .reward = objective {
            throw SpecIssue.invalid(path: "eval.kl", expected: "no eval.kl for a reward model (its probes are scored by its head)", found: "true")
        }
        if eval.attribution != nil {
            if let why = objective.attributionRefusal {
                throw SpecIssue.invalid(path: "eval.attribution", expected: "an objective whose examples each own their sequences (sft, coh, the pair objectives)", found: why)
            }
        }
        if train.lora != nil {
            // what LoRA does not do yet: each refused here, naming why
            var why: String?
            if objective.referenceSync != nil { why = "objective.sync_ref_model (TR-DPO mixes the policy's weights into the reference; with LoRA they do not move)" }
            if eval.attribution != nil { why = "eval.attribution (it follows every weight's gradient, not the adapters')" }
            if let why { throw SpecIssue.invalid(path: "train.lora", expected: "no LoRA with \(why)", found: "an object") }
        }
        checkpointEvery = try f.object("checkpoint", as: CheckpointSettings.self)?.every ?? eval.every
        seed = try f.int("seed", default: 1, min: 0, max: Int(UInt32.max))
        threads = f.has("threads") ? try f.int("threads", min: 1, max: 256) : nil
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: SpecKey.self)
        try c.encode(experiment, "name")
        try c.encode(model, "model")
        try c.encode(template.rawValue, "template")
        try c.encodeIfPresent(template.system, forKey: SpecKey("system"))
        try c.encode(data, "data")
        if model.isCheckpoints {
            // a watched run: no training, evaluated at its checkpoints (what its spec may say, nothing more)
            try c.encode(["precision": JSONValue.string(eval.precision.rawValue), "tokens": .bool(eval.tokens)], "eval")
            try c.encode(seed, "seed")
            try c.encodeIfPresent(threads, forKey: SpecKey("threads"))
            return
        }
        try c.encode(ObjectiveSection(objective: objective, reference: reference), "objective")
        try c.encodeIfPresent(initFrom, forKey: SpecKey("init_from"))
        try c.encodeIfPresent(label, forKey: SpecKey("label"))
        try c.encode(train, "train")
        try c.encode(eval, "eval")
        try c.encode(["every": checkpointEvery], "checkpoint")
        try c.encode(seed, "seed")
        try c.encodeIfPresent(threads, forKey: SpecKey("threads"))
    }

    /// Decodes one (sweep-applied) spec tree: every problem is a `SpecError` naming `file` and the key path.
    static func resolve(_ tree: JSONValue, file: String) throws -> RunConfig {
        do {
            return try JSONDecoder().decode(RunConfig.self, from: Data(tree.canonical.utf8))
        } catch let issue as SpecIssue {
            throw SpecError(issue, file: file)
        }
    }

    /// Keys added after the first identity version (key path -> default). Computed, not stored: a
    /// static holding `JSONValue` payloads reads as a leak to LeakSanitizer (the enum's spare pointer
    /// bits hide the reference), which fails the fuzz targets.
    static var defaultedSinceV1: [String: JSONValue] { [
        "train.precision": .string(Precision.fp32.rawValue),
        "eval.precision": .string(Precision.fp32.rawValue),
        "eval.tokens": .bool(false),
        "eval.kl": .bool(false),
        "train.checkpoint_activations": .bool(false),
        "objective.length_normalized": .bool(false),
        // DPO's loss family (issue 36)
        "objective.loss_type": .string("sigmoid"),
        "objective.loss_weights": .array([.number(1)]),
        "objective.f_divergence_type": .string("reverse_kl"),
        "objective.f_alpha_divergence_coef": .number(1),
        "objective.discopop_tau": .number(0.05),
        "objective.dpop_lambda": .number(0),
        "objective.use_weighting": .bool(false),
        "objective.sync_ref_model": .bool(false),
    ] }

    /// Keys that stopped mattering (key path -> the value every run had by default while they mattered). The identity
    /// holds that value whatever the config says, so no existing run's identity changed when they stopped mattering, and
    /// two runs that differ only there are one run. `threads` (issue 40): results no longer depend on the thread count;
    /// the default was 2.
    static var frozenKeys: [String: JSONValue] { ["threads": .number(2)] }

    /// The resolved config as a JSON tree, as the structs encode it.
    public var json: JSONValue {
        try! JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(self))
    }

    /// The canonical JSON that is stored in `runs.config` and whose sha256 is the run's identity.
    public var identityJSON: String { Self.identityTree(json, defaulted: Self.defaultedSinceV1).canonical }

    /// `tree` without the key paths of `defaulted` whose value equals their default, and with every key of `frozen`
    /// set to its frozen value.
    static func identityTree(_ tree: JSONValue, defaulted: [String: JSONValue], frozen: [String: JSONValue] = frozenKeys) -> JSONValue {
        var out = tree
        for (path, def) in defaulted where tree.value(at: path.split(separator: ".").map(String.init)) == def {
            out.remove(at: path.split(separator: ".").map(String.init))
        }
        for (path, value) in frozen { out.set(value, at: path.split(separator: ".").map(String.init)) }
        return out
    }

    /// The identity an AlignScope from before a key was frozen gave this run, when it differs from `identityJSON` (the
    /// spec sets a frozen key to another value than its frozen one): a store written then holds the run under it.
    public var formerIdentityJSON: String? {
        let tree = json
        var former = Self.identityTree(tree, defaulted: Self.defaultedSinceV1, frozen: [:])
        var changed = false
        for (path, value) in Self.frozenKeys {
            let keys = path.split(separator: ".").map(String.init)
            if let given = tree.value(at: keys), given != value { changed = true } else { former.set(value, at: keys) }
        }
        return changed ? former.canonical : nil
    }

    /// Most tokens one micro-batch packs: `batch_size` examples of up to `max_length` tokens, two
    /// sequences per example for pair objectives. Sizes the model's activations (and the memory check).
    public var batchTokens: Int { objective.batchTokens(train: train) }

    /// Every earlier run this run reads (full names once planned): the run whose weights it starts from, a label
    /// stage's policy and scorer, the label run whose pairs it trains on, a ppo objective's reward model. It waits
    /// for them to finish.
    public var inputRuns: [String] { Stages.stage(for: self).inputRuns(of: self) }

    /// The longest sequence one training batch packs.
    public var longestSequence: Int { objective.longestSequence(train: train) }

    /// Whether `eval.attribution` runs at `step`.
    public func isAttributionStep(_ step: Int) -> Bool {
        guard let a = eval.attribution else { return false }
        return step > 0 && step % a.every == 0
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
    /// A name that can be one path component: non-empty, at most `maxBytes` UTF-8 bytes, no '/',
    /// whitespace or control characters, not starting with '.' (so never "." or "..").

    /// Category ids that name the probe line's own keys, not responses.
    static let reservedCategoryIDs: Set<String> = ["prompt", "messages", "origins", "split", "idx"]

    /// Decodes one `data.probes.categories` entry; any problem is a `SpecIssue` naming the key path
    /// (`data.probes.categories.<id>[.<key>...]`) and what is allowed there.
    static func decodeCategory(id: String, source: JSONValue) throws -> CategorySource {
        let path = "data.probes.categories.\(id)"
        if reservedCategoryIDs.contains(id) {
            throw SpecIssue.invalid(path: path, expected: "a category id other than \(reservedCategoryIDs.sorted().joined(separator: ", ")) (keys of the probe line itself)", found: "\"\(id)\"")
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
            let found = source.value(at: codingPath.map(\.stringValue)).map(SpecFields.describe) ?? "nothing"
            if case .keyNotFound(let key, _) = error {
                throw SpecIssue.invalid(path: path + keys.replacingOccurrences(of: ".[", with: "["),
                                        expected: "a value for the required key \"\(key.stringValue)\"", found: "nothing")
            }
            throw SpecIssue.invalid(path: path + keys.replacingOccurrences(of: ".[", with: "["),
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
        default: return "a field name, or an object with derive, generate, greedy or argmax"
        }
    }
}

/// Built-in model presets (random initialisation, byte tokenizer): small enough for tests.
public enum ModelPresets {
    public static let names = ["tiny", "tiny-2l"]
}
