import Base
import Foundation
import Probes
import RunStore

/// The content hashes of the files a run reads (`run_inputs`): the model file, the training data and
/// the probe set. They are recorded when a run starts from step 0; a run is resumed only while they
/// still match, so that one run's rows never mix two datasets or two models.
enum InputFingerprints {
    nonisolated(unsafe) private static var cache: [String: (stamp: String, sha256: String)] = [:]
    private static let lock = NSLock()

    /// input name ("model", "train", "probes") -> path and sha256, for the files of `config`; `trainPath` is
    /// the resolved training file (`RunExecutor.trainPath`: a label run's pairs for `data.train.from`).
    static func of(_ config: RunConfig, experiment: Experiment, trainPath: String) throws -> [String: RunInput] {
        var out: [String: RunInput] = [:]
        /// A model file's or directory's fingerprint (nil for a preset).
        func fingerprint(_ source: RunConfig.ModelSource) throws -> RunInput? {
            switch source {
            case .gguf(let path):
                let resolved = experiment.resolve(path)
                return RunInput(path: resolved, sha256: try sha256(ofFile: resolved))
            case .hf(let path):
                let resolved = experiment.resolve(path)
                return RunInput(path: resolved, sha256: try sha256(ofDirectory: resolved))
            case .preset:
                return nil
            case .checkpoints(_, let base):
                // each checkpoint is fingerprinted when evaluated (WatchStage); the base here, under its own name
                if let base { out["base"] = try fingerprint(ModelLoader.source(path: base, experiment: experiment)) }
                return nil
            }
        }
        out["model"] = try fingerprint(config.model)
        for (name, resolved) in [("train", trainPath), ("probes", experiment.resolve(config.data.probes.path))] where name != "train" || !config.data.train.isAbsent {
            out[name] = RunInput(path: resolved, sha256: try sha256(ofFile: resolved))
        }
        return out
    }

    /// The first input whose file no longer matches its recorded hash, or nil when all match (or
    /// nothing was recorded).
    static func firstChange(recorded: [String: RunInput], current: [String: RunInput]) -> (input: String, path: String)? {
        for name in recorded.keys.sorted() where current[name]?.sha256 != recorded[name]!.sha256 {
            return (name, current[name]?.path ?? recorded[name]!.path)
        }
        return nil
    }

    /// A model directory's hash: sha256 of the lines "name sha256" of its regular files (JSON and
    /// safetensors; sorted by name), so that any changed, added or removed file changes it.
    static func sha256(ofDirectory path: String) throws -> String {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
                .filter { $0.hasSuffix(".json") || $0.hasSuffix(".safetensors") }.sorted()
        } catch {
            throw RunError.io(path: path, reason: "cannot list the directory")
        }
        var lines = ""
        for name in names { lines += "\(name) \(try sha256(ofFile: path + "/" + name))\n" }
        return SHA256.hex(Array(lines.utf8))
    }

    /// sha256 of a file's content; cached within the process by (device, inode, size, mtime).
    static func sha256(ofFile path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { throw RunError.io(path: path, reason: String(cString: strerror(errno))) }
        let stamp = "\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        if let hit = lock.withLock({ cache[path] }), hit.stamp == stamp { return hit.sha256 }
        guard let f = fopen(path, "rb") else { throw RunError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { fclose(f) }
        var digest = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 22)
        while true {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { buffer.withUnsafeBytes { digest.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
            if n < buffer.count {
                if ferror(f) != 0 { throw RunError.io(path: path, reason: "read error") }
                break
            }
        }
        let hex = SHA256.hexString(digest.finalize())
        lock.withLock { cache[path] = (stamp, hex) }
        return hex
    }
}
