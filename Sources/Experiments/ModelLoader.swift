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
        case .checkpoints(let folder, let base):
            if let base { return try validate(ModelLoader.source(path: base, experiment: experiment), experiment: experiment) }
            let dir = try firstCheckpoint(folder)
            return (dir.config, dir.tokenizer)
        }
    }

    /// The model of a watched folder without `model.base`: its first complete checkpoint read as a Hugging Face directory,
    /// or, when that is a PEFT adapter, the local base directory the adapter names.
    static func firstCheckpoint(_ folder: String) throws -> HFModelDirectory {
        let output = TrainerOutput(folder: folder)
        guard let first = try output.scan().complete.first else {
            throw RunError.io(path: folder, reason: "no complete checkpoint yet (checkpoint-N/ with config.json, weights and trainer_state.json) and no model.base to start from")
        }
        if first.isAdapter {
            guard let base = try output.adapterBase(first) else {
                throw RunError.model(path: first.path + "/adapter_config.json", reason: "\(first.name) is a PEFT adapter whose base_model_name_or_path is not a local directory: give the base as model.base")
            }
            return try HFModelDirectory(path: base)
        }
        return try HFModelDirectory(path: first.path, tokenizerDirectory: WatchStage.tokenizerDirectory(first.path, folder: folder))
    }

    /// Whether two tokenizers read text alike: the same vocabulary size and the same ids for a few texts (the chat
    /// markers among them). A reference model, or a watched checkpoint against its base, must.
    static func tokenizersAgree(_ a: any TextTokenizer, _ b: any TextTokenizer) -> Bool {
        let samples = ["Why is the sky blue? Rayleigh scattering.", "<|im_start|>user\nHi<|im_end|>", "\n\nHuman: hello\n\nAssistant: 42 ünïcode"]
        return a.vocabSize == b.vocabSize && samples.allSatisfy { a.encode($0) == b.encode($0) }
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
    /// With `lora`, the weights are frozen (no gradients, no moments): the adapters take four floats each instead, and
    /// a training forward keeps rank floats per adapter, token and block for backward.
    static func trainingBytes(_ config: LlamaConfig, tokens: Int, checkpointed: Bool = false, bf16: Bool = false,
                              lora: LoRASettings? = nil) -> Double {
        let parameters = Double(LlamaModel.parameterTable(for: config).reduce(0) { $0 + $1.shape.reduce(1, *) })
        // weights, gradients, m and v of what trains; with LoRA: the weights, and the adapters' four floats each
        let state = lora.map {
            parameters + 4 * Double($0.parameterCount(config)) + Double(config.nLayers * tokens * $0.keptColumns)
        } ?? 4 * parameters
        return 4 * (state + LlamaModel.activationFloats(config, tokens: tokens, checkpointed: checkpointed))
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
        case .checkpoints(let folder, let base):
            // the base (scored as step 0), else the first checkpoint: the model each checkpoint's weights are read into
            if let base {
                return try load(ModelLoader.source(path: base, experiment: experiment), experiment: experiment, capacity: capacity,
                                maxSequenceLength: maxSequenceLength, threads: threads, checkpointActivations: checkpointActivations)
            }
            let dir = try firstCheckpoint(folder)
            let model = try dir.load(maxTokens: capacity, maxSequenceLength: maxSequenceLength, checkpointActivations: checkpointActivations)
            return LoadedModel(model: model, tokenizer: dir.tokenizer, stopTokens: ChatEncoder.stopTokens(dir.tokenizer))
        }
    }
}

extension PairEncoder {
    /// A run's training examples: the lines of its training file (`path`, resolved: `RunExecutor.trainPath`),
    /// the first `data.train.limit` of them when set.
    static func trainingExamples(of config: RunConfig, path: String) throws -> (path: String, examples: [PreferenceExample]) {
        var examples = try loadExamples(path: path)
        guard !examples.isEmpty else { throw DataError(file: path, line: nil, reason: "no examples (the file is empty)") }
        if config.data.train.limit > 0 { examples = Array(examples.prefix(config.data.train.limit)) }
        return (path, examples)
    }

}
