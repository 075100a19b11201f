import Foundation
import Probes
import Tokenizer

extension RunExecutor {
    /// Checks the inputs of every run before anything is recorded (issue 9: bad input exits 2 with
    /// nothing half-written to the store): the model file and its tokenizer, the training file (every
    /// pair must fit `train.max_length`) and the probe file (every field a data category maps must be
    /// present and every response must fit). Each distinct combination is checked once.
    public func validateInputs() throws {
        var seen = Set<String>()
        for run in experiment.runs {
            let config = run.config
            let key = [String(describing: config.model), config.trainPath, config.probesPath, config.template,
                       String(config.train.maxLength), String(config.trainLimit), config.objective.target]
                .joined(separator: "\u{1}") + config.categories.mapValues(\.canonical).sorted { $0.key < $1.key }.description
            guard seen.insert(key).inserted else { continue }
            // The model file is checked as loading would check it, without dequantising it (that costs
            // about 1.3 s for SmolLM2, and each run loads the model again anyway).
            let tokenizer = try ModelLoader.tokenizer(config.model, experiment: experiment)
            let template = ChatTemplate(rawValue: config.template)!
            let trainPath = experiment.resolve(config.trainPath)
            var examples = try loadExamples(path: trainPath)
            guard !examples.isEmpty else { throw RunError.data(file: trainPath, line: nil, reason: "no examples (the file is empty)") }
            if config.trainLimit > 0 { examples = Array(examples.prefix(config.trainLimit)) }
            for ex in examples {
                _ = try PairEncoder.encode(prompt: ex.prompt, response: config.objective.target == "chosen" ? ex.chosen : (ex.rejected ?? ""),
                                           tokenizer: tokenizer, template: template, maxLength: config.train.maxLength,
                                           file: trainPath, line: ex.line)
            }
            let probesPath = experiment.resolve(config.probesPath)
            let probes = try loadExamples(path: probesPath)
            guard !probes.isEmpty else { throw RunError.data(file: probesPath, line: nil, reason: "no probes (the file is empty)") }
            let fields = config.categories.compactMap { id, source -> (String, String)? in
                if case .string(let field) = source { return (id, field) }
                return nil
            }
            for ex in probes {
                for (id, field) in fields.sorted(by: { $0.0 < $1.0 }) {
                    guard let text = ex.fields[field] else {
                        throw RunError.data(file: probesPath, line: ex.line, reason: "no text field \"\(field)\" (mapped to category \(id) in data.probes.categories)")
                    }
                    let ids = tokenizer.encode(template.response(text))
                    guard ids.count < config.train.maxLength else {
                        throw RunError.data(file: probesPath, line: ex.line, reason: "\(id) response is \(ids.count) tokens, train.max_length is \(config.train.maxLength): it cannot fit with its prompt")
                    }
                }
            }
        }
    }
}
