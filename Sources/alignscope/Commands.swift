import Base
import Experiments
import Probes
import Foundation

/// A run or command that started on valid input and then failed (exit code 1).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
}

enum Commands {
    static func dispatch(_ verb: String, _ args: ParsedArguments) throws -> Int32 {
        switch verb {
        case "plan": return try plan(args)
        case "run": return try run(args)
        case "status": return try status(args)
        case "score": return try score(args)
        case "generate": return try generate(args)
        case "export": return try export(args)
        case "report": return try report(args)
        case "probes": return try probes(args)
        case "bench": return try bench(args)
        default: throw UsageError(message: "alignscope \(verb): not available in this build")
        }
    }

    static func plan(_ args: ParsedArguments) throws -> Int32 {
        let experiment = try Experiment.load(path: args.positional[0])
        if args.has("--json") {
            for run in experiment.runs {
                print("{\"name\":\(JSONValue.string(run.name).canonical),\"sha256\":\"\(run.configSHA256)\",\"config\":\(run.configJSON)}")
            }
        } else {
            print("experiment \(experiment.name): \(experiment.runs.count) run\(experiment.runs.count == 1 ? "" : "s")")
            for run in experiment.runs {
                let c = run.config
                print("  \(run.name)  [\(run.configSHA256.prefix(12))]  \(c.train.steps) steps, batch \(c.train.batchSize), lr \(JSONValue.format(c.train.lr)), seed \(c.seed), evals at \(c.evalSteps.map(String.init).joined(separator: ","))")
            }
        }
        return 0
    }
}
