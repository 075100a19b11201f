import Base
import Experiments
import RunStore
import Probes
import Foundation
import Kernels

/// A run or command that started on valid input and then failed (exit code 1).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
}

/// Helpers the verbs share.
enum Commands {
    /// The run store a verb uses when `--db` is not given.
    static let defaultStore = "results/runs.sqlite"

    /// A run store is a file: in-memory, empty and URI paths are refused, since a run recorded there would
    /// be lost when the process ends.
    static func checkStorePath(_ path: String) throws {
        if path.isEmpty || path == ":memory:" || path.hasPrefix("file:") {
            throw UsageError(message: "--db: expected the path of a database file, found \"\(path)\" (an in-memory or URI store would lose every run when the process ends)")
        }
    }
}

extension Commands {
    /// `RunExecutor.experimentVersion` against the store at `db` opened read-only, when it exists (a missing or
    /// empty file holds no experiment).
    static func experimentVersion(_ experiment: Experiment, db: String, newVersion: Bool, flag: String? = "--new-version") throws -> Experiment {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: db))?[.size] as? Int, size > 0 else { return experiment }
        return try RunExecutor.experimentVersion(experiment, store: try RunStore(path: db, readOnly: true), newVersion: newVersion, newVersionFlag: flag)
    }
}

extension Commands {
    /// `alignscope --version`: the release, the store schema it writes, and the libraries the products run on.
    static var versionText: String {
        "alignscope \(AlignScopeVersion.release) (store schema \(RunStore.schemaVersion); products: oneDNN \(Products.oneDNNVersion) at \(Products.isaName), "
            + "\(Products.openBLASConfig))"
    }

    /// The plan line of `run` and `plan`: how many runs, how many at once, and the threads each gets (issue 40).
    static func threadsLine(_ experiment: Experiment, jobs: Int) -> String {
        let n = experiment.runs.count
        let cores = jobs > 1 ? Threads.automatic : Threads.count
        var text = "\(experiment.name): \(n) run\(n == 1 ? "" : "s"), "
        if experiment.runs.contains(where: { $0.config.threads == nil }) {
            if jobs > 1 {
                let shares = Set((0..<jobs).map { Threads.share(of: cores, jobs: jobs, worker: $0) }).sorted()
                text += "\(jobs) at once (--jobs), \(shares.map(String.init).joined(separator: " or ")) thread\(shares == [1] ? "" : "s") each: the \(cores) core\(cores == 1 ? "" : "s") this process may use, shared"
            } else {
                text += "one at a time, \(cores) thread\(cores == 1 ? "" : "s"): every core this process may use"
            }
        } else {
            text += jobs > 1 ? "\(jobs) at once (--jobs)" : "one at a time"
        }
        let set = Set(experiment.runs.compactMap(\.config.threads)).sorted()
        if !set.isEmpty { text += "; \(set.map(String.init).joined(separator: ", ")) thread\(set == [1] ? "" : "s") where the spec sets threads" }
        return text + " (results do not depend on the thread count)"
    }
}

extension PlanVerb {
    func run() throws -> Int32 {
        let experiment = try Experiment.load(path: spec)
        // what `run` checks before writing anything: files, lengths, memory (exit 2 alike)
        if !noCheck { try RunExecutor.validateInputs(of: experiment) }
        if json {
            for run in experiment.runs {
                // config: the identity (what runs.config stores); resolved: every key with its value, defaults filled in
                print("{\"name\":\(JSONValue.string(run.name).canonical),\"sha256\":\"\(run.configSHA256)\",\"config\":\(run.configJSON),\"resolved\":\(run.config.json.canonical)}")
            }
        } else {
            print("experiment " + Commands.threadsLine(experiment, jobs: 1))
            for run in experiment.runs {
                let lora = RunExecutor.loraPlanText(run.config, experiment: experiment).map { ", " + $0 } ?? ""
                print("  \(run.name)  [\(run.configSHA256.prefix(12))]  \(run.config.planSummary)\(lora)")
            }
        }
        return 0
    }
}
