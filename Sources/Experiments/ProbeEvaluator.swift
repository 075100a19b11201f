import Base
import Foundation
import Model
import Probes
import RunStore
import Tokenizer
import Training

/// Scores every response of a run's probe set at an evaluation step. Probes are laid out in one
/// `BatchSession` cache, as many at a time as fit: each prompt runs once and all of its responses attend
/// to its keys, and the prompts and responses of several probes run through the network together.
/// Dynamic categories (`greedy`) are decoded anew at each evaluation, all probes in lock step, recorded
/// as responses, then scored with the others.
final class ProbeEvaluator {
    struct EncodedResponse {
        var responseID: Int64
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
        var hindsight: HindsightTemplate?
        if case .coh(let template) = config.objective { hindsight = template }
        var cut = 0
        var out: [EncodedProbe] = []
        let maxLength = config.train.maxLength
        for probe in set.probes {
            var responses: [EncodedResponse] = []
            var longest = 0
            for r in probe.responses {
                let rids = loaded.tokenizer.encode(hindsight == nil ? template.response(r.text, after: probe.promptSource) : r.text)
                guard rids.count < maxLength else {
                    throw RunError.data(file: path, line: probe.idx + 1, reason: "\(r.category) response is \(rids.count) tokens, train.max_length is \(maxLength): it cannot fit with its prompt")
                }
                longest = max(longest, rids.count)
                responses.append(EncodedResponse(responseID: ids[ResponseKey(probeIdx: probe.idx, category: r.category, text: r.text)]!, ids: rids))
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
        let need = out.map { $0.prompt.count + $0.responses.reduce(0) { $0 + max(0, $1.ids.count - 1) } }.max() ?? 0
        batch = BatchSession(model: loaded.model, slots: max(Self.cacheSlots, need + (maxLength + 64) * set.dynamicCategories.count),
                             context: 2 * maxLength + 1)
        batch.precision = config.eval.precision
        tokenizer = loaded.tokenizer
        self.template = template
        self.store = store
        stopTokens = loaded.stopTokens
    }

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
                    let m = try ModelLoader.load(.gguf(path: p), experiment: experiment, capacity: 512, maxSequenceLength: 512, threads: config.threads)
                    return GeneratorModel(model: m.model, tokenizer: m.tokenizer, addsBOS: false)
                }))
    }

    /// Number of responses scored per evaluation (dynamic categories included).
    var responsesPerEvaluation: Int {
        encoded.reduce(0) { $0 + $1.responses.count } + encoded.count * probeSet.dynamicCategories.count
    }

    /// KV cache positions of the evaluator's session (about 190 MB for SmolLM2-135M): the probes of one
    /// pass through the cache.
    static let cacheSlots = 4096

    /// Scores every response given its prompt with the model's current weights.
    func score(step: Int) throws -> [LogprobRow] {
        var extra = [[EncodedResponse]](repeating: [], count: encoded.count)
        for dynamic in probeSet.dynamicCategories {
            let decoded = batch.greedy(prompts: encoded.map(\.prompt), maxTokens: dynamic.maxTokens, stop: stopTokens)
            for (i, ids) in decoded.enumerated() {
                let text = tokenizer.decode(ids)
                let responseID = try store.addResponse(probeID: encoded[i].probeID, category: dynamic.category, text: text,
                                                       origin: dynamic.origin + ":step=\(step)")
                extra[i].append(EncodedResponse(responseID: responseID, ids: tokenizer.encode(template.response(text, after: encoded[i].source))))
            }
        }
        let all = encoded.indices.map { encoded[$0].responses + extra[$0] }
        let scored = batch.scoreResponses(encoded.indices.map { (prompt: encoded[$0].prompt, responses: all[$0].map(\.ids)) })
        var rows: [LogprobRow] = []
        rows.reserveCapacity(responsesPerEvaluation)
        for (p, responses) in all.enumerated() {
            for (r, response) in responses.enumerated() {
                rows.append(LogprobRow(responseID: response.responseID, logprob: scored[p][r].reduce(0.0) { $0 + Double($1) },
                                       nTokens: response.ids.count))
            }
        }
        return rows
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
