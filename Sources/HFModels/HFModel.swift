import Base
import Foundation
import Model
import Tokenizer

/// A Hugging Face model directory, read unconverted: `config.json`, the weights (`model.safetensors`, or
/// shards listed by `model.safetensors.index.json`), `tokenizer.json` and, for the end-of-turn token,
/// `generation_config.json` / `tokenizer_config.json`.
///
/// Architectures (`HFArchitectures`, one file each): `llama` and `qwen2` (LlamaArchitecture.swift), `gpt_neox`
/// (GPTNeoXArchitecture.swift). Tensors are converted to our layout as they are read (RoPE row order,
/// GPT-NeoX's fused Q|K|V).
public struct HFModelDirectory {
    public let path: String
    public let config: LlamaConfig
    public let tokenizer: BPETokenizer
    /// Which file holds each tensor.
    let shards: [String: SafetensorsFile]

    public static var supportedArchitectures: [String] { HFArchitectures.supported }
    /// `config.json`'s `model_type`.
    public let architecture: String

    /// Reads and checks everything but the weights' values: config, tokenizer, and every tensor's name,
    /// shape and type. A bad or missing file throws `HFError` naming it.
    ///
    /// `tokenizerDirectory` (default `path`): where `tokenizer.json` and `tokenizer_config.json` are, when not beside the
    /// weights (a Trainer checkpoint saved without its tokenizer; the run's output folder has it).
    public init(path: String, tokenizerDirectory: String? = nil) throws(HFError) {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw HFError.file(path: path, reason: "expected a Hugging Face model directory (config.json, *.safetensors, tokenizer.json)")
        }
        let configFile = try JSONFile(path: path + "/config.json")
        let config = try Self.readConfig(configFile)
        self.config = config
        architecture = try configFile.string("model_type")
        tokenizer = try HFTokenizer.read(directory: tokenizerDirectory ?? path, vocabSize: config.vocabSize, modelDirectory: path)
        shards = try Self.openWeights(path)
        try checkWeights()
    }

    /// The tokenizer of `directory` alone (a PEFT adapter checkpoint's), its end-of-turn token from `modelDirectory`'s
    /// configs when it has none.
    public static func tokenizer(directory: String, modelDirectory: String, vocabSize: Int) throws(HFError) -> BPETokenizer {
        let own = FileManager.default.fileExists(atPath: directory + "/config.json") ? directory : modelDirectory
        return try HFTokenizer.read(directory: directory, vocabSize: vocabSize, modelDirectory: own)
    }

    // MARK: config.json

    /// The model configuration of `directory/config.json` alone (what `bench` needs to build a model of a
    /// checkpoint's shapes with random weights).
    public static func config(directory: String) throws(HFError) -> LlamaConfig {
        try readConfig(JSONFile(path: directory + "/config.json"))
    }

    static func readConfig(_ f: JSONFile) throws(HFError) -> LlamaConfig {
        let type = f.has("model_type") ? try f.string("model_type") : "(none)"
        guard let architecture = HFArchitectures.named(type) else {
            throw HFError.entry(path: f.path, key: "model_type", reason: "architecture \"\(type)\" is not supported (supported: \(HFArchitectures.supported.joined(separator: ", ")))")
        }
        let config = try architecture.config(f)
        // the twin of the GGUF reader's block-count guard, and the weights against this machine's memory, before a
        // table of layers, a tokenizer of vocab_size entries or a model of these shapes is built
        guard config.nLayers <= 4096 else {
            throw HFError.entry(path: f.path, key: "num_hidden_layers", reason: "\(config.nLayers) layers; at most 4096 are supported")
        }
        let parameters = LlamaModel.parameterTable(for: config).reduce(0.0) { $0 + $1.shape.reduce(1.0) { $0 * Double($1) } }
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        guard 4 * parameters <= memory else {
            throw HFError.entry(path: f.path, key: "vocab_size, hidden_size, num_hidden_layers", reason: String(format:
                "shapes of %.3g parameters need %.1f GiB as float32, more than this machine's %.1f GiB", parameters, 4 * parameters / 1073741824, memory / 1073741824))
        }
        return config
    }

    // MARK: weights

    static func openWeights(_ dir: String) throws(HFError) -> [String: SafetensorsFile] {
        let single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json"
        if FileManager.default.fileExists(atPath: index) {
            let f = try JSONFile(path: index)
            guard case let .object(map) = try f.value("weight_map") else {
                throw HFError.entry(path: index, key: "weight_map", reason: "expected an object from tensor name to file name")
            }
            var files: [String: SafetensorsFile] = [:]
            var out: [String: SafetensorsFile] = [:]
            for (tensor, value) in map.sorted(by: { $0.key < $1.key }) {
                guard case let .string(name) = value, !name.isEmpty, !name.contains("/") else {
                    throw HFError.entry(path: index, key: "weight_map.\(tensor)", reason: "expected a file name in the directory")
                }
                if files[name] == nil { files[name] = try SafetensorsFile(path: dir + "/" + name) }
                guard files[name]!.tensors[tensor] != nil else {
                    throw HFError.entry(path: dir + "/" + name, key: tensor, reason: "missing (model.safetensors.index.json places it here)")
                }
                out[tensor] = files[name]!
            }
            return out
        }
        guard FileManager.default.fileExists(atPath: single) else {
            throw HFError.file(path: single, reason: "missing (and no model.safetensors.index.json lists shards)")
        }
        let file = try SafetensorsFile(path: single)
        return Dictionary(uniqueKeysWithValues: file.tensors.keys.map { ($0, file) })
    }

    /// Our parameter name -> the checkpoint's tensor name.
    func tensorName(_ ours: String) -> String { HFArchitectures.of(config).tensorName(ours) }

    func checkWeights() throws(HFError) {
        let table = LlamaModel.parameterTable(for: config)
        var expected = Set(table.map { tensorName($0.name) })
        if config.tiedEmbedding { expected.insert(tensorName("output.weight")) }  // may be saved beside a tied embedding; not read
        for name in shards.keys.sorted() where !expected.contains(name) && !HFArchitectures.of(config).isBuffer(name) {
            throw HFError.entry(path: shards[name]!.path, key: name, reason: "unexpected tensor for a \(config.nLayers)-layer \(architecture)")
        }
        for (ours, shape) in table {
            let name = tensorName(ours)
            guard let file = shards[name], let t = file.tensors[name] else {
                throw HFError.entry(path: path, key: name, reason: "missing from the weights")
            }
            guard t.shape == shape else { throw HFError.entry(path: file.path, key: name, reason: "shape \(t.shape), expected \(shape)") }
            guard SafetensorsFile.readableTypes.contains(t.dtype) else {
                throw HFError.entry(path: file.path, key: name, reason: "dtype \(t.dtype) is not supported (F32, F16, BF16)")
            }
        }
    }

    /// A model holding the directory's weights, for batches of up to `maxTokens` tokens.
    public func load(maxTokens: Int, maxSequenceLength: Int? = nil, checkpointActivations: Bool = false) throws(HFError) -> LlamaModel {
        let model = LlamaModel(config: config, maxTokens: maxTokens, maxSequenceLength: maxSequenceLength,
                               checkpointActivations: checkpointActivations)
        try loadWeights(into: model)
        return model
    }

    /// Copies every tensor into `model` (of this directory's configuration), converted to our layout (Q and K
    /// rows permuted, GPT-NeoX's per-head Q|K|V regrouped).
    public func loadWeights(into model: LlamaModel) throws(HFError) {
        let architecture = HFArchitectures.of(config)
        for (ours, _) in model.parameterTable {
            let name = tensorName(ours)
            try shards[name]!.read(name, into: model.parameter(ours))
            architecture.convert(model.parameter(ours), parameter: ours, config, inverse: false)
        }
    }

}
