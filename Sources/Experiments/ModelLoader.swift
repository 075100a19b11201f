import Base
import Foundation
import GGUF
import HFModels
import Kernels
import Model
import Probes
import Tokenizer
import Training

/// A model ready to train or score, with its tokenizer.
public struct LoadedModel {
    public var model: LlamaModel
    public var tokenizer: any TextTokenizer
    /// Tokens that end a response (`ChatEncoder.stopTokens`: the tokenizer's EOS, and `<|im_end|>` when it is one token).
    public var stopTokens: Set<Int32>
}

/// What a model path names, decided here for specs (`model: { gguf }` or a directory), the commands'
/// `--model` options and `alignscope bench`: a directory is a Hugging Face model directory (config.json,
/// *.safetensors, tokenizer.json), anything else a GGUF file (whose reader then says what is wrong with it).
public enum ModelPathKind: Sendable, Equatable {
    case gguf, huggingFaceDirectory

    public static func of(_ path: String) -> ModelPathKind {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue ? .huggingFaceDirectory : .gguf
    }
}

/// The one way a model is loaded, for every source: a GGUF file, a Hugging Face directory, a preset (a run's
/// weights are loaded into one of these by `loadInitialWeights`). Specs resolve their paths against the spec's
/// folder (`experiment`); the commands' `--model` paths are used as given (`path:`).
public enum ModelLoader {
    /// What `load` would check, without building the model: the tokenizer of a GGUF whose metadata and
    /// tensors `load` accepts (`PretrainedModel.validate`), or a preset's. Errors are `load`'s.
    static func validate(_ source: RunConfig.ModelSource, experiment: Experiment?) throws -> (config: LlamaConfig, tokenizer: any TextTokenizer) {
        switch source {
        case .gguf(let path):
            let resolved = try existing(path, experiment: experiment, directory: false)
            let checked = try PretrainedModel.validate(path: resolved)
            return (checked.config, checked.tokenizer)
        case .hf(let path):
            let dir = try HFModelDirectory(path: try existing(path, experiment: experiment, directory: true))
            return (dir.config, dir.tokenizer)
        case .preset(let name, _):
            return (presetConfig(name), ByteTokenizer())
        }
    }

    /// The resolved path of a GGUF file (`directory` false) or a Hugging Face directory, which must exist
    /// and be of that kind.
    private static func existing(_ path: String, experiment: Experiment?, directory: Bool) throws -> String {
        let resolved = experiment?.resolve(path) ?? path
        var st = stat()
        guard stat(resolved, &st) == 0 else {
            if errno == ELOOP { throw RunError.model(path: resolved, reason: "a loop of symbolic links (each points on to the next), not a file") }
            if errno != ENOENT { throw RunError.model(path: resolved, reason: String(cString: strerror(errno))) }
            throw RunError.model(path: resolved, reason: directory ? "no such directory" : "no such file (run `make models` for the default model)")
        }
        guard (st.st_mode & S_IFMT) == (directory ? S_IFDIR : S_IFREG) else {
            throw RunError.model(path: resolved, reason: directory
                ? "not a directory (a Hugging Face model directory with config.json, *.safetensors and tokenizer.json was expected)"
                : "not a regular file (a GGUF model file was expected)")
        }
        return resolved
    }

    static func presetConfig(_ name: String) -> LlamaConfig {
        name == "tiny-2l" ? .tiny(nLayers: 2) : .tiny()
    }

    /// Bytes a training run of `config` needs at most: weights, gradients and AdamW moments, the
    /// activations of `tokens` tokens (`LlamaModel.activationFloats`), and with `bf16` products the weights'
    /// bf16 copy that scoring and sampling make (`LlamaModel.withRoundedWeights`, 2 bytes a parameter). Pages
    /// are touched only when used, so this is an upper bound, compared against the machine's memory before
    /// anything is allocated.
    static func trainingBytes(_ config: LlamaConfig, tokens: Int, checkpointed: Bool = false, bf16: Bool = false) -> Double {
        let parameters = Double(LlamaModel.parameterTable(for: config).reduce(0) { $0 + $1.shape.reduce(1, *) })
        return 4 * (4 * parameters + LlamaModel.activationFloats(config, tokens: tokens, checkpointed: checkpointed))
            + (bf16 ? 2 * parameters : 0)
    }

