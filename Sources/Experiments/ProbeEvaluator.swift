import Base
import Foundation
import Kernels
import Model
import Probes
import RunStore
import Tokenizer
import Training

/// Scores every response of a run's probe set at an evaluation step. Probes are laid out in one
/// `BatchSession` cache, as many at a time as fit: each prompt runs once and all of its responses attend
/// to its keys, and the prompts and responses of several probes run through the network together.
/// Dynamic categories are made anew at each evaluation and recorded as responses: `greedy` decoded, all
/// probes in lock step, before the scoring pass; `argmax` read from the scoring pass (the most likely token
/// at every position of its source category's response), then scored in a second, smaller pass.
/// Every scored response gets its measures (`Base.Measure`), from the same pass as its log-probability;
/// with `eval.tokens`, its per-token log-probabilities too.
final class ProbeEvaluator {
    struct EncodedResponse {
        var responseID: Int64
        var category: String
        var ids: [Int32]
    }

    struct EncodedProbe {
        var probeID: Int64
        var prompt: [Int32]
        var responses: [EncodedResponse]
        /// How a response is joined to this prompt (`ChatTemplate.response(_:after:)`).
        var source: PromptSource
    }

    let probeSet: ProbeSet
    let probeSetName: String
    /// An online run's reward of responses (each with its prompt, its tokens without the stop token, its text), one
    /// value each, recorded as the `reward` measure of every `greedy` answer: what the reward source thinks of what
    /// the policy says. Called once per greedy category and evaluation, with all its answers.
    var greedyReward: (([(prompt: PromptSource, ids: [Int32], text: String)]) -> [Double])?
    let encoded: [EncodedProbe]
    let batch: BatchSession
    let tokenizer: any TextTokenizer
    let template: ChatTemplate
    let store: RunStore
    let stopTokens: Set<Int32>
    /// Probes whose prompt was cut from the left to fit `train.max_length`.
    let promptsCut: Int

    init(config: RunConfig, experiment: Experiment, store: RunStore, loaded: LoadedModel,
         template: ChatTemplate, trainPrompts: [[ChatMessage]]) throws {
        let path = experiment.resolve(config.data.probes.path)
        let set = try Self.buildProbeSet(config: config, experiment: experiment, tokenizer: loaded.tokenizer, trainPrompts: trainPrompts)
        probeSet = set
        let sourceText = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        probeSetName = "\(experiment.name):\(URL(fileURLWithPath: path).lastPathComponent):" +
            SHA256.hex(Array((sourceText + config.json.value(at: ["data"])!.canonical + "seed=\(config.seed)").utf8)).prefix(12)
        let entries = set.probes.map { probe in
            ProbeEntry(idx: probe.idx, prompt: Self.promptText(probe.prompt), split: probe.split.rawValue,
                       responses: probe.responses)
        }
        let ids = try store.recordProbeSet(name: probeSetName, probes: entries)
        let probeIDs = try store.probeIDs(probeSet: probeSetName)
        // Chain of Hindsight scores every response as the continuation of the helpful prefix.
        let hindsight = config.objective.probeTemplate
        var cut = 0
        var out: [EncodedProbe] = []
        let maxLength = config.train.maxLength
        let encoder = ChatEncoder(tokenizer: loaded.tokenizer, template: template)
        for probe in set.probes {
            var responses: [EncodedResponse] = []
            var longest = 0
            for r in probe.responses {
                let rids = hindsight == nil ? encoder.response(r.text, after: probe.promptSource, separated: r.separated) : loaded.tokenizer.encode(r.text)
                do {
                    try ChatEncoder.checkFits(rids, maxLength: maxLength, what: "\(r.category) response")
                } catch {
                    throw DataError(file: path, line: probe.idx + 1, reason: error.description)
                }
                longest = max(longest, rids.count)
                responses.append(EncodedResponse(responseID: ids[ResponseKey(probeIdx: probe.idx, category: r.category, text: r.text)]!,
                                                 category: r.category, ids: rids))
            }
            longest = max(longest, set.dynamicCategories.map(\.maxTokens).max() ?? 0)
            let context = try PairEncoder.promptText(probe.promptSource, template: template, file: path, line: probe.idx + 1)
            var prompt = loaded.tokenizer.encode(hindsight?.evaluationPrefix(prompt: context) ?? context)
            let room = maxLength - longest
            if prompt.count > room {
                prompt.removeFirst(prompt.count - room)
                cut += 1
            }
            out.append(EncodedProbe(probeID: probeIDs[probe.idx]!, prompt: prompt, responses: responses, source: probe.promptSource))
        }
        encoded = out
        promptsCut = cut
        // a reward model also runs each response's last token (`scoreDistributionsAndRewards`)
        let whole = loaded.model.config.rewardHead ? 1 : 0
        let need = out.map { $0.prompt.count + $0.responses.reduce(0) { $0 + max(0, $1.ids.count - 1 + whole) } }.max() ?? 0
        batch = BatchSession(model: loaded.model, slots: max(Self.cacheSlots, need + (maxLength + 64) * set.dynamicCategories.count),
                             context: 2 * maxLength + 1)
        batch.precision = config.eval.precision
        tokenizer = loaded.tokenizer
        self.template = template
        self.store = store
        stopTokens = loaded.stopTokens
        recordTokens = config.eval.tokens
        recordsKL = config.eval.kl
        self.maxLength = config.train.maxLength
    }

