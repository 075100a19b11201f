import Base
import Foundation
import Kernels
import Model
import Probes
import Tokenizer
import Training

extension RunExecutor {
    /// Checks the inputs of every run before anything is recorded (issues 9 and 15: bad input exits 2
    /// with nothing written to the store): the model file and its tokenizer; `train.max_length` against
    /// the model's context and the batch against the machine's memory; the training file (every
    /// example must have what the objective trains on and fit `train.max_length`); the probe file
    /// (every field a category reads must be present, every data response must fit, a derangement needs
    /// two probes). Each distinct combination is checked once.
    public func validateInputs() throws {
        try Self.validateInputs(of: experiment)
    }

    /// - Parameter generate: also make the generated categories' texts (an external program or a model, cached
    ///   beside the probe file) and check them as the data's, so that a generator that fails or writes what cannot be
    ///   scored stops the command before the store is written (`run`; `plan` checks only that the program exists).
    public static func validateInputs(of experiment: Experiment, generate: Bool = false) throws {
        var seen = Set<String>()
        for run in experiment.runs {
            let config = run.config
            var key = config
            key.train.steps = 0; key.train.lr = 0; key.seed = 0; key.eval.every = 1; key.checkpointEvery = 1
            guard seen.insert(key.json.canonical).inserted else { continue }
            try validate(config, experiment: experiment, generate: generate)
        }
    }

    /// The plan line's words for a LoRA run (`LoRASettings.planText`), from the model's configuration; nil without
    /// LoRA or when the model cannot be read (`plan --no-check`).
    public static func loraPlanText(_ config: RunConfig, experiment: Experiment) -> String? {
        guard let lora = config.train.lora, let model = try? ModelLoader.validate(config.model, experiment: experiment).config,
              let settings = lora.settings(block: model.block, runSeed: config.seed).settings else { return nil }
        return settings.planText(model)
    }

