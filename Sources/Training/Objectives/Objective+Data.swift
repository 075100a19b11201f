import Base
import Foundation
import Model
import Probes
import Tokenizer

/// Tokenizes a (prompt, response) pair under a chat template, the way every score in AlignScope is
/// computed: prompt and response tokenized separately (no BOS), ids concatenated. A prompt longer
/// than fits is cut from the left (as is usual for HH); a response that cannot fit is an error.
public enum PairEncoder {
    public static func encode(prompt: PromptSource, response: String, separated: Bool = true, tokenizer: any TextTokenizer, template: ChatTemplate,
                       maxLength: Int, file: String, line: Int) throws -> EncodedPair {
        do {
            let p = try ChatEncoder(tokenizer: tokenizer, template: template).pair(prompt: prompt, response: response, separated: separated, maxLength: maxLength)
            return EncodedPair(prompt: p.prompt, response: p.response, promptCut: p.cut)
        } catch {
            throw DataError(file: file, line: line, reason: error.description)
        }
    }

    /// What an objective trains on, tokenised: SFT sequences of the target response, Chain of Hindsight
    /// sequences, or chosen/rejected pairs. The one place that decides what each objective needs from a
    /// line; validation runs it (and drops the result), so that a run meets no bad line after it started.
    public enum Encoded {
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

