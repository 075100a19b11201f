import Base
import Foundation

/// Which field of a line SFT trains on (`objective.target`): a pair's `chosen` or `rejected` response, a
/// prompt-completion line's `completion` (TRL's form), or a language-modelling line's whole `text` (no prompt:
/// with `loss_on: "all"`).
public enum ResponseTarget: String, Codable, Sendable, CaseIterable {
    case chosen, rejected, completion, text
}


/// The spec form of an objective (`objective: { kind: "dpo", beta: 0.1 }`): its decoder is the only
/// declaration of each objective's keys, defaults and ranges, and its encoder writes the resolved form
/// that run identities hash (each kind with exactly its own keys).
extension Objective: Codable {
    /// Every key any objective takes, in the order errors list them.
    static let specKeys = (["kind", "loss_on", "target", "reference"] + PairObjectives.all.flatMap { $0.keys } + [
        "beta", "helpful", "unhelpful", "margin", "center_rewards", "head_seed", "desirable_weight", "undesirable_weight", "rating_threshold",
        "iterations", "temperature", "top_p", "max_tokens", "reward", "samples_per_prompt", "epochs", "mini_batches",
        "kl_coef", "kl_estimator", "advantages", "scale_advantages", "clip", "loss_averaging", "missing_eos_penalty",
    ]).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    /// The kinds, in the order errors list them: the pair objectives' (`PairObjectives.all`) after sft.
    public static let kinds = ["sft"] + PairObjectives.all.map { $0.kind } + ["coh", "reward", "kto", "spin", "ppo"]
    /// (`reference`, the reference model, is read beside the objective by `Experiments.RunConfig`: a pair objective that
    /// reads one, kto and ppo (its KL penalty's) may name one; `takesReferenceModel` says which may.)
    static let keysOfKind: [String: [String]] = Dictionary(uniqueKeysWithValues: PairObjectives.all.map { ($0.kind, ["kind"] + $0.keys + ["reference"]) }).merging([
        "sft": ["kind", "loss_on", "target"], "coh": ["kind", "helpful", "unhelpful"],
        "reward": ["kind", "margin", "center_rewards", "head_seed"],
        "kto": ["kind", "beta", "desirable_weight", "undesirable_weight", "rating_threshold", "reference"],
        "spin": ["kind", "iterations", "beta", "temperature", "top_p", "max_tokens"],
        "ppo": ["kind", "reward", "samples_per_prompt", "epochs", "mini_batches", "temperature", "top_p", "max_tokens",
                "kl_coef", "kl_estimator", "advantages", "scale_advantages", "clip", "loss_averaging", "missing_eos_penalty", "reference"],
    ]) { a, _ in a }

    /// The default objective: SFT on the chosen responses, loss on the response tokens.
    public static let defaultSpec = Objective.sft(lossOn: .response, target: .chosen)

