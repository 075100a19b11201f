import Base
import Probes
import Foundation
import GGUF
import HFModels
import Model
import RunStore
import Training

/// Writes a run's checkpointed weights as a GGUF file that llama.cpp can load, or as a Hugging Face
/// directory that transformers loads. A reward model's GGUF has its head as the extra tensor
/// `reward_head.weight` (AlignScope reads it back as a reward model; llama.cpp refuses the extra tensor).
public enum RunExport {
    public enum Format: String, Sendable, CaseIterable {
        /// `peft`: a LoRA run's adapters as PEFT saves them (`PEFTExport`); the others merge them into the weights.
        /// `tensorboard`: metrics and category curves as TensorBoard event files (`Reports.TensorBoardExport`), no weights.
        case gguf, hf, peft, tensorboard
    }

    /// - Parameters:
    ///   - run: a run id or name in the store.
    ///   - step: the checkpoint step wanted; only the latest checkpoint is kept, so any other step is an error.
    ///   - checkpointRoot: the folder `run` wrote checkpoints under (default: beside the database).
    public static func export(store: RunStore, run: String, step: Int?, checkpointRoot: URL, out: String, f16: Bool,
                              format: Format = .gguf) throws -> Int {
        // before anything is read: the store itself, the model, a checkpoint or any other file are never overwritten
        try OutputPath.check(out, flag: "--out", inputs: [store.path])
        precondition(format != .tensorboard, "RunExport: the tensorboard format is Reports.TensorBoardExport's (no weights)")
        guard let record = try (Int64(run).flatMap { try store.run(id: $0) }) ?? store.run(name: run) else {
            throw RunError.unknownRun(run)
        }
        let configJSON = try JSONValue.parseJSON5(Data(record.config.utf8), file: "runs.config of \(record.name)")
        guard let experimentRow = try store.experiment(id: record.experimentID)?.name else {
            throw RunError.unknownRun(run)
        }
        let url = RunExecutor.checkpointURL(root: checkpointRoot, experiment: experimentRow, runName: record.name)
        guard let header = try Checkpoint.readHeader(url) else {
            throw RunError.io(path: url.path, reason: "no checkpoint for run \(record.name)")
        }
        // The folder may hold another store's checkpoint of a run with this name (a second store
        // beside the first): export only the weights this store's run recorded.
        guard header.configSHA256 == record.configSHA256,
              header.storeID.isEmpty || header.storeID == (try? store.storeID()) else {
            throw RunError.io(path: url.path, reason: "this checkpoint was written for another run store or config of run \(record.name) (run it again with this store, or give --checkpoints)")
        }
        if let step, step != header.step {
            throw RunError.io(path: url.path, reason: "the checkpoint is at step \(header.step); only the latest checkpoint is kept (asked for step \(step))")
        }
        guard case .object(let modelSpec)? = configJSON.value(at: ["model"]) else { throw RunError.unknownRun(run) }
        // The spec path is relative to the spec file, which the store does not know; try it as given and from the CWD's experiments/.
        func locate(_ path: String) throws -> String {
            let candidates = [path, "experiments/" + path, (path as NSString).lastPathComponent, "models/" + (path as NSString).lastPathComponent]
            guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw RunError.model(path: path, reason: "base model not found (looked in \(candidates.joined(separator: ", ")))")
            }
            return found
        }
        // A reward model's checkpoint holds its head after the language model's weights.
        let rewardModel = configJSON.value(at: ["objective", "kind"]) == .string("reward")
        func withHead(_ c: LlamaConfig) -> LlamaConfig {
            var c = c
            c.rewardHead = rewardModel
            return c
        }
        if format == .peft {
            return try exportAdapters(record: record, configJSON: configJSON, modelSpec: modelSpec, checkpoint: url, header: header,
                                      locate: locate, out: out)
        }
        if case .string(let dir)? = modelSpec["hf"] {
            if rewardModel {
                throw RunError.model(path: dir, reason: "run \(record.name) is a reward model started from a Hugging Face directory, which neither format holds yet: a Hugging Face directory has no place for its head, and a GGUF needs a GGUF base model's tokenizer")
            }
            guard format == .hf else {
                throw RunError.model(path: dir, reason: "run \(record.name) starts from a Hugging Face directory; export it with --format hf")
            }
            let source = try HFModelDirectory(path: try locate(dir))
            let model = LlamaModel(config: withHead(source.config), maxTokens: 1)
            _ = try Checkpoint.read(url, into: [model.parameters])
            try HFExport.write(model: model, files: .from(directory: source.path), to: out)
            return header.step
        }
        guard case .string(let gguf)? = modelSpec["gguf"] else {
            throw RunError.model(path: url.path, reason: "run \(record.name) uses a preset model; export needs a run from a GGUF file or a Hugging Face directory (its tokenizer is copied)")
        }
        let file = try GGUFFile(path: try locate(gguf))
        let model = LlamaModel(config: withHead(try file.llamaConfig()), maxTokens: 1)
        _ = try Checkpoint.read(url, into: [model.parameters])
        switch format {
        case .gguf: try exportGGUF(model: model, tokenizerFrom: file, path: out, type: f16 ? .f16 : .f32)
        case .hf: try HFExport.write(model: model, files: GGUFToHF.files(from: file), to: out)
        case .peft, .tensorboard: preconditionFailure("\(format.rawValue) is handled above")
        }
        return header.step
    }

    /// `--format peft`: the adapters of a LoRA run (its checkpoint's first state tensor) written for the base the run
    /// started from; `base_model_name_or_path` is that base's path: a Hugging Face directory, or a GGUF file (PEFT needs
    /// a Hugging Face model: load the GGUF's weights into one, e.g. transformers' `gguf_file`, and apply the adapter).
    static func exportAdapters(record: RunRecord, configJSON: JSONValue, modelSpec: [String: JSONValue], checkpoint url: URL,
                               header: Checkpoint.Header, locate: (String) throws -> String, out: String) throws -> Int {
        guard let trainTree = configJSON.value(at: ["train"]),
              let train = try? JSONDecoder().decode(TrainSettings.self, from: Data(trainTree.canonical.utf8)), let lora = train.lora else {
            throw RunError.io(path: url.path, reason: "run \(record.name) trained every weight (no train.lora): export it with --format gguf or hf")
        }
        let base: String, config: LlamaConfig
        if case .string(let dir)? = modelSpec["hf"] {
            base = try locate(dir)
            config = try HFModelDirectory(path: base).config
        } else if case .string(let gguf)? = modelSpec["gguf"] {
            base = try locate(gguf)
            config = try GGUFFile(path: base).llamaConfig()
        } else {
            throw RunError.model(path: url.path, reason: "run \(record.name) uses a preset model; a PEFT adapter needs a base model file")
        }
        let seed: Int
        if case .number(let s)? = configJSON.value(at: ["seed"]) { seed = Int(s) } else { seed = 1 }
        guard let settings = lora.settings(block: config.block, runSeed: seed).settings else {
            throw RunError.model(path: base, reason: "the run's train.lora.targets are not projections of this model")
        }
        let adapters = LoRAAdapters(settings: settings, config: config)
        _ = try Checkpoint.read(url, into: [adapters.parameters], skippingWeights: true)
        try PEFTExport.write(adapters, config: config, baseModel: (base as NSString).standardizingPath, to: out)
        return header.step
    }
}