    private static func validate(_ config: RunConfig, experiment: Experiment, generate: Bool) throws {
        var config = config
        let spec = experiment.specPath
        for (path, precision) in [("train.precision", config.train.precision), ("eval.precision", config.eval.precision)]
        where precision == .bf16 && !Products.bf16Supported {
            throw SpecError.invalid(
                file: spec, path: path,
                expected: "\"fp32\" on this CPU (bf16 products need AVX512-BF16 or AMX; oneDNN runs this one at \(Products.isaName), where bf16 would only be emulated, slowly)",
                found: "\"bf16\"")
        }
        // The model file is checked as loading would check it, without dequantising it (that costs
        // about 1.3 s for SmolLM2, and each run loads the model again anyway).
        let (modelConfig, tokenizer) = try ModelLoader.validate(config.model, experiment: experiment)
        if config.model.isCheckpoints { config = WatchStage.scoring(config, context: modelConfig.contextLength) }
        let maxLength = config.train.maxLength
        if maxLength > modelConfig.contextLength {
            throw SpecError.invalid(file: spec, path: "train.max_length", expected: "at most the model's context length (\(modelConfig.contextLength) tokens)", found: "\(maxLength)")
        }
        let lora = config.train.lora?.settings(block: modelConfig.block, runSeed: config.seed)
        if let missing = lora?.missing {
            let available = LoRATarget.available(for: modelConfig.block).map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw SpecError.invalid(file: spec, path: "train.lora.targets",
                                    expected: "projections of this model's \(modelConfig.block.rawValue) blocks (\(available))",
                                    found: "\"\(missing.rawValue)\"")
        }
        let need = ModelLoader.trainingBytes(modelConfig, tokens: config.batchTokens, checkpointed: config.train.checkpointActivations,
                                             bf16: config.train.precision == .bf16 || config.eval.precision == .bf16,
                                             lora: lora?.settings)
        if need > ModelLoader.physicalMemory {
            throw SpecError.invalid(
                file: spec, path: "train.batch_size",
                expected: "a batch that fits this machine's memory (\(gib(ModelLoader.physicalMemory)) GiB; batch_size x max_length tokens need about \(gib(need)) GiB)",
                found: "\(config.train.batchSize) x \(maxLength)")
        }
        if let a = config.eval.attribution {
            // theta_t, m_{t-1} and one gradient (or sketch) per example of a step, besides training's own
            let parameters = LlamaModel.parameterTable(for: modelConfig).reduce(0) { $0 + $1.shape.reduce(1, *) }
            let extra = Double(Attribution.memoryBytes(parameters: parameters, examples: config.train.batchSize * config.train.gradAccum, sketch: a.project))
            if need + extra > ModelLoader.physicalMemory {
                throw SpecError.invalid(
                    file: spec, path: "eval.attribution",
                    expected: "attribution that fits this machine's memory (\(gib(ModelLoader.physicalMemory)) GiB; training needs about \(gib(need)) GiB and attribution \(gib(extra)) GiB more: set project, e.g. 8192, to keep each example's gradient as a sketch)",
                    found: a.project.map { "project \($0)" } ?? "exact gradients of \(config.train.batchSize * config.train.gradAccum) examples")
            }
        }
        let template = config.template
        var presetModel = false
        if case .preset = config.model { presetModel = true }
        if template.kind == .chatml && !presetModel {
            // ChatML's markers must be tokens of the vocabulary, or every prompt is scored with them spelt out
            // as text (a model without a chat template, such as Pythia's).
            for marker in ["<|im_start|>", "<|im_end|>"] where tokenizer.encode(marker).count != 1 {
                throw SpecError.invalid(
                    file: spec, path: "template",
                    expected: "\"hh\" or \"raw\" for this model: its vocabulary has no \(marker) token (no ChatML chat template, as with Pythia)",
                    found: "\"chatml\"")
            }
        }
        try Stages.stage(for: config).validate(config, experiment: experiment, tokenizer: tokenizer)
        let probesPath = experiment.resolve(config.data.probes.path)
        let probes = try loadExamples(path: probesPath)
        guard !probes.isEmpty else { throw DataError(file: probesPath, line: nil, reason: "no probes (the file is empty)") }
        if let text = probes.first(where: { $0.form == .text }) {
            throw DataError(file: probesPath, line: text.line, reason: "a language-modelling line {\"text\"} has no prompt to score a response after; probe lines need a prompt")
        }
        let sources = config.data.probes.sources.sorted { $0.key < $1.key }.map { (id: $0.key, source: $0.value) }
        let encoder = ChatEncoder(tokenizer: tokenizer, template: template)
        for (id, source) in sources {
            if case .generate(let g) = source, case .command(let argv) = g.backend {
                do {
                    _ = try resolveExecutable(argv[0], command: argv.joined(separator: " "))
                } catch {
                    throw SpecError.invalid(file: spec, path: "data.probes.categories.\(id).generate.command",
                                            expected: "a program that exists and is executable", found: "\(error)")
                }
            }
            if case .derive(.otherPrompt) = source, probes.count < 2 {
                throw DataError(file: probesPath, line: nil, reason: "category \(id) takes another prompt's response (other_prompt), which needs at least 2 probes; the file has 1")
            }
        }
        for ex in probes {
            for (id, source) in sources {
                guard let field = source.sourceField else { continue }
                let text: String
                do {
                    text = try ex.text(of: field)
                } catch {
                    let why = "\(error)".split(separator: ": ", maxSplits: 1).last.map(String.init) ?? "\(error)"
                    throw DataError(file: probesPath, line: ex.line, reason: "no text field \"\(field)\" (read by category \(id) in data.probes.categories): \(why)")
                }
                guard case .field = source else { continue }
                _ = try PairEncoder.promptText(ex.promptSource, template: template, file: probesPath, line: ex.line)
                do {
                    try ChatEncoder.checkFits(encoder.response(text, after: ex.promptSource, separated: ex.isSeparated(field)), maxLength: maxLength, what: "\(id) response")
                } catch {
                    throw DataError(file: probesPath, line: ex.line, reason: error.description)
                }
            }
        }
        let generated = sources.filter { if case .generate = $0.source { return true } else { return false } }.map(\.id)
        if generate, !generated.isEmpty {
            // the run makes the same texts (cached) when it starts; a failure here is bad input, found before the store
            let set = try ProbeEvaluator.buildProbeSet(config: config, experiment: experiment, tokenizer: tokenizer, trainPrompts: [])
            for probe in set.probes {
                for r in probe.responses where generated.contains(r.category) {
                    do {
                        try ChatEncoder.checkFits(encoder.response(r.text, after: probe.promptSource, separated: r.separated), maxLength: maxLength, what: "generated \(r.category) response")
                    } catch {
                        throw DataError(file: probesPath, line: probes[probe.idx].line, reason: error.description)
                    }
                }
            }
        }
    }

    /// A judge model must exist, and its question (if the spec gives one) hold the placeholders.
    static func validateJudge(_ judge: String, question file: String?, experiment: Experiment, key: String) throws {
        let resolved = experiment.resolve(judge)
        guard FileManager.default.fileExists(atPath: resolved) else { throw RunError.model(path: resolved, reason: "no such judge model (\(key))") }
        if let file {
            let question = try TextFile.readText(experiment.resolve(file))
            for placeholder in ["{prompt}", "{a}", "{b}"] where !question.contains(placeholder) {
                throw DataError(file: experiment.resolve(file), line: nil, reason: "the judge's question has no \(placeholder) placeholder (it needs {prompt}, {a} and {b})")
            }
        }
    }

    private static func gib(_ bytes: Double) -> String { String(format: "%.1f", bytes / Double(1 << 30)) }
}