    public init(from decoder: any Decoder) throws {
        let f = try SpecFields(decoder, allowed: Self.specKeys)
        let kind = try f.string("kind", default: "sft", oneOf: Self.kinds)
        let lossOn: LossOn = try f.choice("loss_on", default: .response)
        let target: ResponseTarget = try f.choice("target", default: .chosen)
        guard let allowed = Self.keysOfKind[kind] else {
            throw SpecIssue.invalid(path: f.sub("kind"), expected: "a kind with its keys declared (keysOfKind lacks \"\(kind)\")", found: "\"\(kind)\"")
        }
        for key in f.fields.keys.sorted() where !allowed.contains(key) {
            throw SpecIssue.unknownKey(path: f.sub(key), allowed: allowed)
        }
        if let pair = PairObjectives.named(kind) {
            self = .pair(try pair.init(spec: f))
            return
        }
        let beta = try f.double("beta", default: 0.1, min: 0, exclusiveMin: true)
        let defaults = HindsightTemplate()
        let helpful = try f.string("helpful", default: defaults.helpful)
        let unhelpful = try f.string("unhelpful", default: defaults.unhelpful)
        let margin = try f.string("margin", default: "")
        let centerRewards = try f.double("center_rewards", default: 0, min: 0)
        let headSeed = try f.int("head_seed", default: 0, min: 0)
        let desirableWeight = try f.double("desirable_weight", default: 1, min: 0, exclusiveMin: true)
        let undesirableWeight = try f.double("undesirable_weight", default: 1, min: 0, exclusiveMin: true)
        switch kind {
        case "ppo":
            self = .ppo(PolicyOptimization(
                reward: try Self.policyReward(f),
                samplesPerPrompt: try f.int("samples_per_prompt", default: 4, min: 2, max: 64),
                epochs: try f.int("epochs", default: 1, min: 1, max: 16), miniBatches: try f.int("mini_batches", default: 1, min: 1, max: 1024),
                temperature: try f.double("temperature", default: 1, min: 0, exclusiveMin: true),
                topP: try f.double("top_p", default: 1, min: 0, max: 1, exclusiveMin: true),
                maxTokens: try f.int("max_tokens", default: 32, min: 1, max: 4096),
                klCoef: try f.double("kl_coef", default: 0.05, min: 0), klEstimator: try f.choice("kl_estimator", default: .k1),
                advantages: try f.choice("advantages", default: .group), scaleAdvantages: try f.bool("scale_advantages", default: false),
                clip: try f.double("clip", default: 0.2, min: 0, exclusiveMin: true), lossAveraging: try f.choice("loss_averaging", default: .token),
                missingEOSPenalty: try f.double("missing_eos_penalty", default: 0, min: 0)))
        case "spin":
            self = .spin(iterations: try f.int("iterations", default: 2, min: 1, max: 16), beta: beta,
                         temperature: try f.double("temperature", default: 0, min: 0), topP: try f.double("top_p", default: 1, min: 0, max: 1, exclusiveMin: true),
                         maxTokens: try f.int("max_tokens", default: 64, min: 1, max: 4096))
        case "kto":
            let threshold: Double? = f.has("rating_threshold") ? try f.double("rating_threshold") : nil
            self = .kto(beta: beta, desirableWeight: desirableWeight, undesirableWeight: undesirableWeight, ratingThreshold: threshold)
        case "reward": self = .reward(margin: margin.isEmpty ? nil : margin, centerRewards: centerRewards, headSeed: headSeed)
        case "coh": self = .coh(template: HindsightTemplate(helpful: helpful, unhelpful: unhelpful))
        case "sft": self = .sft(lossOn: lossOn, target: target)
        default:
            // a kind listed in `kinds` but decoded nowhere: never a silent default
            throw SpecIssue.invalid(path: f.sub("kind"), expected: "a kind this build decodes", found: "\"\(kind)\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: SpecKey.self)
        try c.encode(kind, "kind")
        switch self {
        case let .sft(lossOn, target):
            try c.encode(lossOn.rawValue, "loss_on")
            try c.encode(target.rawValue, "target")
        case .pair(let p):
            try p.encode(spec: &c)
        case let .coh(template):
            try c.encode(template.helpful, "helpful")
            try c.encode(template.unhelpful, "unhelpful")
        case let .kto(beta, desirableWeight, undesirableWeight, ratingThreshold):
            try c.encode(beta, "beta")
            try c.encode(desirableWeight, "desirable_weight")
            try c.encode(undesirableWeight, "undesirable_weight")
            if let ratingThreshold { try c.encode(ratingThreshold, "rating_threshold") }
        case let .spin(iterations, beta, temperature, topP, maxTokens):
            try c.encode(iterations, "iterations")
            try c.encode(beta, "beta")
            try c.encode(temperature, "temperature")
            try c.encode(topP, "top_p")
            try c.encode(maxTokens, "max_tokens")
        case let .ppo(p):
            switch p.reward {
            case .run(let run): try c.encode(["run": run], "reward")
            case let .judge(path, template):
                var o = ["judge": path]
                if let template { o["template"] = template }
                try c.encode(o, "reward")
            case .length: try c.encode(["rule": "length"], "reward")
            case .contains(let text): try c.encode(["rule": "contains", "text": text], "reward")
            }
            try c.encode(p.samplesPerPrompt, "samples_per_prompt")
            try c.encode(p.epochs, "epochs")
            try c.encode(p.miniBatches, "mini_batches")
            try c.encode(p.temperature, "temperature")
            try c.encode(p.topP, "top_p")
            try c.encode(p.maxTokens, "max_tokens")
            try c.encode(p.klCoef, "kl_coef")
            try c.encode(p.klEstimator.rawValue, "kl_estimator")
            try c.encode(p.advantages.rawValue, "advantages")
            try c.encode(p.scaleAdvantages, "scale_advantages")
            try c.encode(p.clip, "clip")
            try c.encode(p.lossAveraging.rawValue, "loss_averaging")
            try c.encode(p.missingEOSPenalty, "missing_eos_penalty")
        case let .reward(margin, centerRewards, headSeed):
            try c.encode(margin ?? "", "margin")
            try c.encode(centerRewards, "center_rewards")
            try c.encode(headSeed, "head_seed")
        }
    }

    /// `objective.reward` of a ppo objective: `{ run: NAME }`, `{ judge: MODEL, template?: FILE }`, `{ rule: "length" }`
    /// or `{ rule: "contains", text: TEXT }`.
    static func policyReward(_ f: SpecFields) throws -> PolicyReward {
        let expected = "{ run: NAME } (a reward-model run), { judge: MODEL, template?: FILE }, { rule: \"length\" } or { rule: \"contains\", text: TEXT }"
        guard let value = f.value("reward") else { throw SpecIssue.missing(path: f.sub("reward"), expected: expected) }
        guard case .object(let o) = value else { throw f.invalid("reward", expected) }
        func text(_ key: String) -> String? { if case .string(let s)? = o[key], !s.isEmpty { return s } else { return nil } }
        switch Set(o.keys) {
        case ["run"]: if let run = text("run") { return .run(run) }
        case ["judge"], ["judge", "template"]:
            if let path = text("judge"), o["template"] == nil || text("template") != nil { return .judge(path: path, template: text("template")) }
        case ["rule"]: if text("rule") == "length" { return .length }
        case ["rule", "text"]: if text("rule") == "contains", let t = text("text") { return .contains(t) }
        default: break
        }
        throw f.invalid("reward", expected)
    }

    /// The spec's name of the objective.
    public var kind: String {
        switch self {
        case .sft: return "sft"
        case .pair(let p): return type(of: p).kind
        case .coh: return "coh"
        case .reward: return "reward"
        case .kto: return "kto"
        case .spin: return "spin"
        case .ppo: return "ppo"
        }
    }

    /// The objective's resolved spec as canonical JSON (keys sorted): equal objectives write equal specs.
    var specJSON: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Sequences each training example becomes: 2 for pair objectives (chosen and rejected) and KTO (its
    /// completion, and another example's for the KL estimate), else 1 (ppo's batches are sized by
    /// `RunConfig.batchTokens`).
    public var sequencesPerExample: Int {
        if case .kto = self { return 2 }
        return isPairwise ? 2 : 1
    }
}