    public static func training(_ examples: [PreferenceExample], objective: Objective, tokenizer: any TextTokenizer,
                         template: ChatTemplate, maxLength: Int, file: String) throws -> Encoded {
        if let text = examples.first(where: { $0.form == .text }), objective.kind != "sft" {
            throw DataError(file: file, line: text.line, reason: "a language-modelling line {\"text\"} has no prompt, which \(objective.kind) needs; only sft trains on text lines (objective.target \"text\", loss_on \"all\")")
        }
        switch objective {
        case .ppo(let p):
            let encoder = ChatEncoder(tokenizer: tokenizer, template: template)
            return .prompts(try examples.map { ex in
                var ids: [Int32]
                do { ids = try encoder.prompt(ex.promptSource) } catch {
                    throw DataError(file: file, line: ex.line, reason: "\(error)")
                }
                guard !ids.isEmpty else { throw DataError(file: file, line: ex.line, reason: "empty prompt (ppo samples a response to each prompt)") }
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
                    throw DataError(file: file, line: ex.line, reason: "no \"\(field)\" response (objective.target is \"\(field)\")\(hint)")
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
                throw DataError(file: file, line: rated.line, reason: "a rated line; kto needs objective.rating_threshold to tell desirable (rating >= threshold) from undesirable")
            }
            var pairs: [EncodedPair] = [], desirable: [Bool] = [], split = 0
            for ex in threshold.map({ RatedFeedback.unpaired(examples, threshold: $0) }) ?? examples {
                let parts = ex.unpaired()
                if parts.count == 2 { split += 1 }
                for part in parts {
                    guard let label = part.label, let text = part.fields["completion"] ?? part.fields["response"] else {
                        throw DataError(file: file, line: ex.line, reason: "kto trains on {prompt, completion, label} lines or chosen/rejected pairs; this line has neither")
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
                    throw DataError(file: file, line: ex.line, reason: "objective.margin is \"\(marginField)\": \("\(error)".split(separator: ": ", maxSplits: 1).last ?? "")")
                }
            }
            return .rewardPairs(pairs, margins: margins)
        }
    }

    /// A language-modelling line (`{"text"}`, TRL's form) for SFT: the whole text and the end-of-text token (as
    /// TRL appends it), no prompt and no template, trained with `loss_on: "all"` (every token after the first).
    public static func languageModelling(_ ex: PreferenceExample, lossOn: LossOn, target: ResponseTarget, tokenizer: any TextTokenizer,
                                  maxLength: Int, file: String) throws -> EncodedPair {
        guard ex.form == .text, target == .text else {
            throw DataError(file: file, line: ex.line, reason: ex.form == .text
                ? "a language-modelling line {\"text\"}: set objective.target to \"text\" (and loss_on to \"all\")"
                : "objective.target \"text\" trains on language-modelling lines {\"text\"}; this line is read as \(ex.form.rawValue)")
        }
        guard lossOn == .all else {
            throw DataError(file: file, line: ex.line, reason: "a language-modelling line {\"text\"} has no prompt to mask: set objective.loss_on to \"all\"")
        }
        let ids = tokenizer.encode(ex.fields["text"] ?? "") + [tokenizer.eos]
        guard ids.count >= 2 else { throw DataError(file: file, line: ex.line, reason: "empty text") }
        guard ids.count <= maxLength else {
            throw DataError(file: file, line: ex.line, reason: "text is \(ids.count) tokens with its end-of-text token, train.max_length is \(maxLength)")
        }
        return EncodedPair(prompt: [], response: ids, promptCut: 0)
    }

    /// A line's chosen/rejected pair, tokenised; lines without both are refused naming the objective.
    public static func pair(_ ex: PreferenceExample, objective: Objective, tokenizer: any TextTokenizer, template: ChatTemplate,
                     maxLength: Int, file: String) throws -> PreferencePair {
        guard let chosen = ex.chosen, let rejected = ex.rejected else {
            throw DataError(file: file, line: ex.line, reason: "no \"\(ex.chosen == nil ? "chosen" : "rejected")\" response (\(objective.kind) trains on chosen/rejected pairs)")
        }
        let c = try encode(prompt: ex.promptSource, response: chosen, separated: ex.isSeparated("chosen"), tokenizer: tokenizer,
                           template: template, maxLength: maxLength, file: file, line: ex.line)
        let r = try encode(prompt: ex.promptSource, response: rejected, separated: ex.isSeparated("rejected"), tokenizer: tokenizer,
                           template: template, maxLength: maxLength, file: file, line: ex.line)
        return PreferencePair(prompt: c.prompt.count <= r.prompt.count ? c.prompt : r.prompt, chosen: c.response, rejected: r.response)
    }

    /// The scored text of a prompt under `template`; `raw` needs the prompt's own text.
    public static func promptText(_ prompt: PromptSource, template: ChatTemplate, file: String, line: Int) throws -> String {
        do {
            return try ChatEncoder.promptText(prompt, template: template)
        } catch {
            throw DataError(file: file, line: line, reason: error.description)
        }
    }

    /// A Chain of Hindsight training sequence as token pieces (`HindsightTemplate.pieces`, each piece
    /// encoded alone so that loss boundaries fall on token boundaries). The prompt is cut from the left
    /// to fit `maxLength`, as for SFT pairs; the feedback phrases and both answers must fit with at least
    /// one prompt token.
    public static func hindsight(_ ex: PreferenceExample, template: HindsightTemplate, chat: ChatTemplate, tokenizer: any TextTokenizer,
                          maxLength: Int, file: String, line: Int) throws -> [(ids: [Int32], trained: Bool)] {
        guard let chosen = ex.chosen, let rejected = ex.rejected else {
            throw DataError(file: file, line: line, reason: "no chosen/rejected pair (Chain of Hindsight needs pairs)")
        }
        var pieces = template.pieces(prompt: try promptText(ex.promptSource, template: chat, file: file, line: line),
                                     chosen: chosen, rejected: rejected)
            .map { (ids: tokenizer.encode($0.text), trained: $0.trained) }
        let rest = pieces.dropFirst().reduce(0) { $0 + $1.ids.count }
        guard rest < maxLength else {
            throw DataError(file: file, line: line, reason: "Chain of Hindsight sequence without its prompt (feedback phrases and both answers) is \(rest) tokens, train.max_length is \(maxLength): it cannot fit with its prompt")
        }
        if pieces[0].ids.count > maxLength - rest { pieces[0].ids.removeFirst(pieces[0].ids.count - (maxLength - rest)) }
        return pieces
    }
}