    /// The machine's physical memory in bytes.
    static var physicalMemory: Double {
        Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The model a path written in the spec names (`ModelPathKind`).
    static func source(path: String, experiment: Experiment?) -> RunConfig.ModelSource {
        switch ModelPathKind.of(experiment?.resolve(path) ?? path) {
        case .huggingFaceDirectory: return .hf(path: path)
        case .gguf: return .gguf(path: path)
        }
    }

    /// The model at a command's `--model` path (a GGUF file or a Hugging Face directory, `ModelPathKind`), for up to
    /// `capacity` tokens at once.
    public static func load(path: String, capacity: Int, maxSequenceLength: Int? = nil, checkpointActivations: Bool = false) throws -> LoadedModel {
        try load(source(path: path, experiment: nil), experiment: nil, capacity: capacity, maxSequenceLength: maxSequenceLength ?? capacity,
                 threads: Threads.count, checkpointActivations: checkpointActivations)
    }

    /// The tokenizer of the model at a command's `--model` path (its metadata only; the weights are not loaded).
    public static func tokenizer(path: String) throws -> any TextTokenizer {
        try validate(source(path: path, experiment: nil), experiment: nil).tokenizer
    }

    static func load(_ source: RunConfig.ModelSource, experiment: Experiment?, capacity: Int, maxSequenceLength: Int, threads: Int,
                     checkpointActivations: Bool = false) throws -> LoadedModel {
        Threads.count = threads
        switch source {
        case .gguf(let path):
            let resolved = try existing(path, experiment: experiment, directory: false)
            let loaded = try PretrainedModel.load(path: resolved, maxTokens: capacity, maxSequenceLength: maxSequenceLength,
                                                  checkpointActivations: checkpointActivations)
            return LoadedModel(model: loaded.model, tokenizer: loaded.tokenizer, stopTokens: ChatEncoder.stopTokens(loaded.tokenizer))
        case .hf(let path):
            let dir = try HFModelDirectory(path: try existing(path, experiment: experiment, directory: true))
            let model = try dir.load(maxTokens: capacity, maxSequenceLength: maxSequenceLength, checkpointActivations: checkpointActivations)
            return LoadedModel(model: model, tokenizer: dir.tokenizer, stopTokens: ChatEncoder.stopTokens(dir.tokenizer))
        case .preset(let name, let seed):
            let config = presetConfig(name)
            let model = LlamaModel(config: config, maxTokens: capacity, maxSequenceLength: maxSequenceLength,
                                   checkpointActivations: checkpointActivations)
            model.initializeRandom(seed: UInt64(seed))
            let tokenizer = ByteTokenizer()
            return LoadedModel(model: model, tokenizer: tokenizer, stopTokens: ChatEncoder.stopTokens(tokenizer))
        }
    }
}

/// Tokenizes a (prompt, response) pair under a chat template, the way every score in AlignScope is
/// computed: prompt and response tokenized separately (no BOS), ids concatenated. A prompt longer
/// than fits is cut from the left (as is usual for HH); a response that cannot fit is an error.
enum PairEncoder {
    static func encode(prompt: PromptSource, response: String, separated: Bool = true, tokenizer: any TextTokenizer, template: ChatTemplate,
                       maxLength: Int, file: String, line: Int) throws -> EncodedPair {
        do {
            let p = try ChatEncoder(tokenizer: tokenizer, template: template).pair(prompt: prompt, response: response, separated: separated, maxLength: maxLength)
            return EncodedPair(prompt: p.prompt, response: p.response, promptCut: p.cut)
        } catch {
            throw RunError.data(file: file, line: line, reason: error.description)
        }
    }

    /// A run's training examples: the lines of its training file (`path`, resolved: `RunExecutor.trainPath`),
    /// the first `data.train.limit` of them when set.
    static func trainingExamples(of config: RunConfig, path: String) throws -> (path: String, examples: [PreferenceExample]) {
        var examples = try loadExamples(path: path)
        guard !examples.isEmpty else { throw RunError.data(file: path, line: nil, reason: "no examples (the file is empty)") }
        if config.data.train.limit > 0 { examples = Array(examples.prefix(config.data.train.limit)) }
        return (path, examples)
    }

    /// What an objective trains on, tokenised: SFT sequences of the target response, Chain of Hindsight
    /// sequences, or chosen/rejected pairs. The one place that decides what each objective needs from a
    /// line; validation runs it (and drops the result), so that a run meets no bad line after it started.
    enum Encoded {
        case sequences([EncodedPair])
        case hindsight([[(ids: [Int32], trained: Bool)]])
        case pairs([PreferencePair])
        /// A reward model's pairs with each pair's margin (0 without `objective.margin`).
        case rewardPairs([PreferencePair], margins: [Double])
        /// An online objective's prompts, each cut from the left to leave `objective.max_tokens` of `train.max_length`.
        case prompts([[Int32]])
        /// KTO's unpaired examples and their labels; `splitPairs` paired lines were split into a desirable and
        /// an undesirable example each (`PreferenceExample.unpaired`).
        case unpaired([EncodedPair], desirable: [Bool], splitPairs: Int)
    }