    /// `eval.kl`: each response's KL to the reference (`Measure.klToReference`).
    let recordsKL: Bool
    /// The starting weights' distributions at every response position of the data's categories (for `eval.tokens`: where
    /// the mass went; for `eval.kl` without `objective.reference`: the reference), held by `holdStart` before training.
    private(set) var heldStart: HeldDistributions?
    /// `objective.reference`'s distributions there (`holdReference`).
    private(set) var heldReference: HeldDistributions?
    /// Per probe and response of the data's categories, its first row in the held sets.
    private var heldRows: [[Int]] = []

    /// The data's categories of every probe, as `BatchSession` scores them.
    private var staticItems: [(prompt: [Int32], responses: [[Int32]])] {
        encoded.map { (prompt: $0.prompt, responses: $0.responses.map(\.ids)) }
    }

    /// Holds the model's distributions now (its starting weights): call before training or resuming.
    func holdStart() {
        let (held, rows) = batch.hold(staticItems)
        heldStart = held
        heldRows = rows
    }

    /// Holds a reference model's distributions (`objective.reference`, for `eval.kl`).
    func holdReference(_ model: LlamaModel) {
        let session = BatchSession(model: model, slots: batch.slots, context: batch.context)
        session.precision = batch.precision
        let (held, rows) = session.hold(staticItems)
        heldReference = held
        heldRows = rows
    }

    /// `eval.tokens`: also record every response token (`token_logprobs`).
    let recordTokens: Bool
    let maxLength: Int

    /// The probe set of a run: data fields, derived and generated categories (generated texts are
    /// cached beside the probe file), split by whether each prompt is in the training data.
    static func buildProbeSet(config: RunConfig, experiment: Experiment, tokenizer: any TextTokenizer,
                              trainPrompts: [[ChatMessage]]) throws -> ProbeSet {
        let path = experiment.resolve(config.data.probes.path)
        let examples = try loadExamples(path: path)
        let categories = config.data.probes.sources
        return try ProbeSet.build(
            examples: examples, categories: categories, seed: UInt64(config.seed), trainPrompts: trainPrompts,
            tokenizer: tokenizer,
            generation: GenerationOptions(
                cachePath: path + ".generated.json",
                loadModel: { p in
                    let m = try ModelLoader.load(ModelLoader.source(path: p, experiment: experiment), experiment: experiment, capacity: 512, maxSequenceLength: 512, threads: config.threadCount)
                    return GeneratorModel(model: m.model, tokenizer: m.tokenizer, addsBOS: false)
                }))
    }

    /// Tokens one evaluation runs through the model: every prompt once and every response of the data's categories, and
    /// `max_tokens` for each greedy response. What `ProgressClock` estimates an evaluation's time from before it has
    /// measured one.
    var tokensPerEvaluation: Int {
        let greedy = probeSet.dynamicCategories.reduce(0) { n, d in
            if case let .greedy(maxTokens) = d.kind { return n + maxTokens }
            return n
        }
        return encoded.reduce(0) { $0 + $1.prompt.count + $1.responses.reduce(0) { $0 + $1.ids.count } + greedy }
    }

    /// Told during `score` how many of `responsesPerEvaluation` are scored (after each pass through the cache).
    var progress: ((_ done: Int) -> Void)?

