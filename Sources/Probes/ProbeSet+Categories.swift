import Base
import Foundation
import Model
import Tokenizer

extension ProbeSet {
    typealias Column = [(text: String, origin: String)]

    /// Texts of a derived category, one per example.
    static func derive(_ derivation: Derivation, category: String, examples: [PreferenceExample], seed: UInt64,
                       tokenizer: any TextTokenizer) throws(ProbesError) -> Column {
        let texts = try examples.map { (ex) throws(ProbesError) in try ex.text(of: derivation.field) }
        let origin = "derived:\(derivation.kind):seed=\(seed)"
        switch derivation {
        case .otherPrompt:
            guard examples.count >= 2 else {
                throw .category(name: category, reason: "other_prompt needs at least two probes, found \(examples.count)")
            }
            // Refuse, when possible, a partner with the same prompt or the same text: it would not be
            // "the response of another prompt".
            let keys = examples.map { promptKey($0.prompt) }
            let p = seededDerangement(count: texts.count, seed: seed) { i, j in texts[i] != texts[j] && keys[i] != keys[j] }
            return p.map { (texts[$0], origin) }
        case .shuffledWords:
            return texts.indices.map { i in
                var rng = SplitMix64(seed: seed ^ 0x5348_5546_464c_4544, stream: UInt64(i))
                return (shuffledWords(texts[i], rng: &rng), origin)
            }
        case .randomTokens:
            let allowed = randomTokenCandidates(tokenizer)
            guard !allowed.isEmpty else {
                throw .category(name: category, reason: "the tokenizer has no non-control tokens to draw from")
            }
            return texts.indices.map { i in
                var rng = SplitMix64(seed: seed ^ 0x524e_4454_4f4b_454e, stream: UInt64(i))
                let n = tokenizer.encode(texts[i]).count
                let ids = (0..<n).map { _ in allowed[rng.uniform(allowed.count)] }
                return (tokenizer.decode(ids), origin)
            }
        }
    }

    /// The ids random tokens are drawn from: the whole vocabulary but control tokens. `TextTokenizer`
    /// does not list its control tokens, so they are recognised by behaviour: BOS, EOS, ids that
    /// decode to nothing (ByteTokenizer's BOS/EOS/PAD), and ids that decode to a bracketed name such
    /// as "<|im_end|>" or "<pad>" which encodes back to that single id (BPE control tokens are
    /// matched whole in text).
    static func randomTokenCandidates(_ tokenizer: any TextTokenizer) -> [Int32] {
        var excluded: Set<Int32> = [tokenizer.eos]
        if let bos = tokenizer.bos { excluded.insert(bos) }
        return (0..<Int32(tokenizer.vocabSize)).filter { id in
            guard !excluded.contains(id) else { return false }
            let text = tokenizer.decode([id])
            if text.isEmpty { return false }
            if text.count > 2, text.first == "<", text.last == ">", !text.contains(where: \.isWhitespace),
               tokenizer.encode(text) == [id] {
                return false
            }
            return true
        }
    }

    /// Texts of a generated category, one per example, from the cache or the generator.
    static func generate(_ spec: GeneratorSpec, category: String, examples: [PreferenceExample],
                         cache: GenerationCache, options: GenerationOptions,
                         models: inout [String: GeneratorModel]) throws -> Column {
        let sources = try examples.map { (ex) throws(ProbesError) -> String in
            guard let field = spec.field else { return "" }
            return try ex.text(of: field)
        }
        let identity: String
        switch spec.backend {
        case let .command(argv):
            identity = ExternalCommandGenerator(argv: argv).identity
        case let .model(path):
            identity = ModelTextGenerator.identity(name: path, chatTemplate: chatTemplate(spec), options: sampling(spec))
        }
        let requests = examples.indices.map {
            GenerationRequest(id: $0, prompt: examples[$0].prompt, text: sources[$0], template: spec.template, seed: spec.seed)
        }
        let keys = requests.map {
            GenerationCache.key(identity: identity, template: $0.template, seed: $0.seed,
                                prompt: messagesJSON($0.prompt), text: $0.text)
        }
        let missing = requests.indices.filter { cache[keys[$0]] == nil }
        if !missing.isEmpty {
            // The generator (and its model) is made only when something is not cached.
            let generator: any TextGenerator
            switch spec.backend {
            case let .command(argv):
                generator = ExternalCommandGenerator(argv: argv, timeout: spec.timeout)
            case let .model(path):
                generator = try modelGenerator(spec, path: path, category: category, options: options, models: &models)
            }
            precondition(generator.identity == identity, "generator identity must not depend on the loaded model")
            let texts = try generator.generate(missing.map { requests[$0] })
            for (i, text) in zip(missing, texts) { cache[keys[i]] = text }
            try cache.save()
        }
        let origin = generationOrigin(spec)
        return keys.map { (cache[$0]!, origin) }
    }

    private static func modelGenerator(_ spec: GeneratorSpec, path: String, category: String, options: GenerationOptions,
                                       models: inout [String: GeneratorModel]) throws -> ModelTextGenerator {
        let loaded: GeneratorModel
        if let known = models[path] {
            loaded = known
        } else {
            guard let loadModel = options.loadModel else {
                throw ProbesError.category(name: category, reason: "generating with model \(path) needs a model loader")
            }
            do {
                loaded = try loadModel(path)
            } catch {
                throw ProbesError.category(name: category, reason: "cannot load model \(path): \(error)")
            }
            models[path] = loaded
        }
        return ModelTextGenerator(model: loaded.model, tokenizer: loaded.tokenizer, addsBOS: loaded.addsBOS,
                                  chatTemplate: chatTemplate(spec), options: sampling(spec), name: path)
    }

    private static func sampling(_ spec: GeneratorSpec) -> SamplingOptions {
        SamplingOptions(maxTokens: spec.maxTokens, temperature: spec.temperature, topP: spec.topP, seed: spec.seed)
    }

    private static func chatTemplate(_ spec: GeneratorSpec) -> ChatTemplate {
        ChatTemplate(rawValue: spec.chatTemplate) ?? .chatml
    }

    /// `generated:command=<argv0>:template=<sha8>:seed=S` or
    /// `generated:model=<file>:template=<sha8>:temperature=T:top_p=P:max_tokens=N:seed=S`.
    static func generationOrigin(_ spec: GeneratorSpec) -> String {
        let template = String(SHA256.hex(spec.template).prefix(8))
        switch spec.backend {
        case let .command(argv):
            return "generated:command=\(argv[0]):template=\(template):seed=\(spec.seed)"
        case let .model(path):
            let file = URL(fileURLWithPath: path).lastPathComponent
            return "generated:model=\(file):template=\(template):temperature=\(spec.temperature):top_p=\(spec.topP)"
                + ":max_tokens=\(spec.maxTokens):seed=\(spec.seed)"
        }
    }
}
