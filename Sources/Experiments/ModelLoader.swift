import Foundation
import GGUF
import Kernels
import Model
import Tokenizer

/// A model ready to train or score, with its tokenizer.
struct LoadedModel {
    var model: LlamaModel
    var tokenizer: any TextTokenizer
    /// Tokens that end a response (EOS, and for ChatML `<|im_end|>`).
    var stopTokens: Set<Int32>
}

enum ModelLoader {
    /// What `load` would check, without building the model: the tokenizer of a GGUF whose metadata and
    /// tensors `load` accepts (`PretrainedModel.validate`), or a preset's. Errors are `load`'s.
    static func tokenizer(_ source: RunConfig.ModelSource, experiment: Experiment) throws -> any TextTokenizer {
        switch source {
        case .gguf(let path):
            let resolved = try existing(path, experiment: experiment)
            return try PretrainedModel.validate(path: resolved).tokenizer
        case .preset:
            return ByteTokenizer()
        }
    }

    private static func existing(_ path: String, experiment: Experiment) throws -> String {
        let resolved = experiment.resolve(path)
        guard FileManager.default.fileExists(atPath: resolved) else {
            throw RunError.model(path: resolved, reason: "no such file (run `make models` for the default model)")
        }
        return resolved
    }

    static func load(_ source: RunConfig.ModelSource, experiment: Experiment, capacity: Int, maxSequenceLength: Int, threads: Int) throws -> LoadedModel {
        Threads.count = threads
        switch source {
        case .gguf(let path):
            let resolved = try existing(path, experiment: experiment)
            let loaded = try PretrainedModel.load(path: resolved, maxTokens: capacity, maxSequenceLength: maxSequenceLength)
            return LoadedModel(model: loaded.model, tokenizer: loaded.tokenizer, stopTokens: [loaded.tokenizer.eos])
        case .preset(let name, let seed):
            let config: LlamaConfig
            switch name {
            case "tiny-2l": config = .tiny(nLayers: 2)
            default: config = .tiny()
            }
            let model = LlamaModel(config: config, maxTokens: capacity, maxSequenceLength: maxSequenceLength)
            model.initializeRandom(seed: UInt64(seed))
            let tokenizer = ByteTokenizer()
            return LoadedModel(model: model, tokenizer: tokenizer, stopTokens: [tokenizer.eos])
        }
    }
}

/// Tokenizes a (prompt, response) pair under a chat template, the way every score in AlignScope is
/// computed: prompt and response tokenized separately (no BOS), ids concatenated. A prompt longer
/// than fits is cut from the left (as is usual for HH); a response that cannot fit is an error.
enum PairEncoder {
    static func encode(prompt: [ChatMessage], response: String, tokenizer: any TextTokenizer, template: ChatTemplate,
                       maxLength: Int, file: String, line: Int) throws -> EncodedPair {
        let responseIDs = tokenizer.encode(template.response(response))
        var promptIDs = tokenizer.encode(template.prompt(prompt))
        guard !responseIDs.isEmpty else {
            throw RunError.data(file: file, line: line, reason: "empty response")
        }
        guard responseIDs.count < maxLength else {
            throw RunError.data(file: file, line: line, reason: "response is \(responseIDs.count) tokens, train.max_length is \(maxLength): it cannot fit with its prompt")
        }
        let room = maxLength - responseIDs.count
        var cut = 0
        if promptIDs.count > room {
            cut = promptIDs.count - room
            promptIDs.removeFirst(cut)
        }
        return EncodedPair(prompt: promptIDs, response: responseIDs, promptCut: cut)
    }
}