    /// Number of responses scored per evaluation (dynamic categories included).
    var responsesPerEvaluation: Int {
        encoded.reduce(0) { $0 + $1.responses.count } + encoded.count * probeSet.dynamicCategories.count
    }

    /// The responses `eval.attribution` follows: every response of the data's categories (not the dynamic ones, made anew
    /// at each evaluation) of the first `probes` probes (nil: all), as (response, prompt tokens, response tokens).
    func attributionResponses(probes: Int?) -> [(responseID: Int64, context: [Int32], continuation: [Int32])] {
        encoded.prefix(probes ?? encoded.count).flatMap { probe in
            probe.responses.map { ($0.responseID, probe.prompt, $0.ids) }
        }
    }

    /// KV cache positions of the evaluator's session (about 190 MB for SmolLM2-135M): the probes of one
    /// pass through the cache.
    static let cacheSlots = 4096

    /// Scores every response given its prompt with the model's current weights: log-probability, measures
    /// and (with `eval.tokens`) tokens of each.
    func score(step: Int) throws -> [LogprobRow] {
        var extra = [[EncodedResponse]](repeating: [], count: encoded.count)
        var facts: [Int64: [String: Double]] = [:]
        for dynamic in probeSet.dynamicCategories {
            guard case let .greedy(maxTokens) = dynamic.kind else { continue }
            let decoded = batch.greedy(prompts: encoded.map(\.prompt), maxTokens: maxTokens, stop: stopTokens)
            let rewards = greedyReward?(decoded.enumerated().map { (encoded[$0].source, $1, tokenizer.decode($1)) })
            for (i, ids) in decoded.enumerated() {
                let response = try record(dynamic, ids, probe: encoded[i], step: step)
                extra[i].append(response)
                // `greedy` stops before a stop token or after max_tokens tokens, so fewer means it ended its turn
                facts[response.responseID] = [Measure.endedTurn.rawValue: ids.count < maxTokens ? 1 : 0,
                                              Measure.generatedTokens.rawValue: Double(ids.count)]
                if let rewards { facts[response.responseID]![Measure.reward.rawValue] = rewards[i] }
            }
        }
        let all = encoded.indices.map { encoded[$0].responses + extra[$0] }
        batch.passDone = progress
        defer { batch.passDone = nil }
        let (scored, extras, rewards) = scoreAll(all.map { $0.map(\.ids) })
        if let extras {
            for (id, values) in chesMeasures(all, extras) { facts[id, default: [:]].merge(values) { $1 } }
        }
        let (_, klIndex, gainIndex) = comparing
        var rows: [LogprobRow] = []
        rows.reserveCapacity(responsesPerEvaluation)
        for (p, responses) in all.enumerated() {
            for (r, response) in responses.enumerated() {
                var known = facts[response.responseID] ?? [:]
                if let rewards { known[Measure.reward.rawValue] = Double(rewards[p][r]) }
                rows.append(row(response, scored[p][r], facts: known, extras: extras?[p][r], klIndex: klIndex,
                                gainIndex: step > 0 ? gainIndex : nil))
            }
        }
        if let rewards { rewardAccuracy = Self.pairwiseAccuracy(all.map { $0.map(\.category) }, rewards, splits: probeSet.probes.map(\.split.rawValue)) }
        // argmax categories: the most likely token at each position of the source response, up to the first
        // stop token (the template's end of turn is added back when the text is scored, as for greedy).
        let argmaxCategories = probeSet.dynamicCategories.filter { if case .argmax = $0.kind { return true } else { return false } }
        if !argmaxCategories.isEmpty {
            var made = [[EncodedResponse]](repeating: [], count: encoded.count)
            for (p, probe) in encoded.enumerated() {
                for dynamic in argmaxCategories {
                    guard case let .argmax(source, _) = dynamic.kind,
                          let r = all[p].firstIndex(where: { $0.category == source }) else { continue }
                    let ids = Array(scored[p][r].map(\.argmax).prefix { !stopTokens.contains($0) })
                    var response = try record(dynamic, ids, probe: probe, step: step)
                    // re-encoding may split the text differently; it stays within the window the prompt left
                    response.ids = Array(response.ids.prefix(maxLength))
                    made[p].append(response)
                }
            }
            let first = rows.count
            batch.passDone = progress.map { tell in { done in tell(first + done) } }
            let (rescored, _, rerewards) = scoreAll(made.map { $0.map(\.ids) })
            for (p, responses) in made.enumerated() {
                for (r, response) in responses.enumerated() {
                    rows.append(row(response, rescored[p][r], facts: rerewards.map { [Measure.reward.rawValue: Double($0[p][r])] } ?? [:]))
                }
            }
        }
        return rows
    }

