import Base
import Foundation

/// A run's training state after step `step`: weights, AdamW moments and step count. The data
/// cursor is the step itself (see `DataOrder`) and no other randomness is used during training.
/// Layout (little-endian): "ASCK", u32 version, i64 step, i64 adam t, i64 parameter count,
/// 64 bytes config sha256 (hex), then (version 2) 32 bytes store id (hex, `RunStore.storeID`),
/// then the weights (`parameter count` f32) and the training state as f32 tensors whose sizes the reader knows:
/// AdamW's m and v (one float per weight), or with LoRA the adapters and their m and v (the weights then are the
/// merged ones, W + (alpha / rank) B A, so that `export` and `init_from` read any run alike).
/// Version 1 files (no store id) are still read; they resume nowhere.
/// Written through `AtomicFile` (a temporary beside it, flushed and renamed), so a crash leaves the
/// previous checkpoint; `removeLeftovers` deletes the temporary files a kill mid-write leaves.
public enum Checkpoint {
    public static let magic: [UInt8] = Array("ASCK".utf8)
    public static let version: UInt32 = 2
    public static let fileName = "checkpoint.bin"

    public struct Header: Equatable {
        public var step: Int
        public var adamT: Int
        public var parameterCount: Int
        public var configSHA256: String
        /// The run store the checkpoint was written for ("" in version 1 files).
        public var storeID: String = ""
        /// Bytes before the tensors (96 in version 1, 128 in version 2).
        public var headerBytes: Int = 128

        public init(step: Int, adamT: Int, parameterCount: Int, configSHA256: String, storeID: String = "", headerBytes: Int = 128) {
            self.step = step
            self.adamT = adamT
            self.parameterCount = parameterCount
            self.configSHA256 = configSHA256
            self.storeID = storeID
            self.headerBytes = headerBytes
        }
    }

    static func headerSize(version: UInt32) -> Int { version == 1 ? 96 : 128 }

    /// Deletes the temporaries a process killed while writing left in `directory` (`AtomicFile`). Only the
    /// process holding the run's lease writes there, so every such file is dead.
    public static func removeLeftovers(in directory: URL) {
        AtomicFile.removeLeftovers(in: directory.path)
    }

    public static func write(to url: URL, header: Header, tensors: [UnsafeBufferPointer<Float>]) throws {
        var head = ByteWriter()
        head.append(contentsOf: magic)
        head.append(version)
        for v in [Int64(header.step), Int64(header.adamT), Int64(header.parameterCount)] { head.append(v) }
        head.appendFixed(header.configSHA256, width: 64)
        head.appendFixed(header.storeID, width: 32)
        do {
            try AtomicFile.write(to: url.path, createFolders: true) { out in
                try out.write(head.bytes)
                precondition(tensors.first?.count == header.parameterCount, "Checkpoint.write: the first tensor is the weights")
                for t in tensors { try out.write(UnsafeRawBufferPointer(t)) }
            }
        } catch let e as AtomicFile.WriteError {
            throw CheckpointError(path: url.path, reason: "cannot write checkpoint: \(e.reason)")
        }
    }

    public static func readHeader(_ url: URL) throws -> Header? {
        guard let f = fopen(url.path, "rb") else { return nil }
        defer { fclose(f) }
        var head = [UInt8](repeating: 0, count: headerSize(version: version))
        let got = fread(&head, 1, head.count, f)
        guard got >= headerSize(version: 1), Array(head[0..<4]) == magic else {
            throw CheckpointError(path: url.path, reason: "not an AlignScope checkpoint (bad magic or truncated header)")
        }
        let fields = head.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            _ = r.bytes(4)  // magic
            return (r.read(UInt32.self)!, r.read(Int64.self)!, r.read(Int64.self)!, r.read(Int64.self)!)
        }
        let fileVersion = fields.0
        guard fileVersion == 1 || fileVersion == version else {
            throw CheckpointError(path: url.path, reason: "checkpoint version \(fileVersion), expected 1 or \(version)")
        }
        guard got >= headerSize(version: fileVersion) else {
            throw CheckpointError(path: url.path, reason: "not an AlignScope checkpoint (truncated header)")
        }
        let sha = String(decoding: head[32..<96].prefix { $0 != 0 }, as: UTF8.self)
        let store = fileVersion == 1 ? "" : String(decoding: head[96..<128].prefix { $0 != 0 }, as: UTF8.self)
        return Header(step: Int(fields.1), adamT: Int(fields.2), parameterCount: Int(fields.3), configSHA256: sha, storeID: store,
                      headerBytes: headerSize(version: fileVersion))
    }

    /// Reads the tensors after the header into the given buffers, in order: the weights (`parameterCount` floats), then the state tensors at their own sizes. With `skippingWeights`, the first buffer
    /// is the first state tensor (a LoRA run's resume keeps its base weights).
    public static func read(_ url: URL, into tensors: [UnsafeMutableBufferPointer<Float>], skippingWeights: Bool = false) throws -> Header {
        guard let header = try readHeader(url) else {
            throw CheckpointError(path: url.path, reason: "no checkpoint")
        }
        guard let f = fopen(url.path, "rb") else { throw CheckpointError(path: url.path, reason: String(cString: strerror(errno))) }
        defer { fclose(f) }
        fseek(f, header.headerBytes + (skippingWeights ? header.parameterCount * MemoryLayout<Float>.size : 0), SEEK_SET)
        for (i, t) in tensors.enumerated() {
            if i == 0 && !skippingWeights && t.count != header.parameterCount {
                throw CheckpointError(path: url.path, reason: "checkpoint holds \(header.parameterCount) parameters, the model has \(t.count)")
            }
            guard fread(t.baseAddress, MemoryLayout<Float>.size, t.count, f) == t.count else {
                throw CheckpointError(path: url.path, reason: "checkpoint is truncated")
            }
        }
        return header
    }
}

/// A checkpoint file that cannot be written or read: its path and why.
public struct CheckpointError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}
