import Experiments
import Foundation
import Reports
import RunStore

extension ExportVerb {
    func run() throws -> Int32 {
        if format == .tensorboard, let db = self.db, let out = self.out {
            guard FileManager.default.fileExists(atPath: db) else { throw UsageError(message: "\(db): no such run store") }
            let store = try RunStore(path: db, readOnly: true)
            // TensorBoardExport refuses any --out but a new or empty folder (the store's own path included)
            let files = try TensorBoardExport.write(store: store, run: runName, experiment: experiment, out: out)
            for f in files { print("\(out)/\(f.folder): \(f.scalars) scalars (run \(f.run))") }
            print("tensorboard --logdir \(out)")
            return 0
        }
        guard let db = self.db, let name = runName, let out = self.out else { throw UsageError(message: "export: --db, --run and --out are required") }
        guard FileManager.default.fileExists(atPath: db) else { throw UsageError(message: "\(db): no such run store") }
        let store = try RunStore(path: db, readOnly: true)
        let root = checkpoints.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: db).deletingLastPathComponent()
        let written = try RunExport.export(store: store, run: name, step: step, checkpointRoot: root, out: out, f16: f16,
                                                 format: format)
        print("wrote \(out) (run \(name), step \(written))")
        return 0
    }
}

extension MergeVerb {
    func run() throws -> Int32 {
        // every shard is a store before the main store is opened (or created)
        for shard in shards {
            guard FileManager.default.fileExists(atPath: shard) else { throw UsageError(message: "\(shard): no such run store") }
            try RunStore.checkShard(shard)
        }
        let existed = FileManager.default.fileExists(atPath: db)
        var refused: [String] = []
        do {  // the store is closed at the end of this block, before a store made for nothing is removed
            let store = try RunStore(path: db)
            for shard in shards {
                // a refused shard is named and the others are merged all the same (each in its own transaction)
                do {
                    let s = try store.merge(shard: shard)
                    let rows = s.rows.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
                    print("\(shard): " + (s.addedNothing ? "nothing new" : "\(s.experiments) experiments, \(s.runs) new runs, \(s.knownRuns) known runs; rows: "
                        + (rows.isEmpty ? "none" : rows.joined(separator: ", "))))
                } catch {
                    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                    refused.append(shard)
                }
            }
        }
        if !refused.isEmpty {
            // a main store this command made and nothing went into is not left behind
            if !existed, refused.count == shards.count {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) }
                throw UsageError(message: "every shard was refused (\(refused.joined(separator: ", "))); \(db) was not made")
            }
            throw UsageError(message: "\(refused.count) of \(shards.count) shards refused (\(refused.joined(separator: ", "))); the others were merged")
        }
        return 0
    }
}

extension ReportVerb {
    func run() throws -> Int32 {
        guard FileManager.default.fileExists(atPath: db) else {
            throw UsageError(message: "\(db): no such run store (run `alignscope run SPEC --db \(db)` first)")
        }
        let store = try RunStore(path: db, readOnly: true)
        let summary = try renderReport(store: store, experiment: experiment, outDir: out)
        print("report of \(summary.experiment): \(summary.files.count) files in \(out); open \(summary.indexPath)")
        return 0
    }
}