    /// The text of each token id the rows name (scored tokens, argmaxes and gains), each decoded alone, for `token_texts`.
    func tokenTexts(_ rows: [LogprobRow]) -> [Int32: String] {
        var out: [Int32: String] = [:]
        for row in rows {
            for t in row.tokens {
                if out[t.token] == nil { out[t.token] = tokenizer.decode([t.token]) }
                if out[t.argmax] == nil { out[t.argmax] = tokenizer.decode([t.argmax]) }
                if let g = t.gainToken, out[g] == nil { out[g] = tokenizer.decode([g]) }
            }
        }
        return out
    }

    /// What each evaluation compares with (`BatchSession.scoreDistributions(_:comparing:)`): the reference for `eval.kl`
    /// (index `klIndex`), the starting weights for the mass's gain (`gainIndex`).
    private var comparing: (held: [HeldDistributions], klIndex: Int?, gainIndex: Int?) {
        var held: [HeldDistributions] = [], kl: Int?, gain: Int?
        if recordsKL, let reference = heldReference ?? heldStart {
            kl = held.count
            held.append(reference)
        }
        if recordTokens, let start = heldStart {
            let at = held.firstIndex { $0 === start } ?? held.count
            if at == held.count { held.append(start) }
            gain = at
        }
        return (held, kl, gain)
    }

    /// Every probe's responses scored after its prompt: distributions, each position's extras (comparisons and hidden
    /// state; none for a reward model) and for a reward model each response's reward. The responses of the data's
    /// categories come first in each probe's list (`heldRows` indexes them).
    private func scoreAll(_ responses: [[[Int32]]]) -> (distributions: [[[TokenDistribution]]], extras: [[[BatchSession.PositionExtras]]]?, rewards: [[Float]]?) {
        let items = encoded.indices.map { (prompt: encoded[$0].prompt, responses: responses[$0]) }
        if batch.model.config.rewardHead {
            let scored = batch.scoreDistributionsAndRewards(items)
            return (scored.distributions, nil, scored.rewards)
        }
        let held = comparing.held
        let firstRows: [[Int?]] = items.indices.map { p in
            items[p].responses.indices.map { r in
                held.isEmpty || r >= heldRows[p].count || items[p].responses[r] != encoded[p].responses[r].ids ? nil : heldRows[p][r]
            }
        }
        let scored = batch.scoreDistributions(items, comparing: held, firstRows: firstRows, hiddenStates: needsHiddenStates)
        return (scored.map { $0.map { $0.map { $0.0 } } }, scored.map { $0.map { $0.map { $0.1 } } }, nil)
    }

    /// Whether some probe has both a `chosen` and a `rejected` response (CHES reads their hidden states).
    private var needsHiddenStates: Bool {
        encoded.contains { p in p.responses.contains { $0.category == "chosen" } && p.responses.contains { $0.category == "rejected" } }
    }

    /// CHES of each probe's chosen and rejected responses (`Measure.ches`, `.chesNorm`), keyed by the chosen response.
    private func chesMeasures(_ responses: [[EncodedResponse]], _ extras: [[[BatchSession.PositionExtras]]]) -> [Int64: [String: Double]] {
        var out: [Int64: [String: Double]] = [:]
        let dim = batch.model.config.dim
        for (p, list) in responses.enumerated() {
            guard let c = list.firstIndex(where: { $0.category == "chosen" }), let r = list.firstIndex(where: { $0.category == "rejected" }),
                  !extras[p][c].isEmpty, !extras[p][r].isEmpty else { continue }
            func sum(_ positions: [BatchSession.PositionExtras]) -> [Double] {
                let flat = positions.flatMap { $0.hidden }
                return flat.withUnsafeBufferPointer { hiddenSum($0, first: 0, count: positions.count, dim: dim) }
            }
            let v = chesValues(chosen: sum(extras[p][c]), chosenLength: extras[p][c].count, rejected: sum(extras[p][r]), rejectedLength: extras[p][r].count)
            out[list[c].responseID] = [Measure.ches.rawValue: v.ches, Measure.chesNorm.rawValue: v.normalised]
        }
        return out
    }

