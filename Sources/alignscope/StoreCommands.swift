import Experiments
import Foundation
import Reports
import RunStore

extension Commands {
    static func export(_ args: ParsedArguments) throws -> Int32 {
        guard let db = args.string("--db") else { throw UsageError(message: "--db: missing (the run store)") }
        guard let run = args.string("--run") else { throw UsageError(message: "--run: missing (a run id or name; see alignscope status)") }
        guard let out = args.string("--out") else { throw UsageError(message: "--out: missing (the GGUF file to write)") }
        guard FileManager.default.fileExists(atPath: db) else { throw UsageError(message: "\(db): no such run store") }
        let step: Int? = args.string("--step") == nil ? nil : try args.int("--step", default: 0)
        let store = try RunStore(path: db, readOnly: true)
        let root = args.string("--checkpoints").map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: db).deletingLastPathComponent()
        let written = try RunExport.export(store: store, run: run, step: step, checkpointRoot: root, out: out, f16: args.has("--f16"))
        print("wrote \(out) (run \(run), step \(written))")
        return 0
    }
}

extension Commands {
    static func report(_ args: ParsedArguments) throws -> Int32 {
        let db = try defaultDB(args)
        guard FileManager.default.fileExists(atPath: db) else {
            throw UsageError(message: "\(db): no such run store (run `alignscope run SPEC --db \(db)` first)")
        }
        let store = try RunStore(path: db, readOnly: true)
        let out = args.string("--out") ?? "results/report"
        let summary = try renderReport(store: store, experiment: args.string("--experiment"), outDir: out)
        print("report of \(summary.experiment): \(summary.files.count) files in \(out); open \(summary.indexPath)")
        return 0
    }
}
