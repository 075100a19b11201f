import Base
import Foundation

/// A training output folder as transformers' `Trainer` (and TRL's trainers, which are Trainers) writes it: one
/// `checkpoint-N/` folder per save (`config.json`, `model.safetensors` or shards with `model.safetensors.index.json`,
/// `trainer_state.json`, the tokenizer's files or not), and optionally the final model in the folder itself. Read only:
/// nothing here writes into it, and no path found in its files is followed (`trainer_state.json` names other
/// checkpoints, e.g. `best_model_checkpoint`: ignored). A `checkpoint-N` that is a symbolic link leading outside the
/// folder is passed over with a note.
struct TrainerOutput {
    /// The folder, absolute.
    let folder: String

    /// One saved model of the run.
    struct Checkpoint: Equatable {
        /// The optimizer step it was saved at: its `trainer_state.json`'s `global_step`, else the N of `checkpoint-N`.
        var step: Int
        /// Its folder (the output folder itself for the final model).
        var path: String
        /// "checkpoint-N", or "the final model" (the output folder itself).
        var name: String
        /// The size and modification time of each file, to tell a finished checkpoint from one being written.
        var signature: [String: [Int]]
        /// A PEFT adapter (`adapter_config.json`, `adapter_model.safetensors`) to apply onto the base, not a whole model.
        var isAdapter = false
    }

    /// What a look at the folder found: the checkpoints that are complete now (by step), the names of those still
    /// being written (no `trainer_state.json` yet, or weights missing), and notes on what was passed over.
    struct Scan {
        var complete: [Checkpoint] = []
        var incomplete: [String] = []
        var notes: [String] = []
    }