    static func training(_ examples: [PreferenceExample], objective: Objective, tokenizer: any TextTokenizer,
                         template: ChatTemplate, maxLength: Int, file: String) throws -> Encoded {
        if let text = examples.first(where: { $0.form == .text }), objective.kind != "sft" {
            throw RunError.data(file: file, line: text.line, reason: "a language-modelling line {\"text\"} has no prompt, which \(objective.kind) needs; only sft trains on text lines (objective.target \"text\", loss_on \"all\")")
        }
        switch objective {
        case .ppo(let p):
            return .prompts(try examples.map { ex in
                var ids: [Int32]
                do { ids = try ChatEncoder(tokenizer: tokenizer, template: template).prompt(ex.promptSource) } catch {
                    throw RunError.data(file: file, line: ex.line, reason: "\(error)")
                }
                guard !ids.isEmpty else { throw RunError.data(file: file, line: ex.line, reason: "empty prompt (ppo samples a response to each prompt)") }
                let room = maxLength - p.maxTokens
                if ids.count > room { ids.removeFirst(ids.count - room) }
                return ids
            })
        case .spin:
            // the data responses (chosen) are SPIN's chosen side; the rejected side is generated when the run starts
            return try training(examples, objective: .sft(lossOn: .response, target: .chosen), tokenizer: tokenizer, template: template,
                                maxLength: maxLength, file: file)
        case .sft(let lossOn, let target):
            return .sequences(try examples.map { ex in
                if ex.form == .text || target == .text {
                    return try languageModelling(ex, lossOn: lossOn, target: target, tokenizer: tokenizer, maxLength: maxLength, file: file)
                }
                let field = target.rawValue
                guard let text = ex.fields[field] else {
                    let hint = ex.form == .promptCompletion ? "; this is a prompt-completion line: set objective.target to \"completion\""
                        : ex.chosen != nil && target == .completion ? "; this line is a pair: set objective.target to \"chosen\" or \"rejected\"" : ""
                    throw RunError.data(file: file, line: ex.line, reason: "no \"\(field)\" response (objective.target is \"\(field)\")\(hint)")
                }
                return try encode(prompt: ex.promptSource, response: text, separated: ex.isSeparated(field), tokenizer: tokenizer,
                                  template: template, maxLength: maxLength, file: file, line: ex.line)
            })
        case .coh(let hindsight):
            return .hindsight(try examples.map { ex in
                try Self.hindsight(ex, template: hindsight, chat: template, tokenizer: tokenizer, maxLength: maxLength, file: file, line: ex.line)
            })
        case .pair:
            return .pairs(try examples.map { try pair($0, objective: objective, tokenizer: tokenizer, template: template, maxLength: maxLength, file: file) })
        case .kto(_, _, _, let threshold):
            if threshold == nil, let rated = examples.first(where: { $0.rating != nil && $0.chosen == nil }) {
                throw RunError.data(file: file, line: rated.line, reason: "a rated line; kto needs objective.rating_threshold to tell desirable (rating >= threshold) from undesirable")
            }
            var pairs: [EncodedPair] = [], desirable: [Bool] = [], split = 0
            for ex in threshold.map({ RatedFeedback.unpaired(examples, threshold: $0) }) ?? examples {
                let parts = ex.unpaired()
                if parts.count == 2 { split += 1 }
                for part in parts {
                    guard let label = part.label, let text = part.fields["completion"] ?? part.fields["response"] else {
                        throw RunError.data(file: file, line: ex.line, reason: "kto trains on {prompt, completion, label} lines or chosen/rejected pairs; this line has neither")
                    }
                    pairs.append(try encode(prompt: part.promptSource, response: text, separated: part.isSeparated("completion") && part.isSeparated("response"),
                                            tokenizer: tokenizer, template: template, maxLength: maxLength, file: file, line: ex.line))
                    desirable.append(label)
                }
            }
            return .unpaired(pairs, desirable: desirable, splitPairs: split)
        case .reward(let marginField, _, _):
            // rated lines become pairs with their rating difference as margin (`RatedFeedback.pairs`)
            let examples = RatedFeedback.pairs(examples)
            let pairs = try examples.map { try pair($0, objective: objective, tokenizer: tokenizer, template: template, maxLength: maxLength, file: file) }
            let margins = try examples.map { ex throws -> Double in
                guard let marginField else { return ex.form == .rated ? ex.numbers["margin"] ?? 0 : 0 }
                do {
                    return try ex.number(of: marginField)
                } catch {
                    throw RunError.data(file: file, line: ex.line, reason: "objective.margin is \"\(marginField)\": \("\(error)".split(separator: ": ", maxSplits: 1).last ?? "")")
                }
            }
            return .rewardPairs(pairs, margins: margins)
        }
    }