    /// A reward model's pairwise accuracy at the last evaluation: over probes with both a `chosen` and a
    /// `rejected` response, the share where r(chosen) > r(rejected), per split (`eval/accuracy/heldout`,
    /// `eval/accuracy/train`) and over all (`eval/accuracy`). Empty for other models.
    private(set) var rewardAccuracy: [(name: String, value: Double)] = []

    static func pairwiseAccuracy(_ categories: [[String]], _ rewards: [[Float]], splits: [String]) -> [(name: String, value: Double)] {
        var right: [String: Double] = [:], count: [String: Double] = [:]
        for (p, names) in categories.enumerated() {
            guard let c = names.firstIndex(of: "chosen"), let r = names.firstIndex(of: "rejected") else { continue }
            for key in ["eval/accuracy", "eval/accuracy/" + splits[p]] {
                count[key, default: 0] += 1
                if rewards[p][c] > rewards[p][r] { right[key, default: 0] += 1 }
            }
        }
        return count.keys.sorted().map { ($0, (right[$0] ?? 0) / count[$0]!) }
    }

    /// A dynamic category's tokens for `probe` at `step`, decoded, recorded as a response (origin
    /// "<category origin>:step=S") and encoded back as the template scores a response.
    private func record(_ dynamic: DynamicCategory, _ ids: [Int32], probe: EncodedProbe, step: Int) throws -> EncodedResponse {
        let text = tokenizer.decode(ids)
        let responseID = try store.addResponse(probeID: probe.probeID, category: dynamic.category, text: text,
                                               origin: dynamic.origin + ":step=\(step)")
        return EncodedResponse(responseID: responseID, category: dynamic.category,
                               ids: ChatEncoder(tokenizer: tokenizer, template: template).response(text, after: probe.source))
    }

    /// The stored row of one scored response: the summed log-probability (in Double, token by token, as
    /// always), its measures (none for an empty response, which has no positions), decoding facts, tokens.
    /// With `extras`: the KL measures from comparison `klIndex` (summed over positions) and each token's gain from
    /// comparison `gainIndex` (where the mass went since the starting weights).
    private func row(_ response: EncodedResponse, _ positions: [TokenDistribution], facts: [String: Double],
                     extras: [BatchSession.PositionExtras]? = nil, klIndex: Int? = nil, gainIndex: Int? = nil) -> LogprobRow {
        var measures = facts
        if !positions.isEmpty {
            for (measure, value) in measureValues(positions) { measures[measure.rawValue] = value }
        }
        let compared = extras.map { e in e.allSatisfy { !$0.comparisons.isEmpty } && !e.isEmpty } ?? false
        if compared, let k = klIndex, let e = extras {
            measures[Measure.klToReference.rawValue] = e.reduce(0) { $0 + $1.comparisons[k].klFromHeld }
            measures[Measure.reverseKLToReference.rawValue] = e.reduce(0) { $0 + $1.comparisons[k].klToHeld }
        }
        let gains: [DistributionComparison]? = compared ? gainIndex.flatMap { g in extras?.map { $0.comparisons[g] } } : nil
        let tokens = recordTokens
            ? positions.indices.map { i in
                TokenRow(token: response.ids[i], logprob: Double(positions[i].logprob), argmax: positions[i].argmax,
                         gainToken: gains?[i].gainToken, gain: gains?[i].gain)
            } : []
        return LogprobRow(responseID: response.responseID, logprob: positions.reduce(0.0) { $0 + Double($1.logprob) },
                          nTokens: response.ids.count, measures: measures, tokens: tokens)
    }

    /// A prompt as stored in `probes.prompt`: the text of a single user turn, or the messages as JSON.
    static func promptText(_ messages: [ChatMessage]) -> String {
        if messages.count == 1, messages[0].role == "user" { return messages[0].content }
        let json = JSONValue.array(messages.map { .object(["role": .string($0.role), "content": .string($0.content)]) })
        return json.canonical
    }

    static func describe(_ error: Error) -> String {
        if case DecodingError.dataCorrupted(let ctx) = error { return ctx.debugDescription }
        if case DecodingError.keyNotFound(let key, _) = error { return "no key \(key.stringValue)" }
        if case DecodingError.typeMismatch(_, let ctx) = error { return ctx.debugDescription }
        return "\(error)"
    }
}