    /// Looks at the folder once.
    func scan() throws -> Scan {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RunError.io(path: folder, reason: "no such directory (model.checkpoints: a training output folder with checkpoint-N/ folders)")
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw RunError.io(path: folder, reason: "cannot list the folder: \(error.localizedDescription)")
        }
        var out = Scan()
        let root = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
        for name in names.sorted() {
            guard name.hasPrefix("checkpoint-"), let n = Int(name.dropFirst("checkpoint-".count)), n >= 0 else { continue }
            let path = folder + "/" + name
            let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            guard real.hasPrefix(root + "/") else {
                out.notes.append("\(name) leads outside \(folder) (a symbolic link to \(real)): not read")
                continue
            }
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            if let checkpoint = try read(path, name: name, numbered: n) {
                out.complete.append(checkpoint)
            } else {
                out.incomplete.append(name)
            }
        }
        // the final model, saved into the folder itself; its step is its trainer_state.json's
        if Self.hasWeights(folder) && FileManager.default.fileExists(atPath: folder + "/config.json") {
            if !FileManager.default.fileExists(atPath: folder + "/trainer_state.json") {
                out.notes.append("the final model in \(folder) has no trainer_state.json, so its step is unknown: not evaluated")
            } else if let final = try read(folder, name: "the final model", numbered: nil),
                      !out.complete.contains(where: { $0.step == final.step }) {
                out.complete.append(final)
            }
        }
        out.complete.sort { $0.step < $1.step }
        for (a, b) in zip(out.complete, out.complete.dropFirst()) where a.step == b.step {
            throw RunError.io(path: folder, reason: "\(a.name) and \(b.name) are both at step \(a.step) (trainer_state.json's global_step)")
        }
        return out
    }

    /// A checkpoint folder, or nil while it is incomplete (no `trainer_state.json`, which the Trainer writes after the
    /// weights, or weights missing).
    private func read(_ path: String, name: String, numbered n: Int?) throws -> Checkpoint? {
        let fm = FileManager.default
        let adapter = fm.fileExists(atPath: path + "/adapter_config.json") && !Self.hasWeights(path)
        let state = path + "/trainer_state.json"
        guard fm.fileExists(atPath: state) else { return nil }
        if adapter {
            guard fm.fileExists(atPath: path + "/adapter_model.safetensors") else { return nil }
        } else {
            guard Self.hasWeights(path), fm.fileExists(atPath: path + "/config.json") else { return nil }
        }
        let step = try Self.globalStep(state) ?? n
        guard let step else { return nil }
        return Checkpoint(step: step, path: path, name: name, signature: try Self.signature(path), isAdapter: adapter)
    }

    /// The base model an adapter checkpoint names (`base_model_name_or_path`), when that is a local directory: an
    /// absolute path, or one relative to the output folder. Nil when it names none or something else (a hub name).
    func adapterBase(_ checkpoint: Checkpoint) throws -> String? {
        let file = checkpoint.path + "/adapter_config.json"
        guard case .object(let o) = try Self.state(file), case .string(let name)? = o["base_model_name_or_path"], !name.isEmpty else { return nil }
        let path = name.hasPrefix("/") ? name : URL(fileURLWithPath: folder).appendingPathComponent(name).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue ? path : nil
    }

    /// Whether a folder holds a model's weights: `model.safetensors`, or an index and every shard it lists.
    static func hasWeights(_ path: String) -> Bool {
        let fm = FileManager.default
        if fm.fileExists(atPath: path + "/model.safetensors") { return true }
        let index = path + "/model.safetensors.index.json"
        guard let data = fm.contents(atPath: index), case .object(let root)? = try? JSONValue.parseJSON5(data, file: index),
              case .object(let map)? = root["weight_map"] else { return false }
        let shards = Set(map.values.compactMap { v -> String? in if case .string(let s) = v { return s } else { return nil } })
        return !shards.isEmpty && shards.allSatisfy { !$0.contains("/") && fm.fileExists(atPath: path + "/" + $0) }
    }

    /// `trainer_state.json`'s `global_step`, if it has one.
    static func globalStep(_ file: String) throws -> Int? {
        guard case .object(let root) = try state(file), case .number(let x)? = root["global_step"] else { return nil }
        guard let step = Int(exactly: x), step >= 0 else {
            throw RunError.io(path: file, reason: "global_step \(x) is not a step number")
        }
        return step
    }

    /// A `trainer_state.json` parsed.
    static func state(_ file: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: file) else { throw RunError.io(path: file, reason: "cannot read") }
        do {
            // JSON5 reads the NaN and Infinity Python's json module writes (a NaN grad_norm)
            return try JSONValue.parseJSON5(data, file: file)
        } catch {
            throw RunError.io(path: file, reason: "not JSON: \(error)")
        }
    }

    /// The trainer's own log (`log_history`): per logged step, every numeric entry under the name it has there
    /// (`loss`, `learning_rate`, `grad_norm`, TRL's `rewards/chosen`, `eval_loss`, `epoch`, ...). Entries of one step
    /// logged twice (a training and an evaluation log) are merged; a name logged twice at one step keeps its last value,
    /// as the file lists them. Non-numeric entries are counted in `skipped` (the caller names them).
    static func logHistory(_ file: String) throws -> (steps: [Int: [String: Double]], skipped: Set<String>) {
        guard case .object(let root) = try state(file) else { throw RunError.io(path: file, reason: "expected a JSON object") }
        guard let history = root["log_history"] else { return ([:], []) }
        guard case .array(let entries) = history else { throw RunError.io(path: file, reason: "log_history: expected a list") }
        var out: [Int: [String: Double]] = [:], skipped = Set<String>()
        for (i, entry) in entries.enumerated() {
            guard case .object(let o) = entry, case .number(let s)? = o["step"], let step = Int(exactly: s), step >= 0 else {
                throw RunError.io(path: file, reason: "log_history[\(i)]: expected an object with an integer step")
            }
            for (name, value) in o where name != "step" {
                if case .number(let x) = value { out[step, default: [:]][name] = x } else { skipped.insert(name) }
            }
        }
        return (out, skipped)
    }

    /// Each file's size and modification time (nanoseconds), by name.
    static func signature(_ path: String) throws -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            var st = stat()
            guard stat(path + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            out[name] = [Int(st.st_size), Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec)]
        }
        return out
    }
}