    /// A language-modelling line (`{"text"}`, TRL's form) for SFT: the whole text and the end-of-text token (as
    /// TRL appends it), no prompt and no template, trained with `loss_on: "all"` (every token after the first).
    static func languageModelling(_ ex: PreferenceExample, lossOn: LossOn, target: ResponseTarget, tokenizer: any TextTokenizer,
                                  maxLength: Int, file: String) throws -> EncodedPair {
        guard ex.form == .text, target == .text else {
            throw RunError.data(file: file, line: ex.line, reason: ex.form == .text
                ? "a language-modelling line {\"text\"}: set objective.target to \"text\" (and loss_on to \"all\")"
                : "objective.target \"text\" trains on language-modelling lines {\"text\"}; this line is read as \(ex.form.rawValue)")
        }
        guard lossOn == .all else {
            throw RunError.data(file: file, line: ex.line, reason: "a language-modelling line {\"text\"} has no prompt to mask: set objective.loss_on to \"all\"")
        }
        let ids = tokenizer.encode(ex.fields["text"] ?? "") + [tokenizer.eos]
        guard ids.count >= 2 else { throw RunError.data(file: file, line: ex.line, reason: "empty text") }
        guard ids.count <= maxLength else {
            throw RunError.data(file: file, line: ex.line, reason: "text is \(ids.count) tokens with its end-of-text token, train.max_length is \(maxLength)")
        }
        return EncodedPair(prompt: [], response: ids, promptCut: 0)
    }

    /// A line's chosen/rejected pair, tokenised; lines without both are refused naming the objective.
    static func pair(_ ex: PreferenceExample, objective: Objective, tokenizer: any TextTokenizer, template: ChatTemplate,
                     maxLength: Int, file: String) throws -> PreferencePair {
        guard let chosen = ex.chosen, let rejected = ex.rejected else {
            throw RunError.data(file: file, line: ex.line, reason: "no \"\(ex.chosen == nil ? "chosen" : "rejected")\" response (\(objective.kind) trains on chosen/rejected pairs)")
        }
        let c = try encode(prompt: ex.promptSource, response: chosen, separated: ex.isSeparated("chosen"), tokenizer: tokenizer,
                           template: template, maxLength: maxLength, file: file, line: ex.line)
        let r = try encode(prompt: ex.promptSource, response: rejected, separated: ex.isSeparated("rejected"), tokenizer: tokenizer,
                           template: template, maxLength: maxLength, file: file, line: ex.line)
        return PreferencePair(prompt: c.prompt.count <= r.prompt.count ? c.prompt : r.prompt, chosen: c.response, rejected: r.response)
    }

    /// The scored text of a prompt under `template`; `raw` needs the prompt's own text.
    static func promptText(_ prompt: PromptSource, template: ChatTemplate, file: String, line: Int) throws -> String {
        do {
            return try ChatEncoder(tokenizer: ByteTokenizer(), template: template).promptText(prompt)
        } catch {
            throw RunError.data(file: file, line: line, reason: error.description)
        }
    }

    /// A Chain of Hindsight training sequence as token pieces (`HindsightTemplate.pieces`, each piece
    /// encoded alone so that loss boundaries fall on token boundaries). The prompt is cut from the left
    /// to fit `maxLength`, as for SFT pairs; the feedback phrases and both answers must fit with at least
    /// one prompt token.
    static func hindsight(_ ex: PreferenceExample, template: HindsightTemplate, chat: ChatTemplate, tokenizer: any TextTokenizer,
                          maxLength: Int, file: String, line: Int) throws -> [(ids: [Int32], trained: Bool)] {
        guard let chosen = ex.chosen, let rejected = ex.rejected else {
            throw RunError.data(file: file, line: line, reason: "no chosen/rejected pair (Chain of Hindsight needs pairs)")
        }
        var pieces = template.pieces(prompt: try promptText(ex.promptSource, template: chat, file: file, line: line),
                                     chosen: chosen, rejected: rejected)
            .map { (ids: tokenizer.encode($0.text), trained: $0.trained) }
        let rest = pieces.dropFirst().reduce(0) { $0 + $1.ids.count }
        guard rest < maxLength else {
            throw RunError.data(file: file, line: line, reason: "Chain of Hindsight sequence without its prompt (feedback phrases and both answers) is \(rest) tokens, train.max_length is \(maxLength): it cannot fit with its prompt")
        }
        if pieces[0].ids.count > maxLength - rest { pieces[0].ids.removeFirst(pieces[0].ids.count - (maxLength - rest)) }
        return pieces
    }
}
