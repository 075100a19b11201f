import Base
import Foundation
import RunStore

/// `alignscope export --format tensorboard` (issue 41): each run's training metrics and each category's mean
/// log-probability per split at every evaluation, as TensorBoard scalars, in event files written by hand: TFRecord
/// framing with its masked CRC-32C, and the `Event` / `Summary` messages in protobuf's wire format. W&B's
/// `sync_tensorboard` reads the same files.
///
/// One folder per run (the run's name with "/" written "_"), holding one file
/// `events.out.tfevents.<created, epoch seconds>.alignscope`. Tags: `train/<metric>` with TRL's names (`lr` is TRL's
/// `learning_rate`; every other metric under its own name, e.g. `train/loss`, `train/rewards/chosen`), at the metric's
/// step; `eval/<split>/<category>` the mean summed log-probability and `eval_per_token/<split>/<category>` the mean
/// per-token one (`category_curves`), at the evaluation's step. The events' wall times are the run's start plus the
/// `elapsed` metric where recorded (an evaluation: the elapsed of its step), so the files depend only on the store.
public enum TensorBoardExport {
    public struct RunFile: Sendable {
        public var run: String
        public var folder: String
        public var scalars: Int
    }

    public enum Failure: Error, CustomStringConvertible {
        case noRuns(String)
        case outputExists(String)
        case io(path: String, reason: String)

        public var description: String {
            switch self {
            case .noRuns(let what): "no runs to export: \(what)"
            case .outputExists(let path): "\(path): exists and is not empty; give a new --out (AlignScope never writes over files it did not create)"
            case let .io(path, reason): "\(path): \(reason)"
            }
        }
    }

    /// Writes the event files of the runs chosen (`run`: an id or name; `experiment`: its runs; neither: every run) into
    /// the new (or empty) folder `out`, built beside it and moved in whole.
    public static func write(store: RunStore, run: String?, experiment: String?, out: String) throws -> [RunFile] {
        let outURL = URL(fileURLWithPath: out).standardizedFileURL
        // anything there but an empty folder (a file, the store itself, a folder with files) is refused
        if FileManager.default.fileExists(atPath: outURL.path), (try? FileManager.default.contentsOfDirectory(atPath: outURL.path))?.isEmpty != true {
            throw Failure.outputExists(out)
        }
        var sql = """
            SELECT r.id, r.name, e.name, r.created_at, r.started_at FROM runs AS r JOIN experiments AS e ON e.id = r.experiment_id
            """
        var params: [SQLiteValue] = []
        if let run {
            sql += " WHERE " + (Int64(run) != nil ? "r.id = ?" : "r.name = ?")
            params.append(Int64(run).map { .integer($0) } ?? .text(run))
        } else if let experiment {
            sql += " WHERE e.name = ?"
            params.append(.text(experiment))
        }
        let runs = try store.query(sql + " ORDER BY r.id", params)
        guard !runs.isEmpty else {
            throw Failure.noRuns(run.map { "no run \"\($0)\" in \(store.path)" } ?? experiment.map { "no experiment \"\($0)\" in \(store.path)" } ?? "\(store.path) holds none")
        }
        let parent = outURL.deletingLastPathComponent()
        let staging = parent.appendingPathComponent(".\(outURL.lastPathComponent).partial-\(getpid())")
        try? FileManager.default.removeItem(at: staging)
        do {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        } catch {
            throw Failure.io(path: parent.path, reason: "cannot create the output folder (\(error.localizedDescription))")
        }
        var written: [RunFile] = []
        var folders = Set<String>()
        do {
            for row in runs {
                let id = row[0].int64!, name = row[1].string!
                var folder = name.replacingOccurrences(of: "/", with: "_")
                if folders.contains(folder) { folder += "-\(id)" }  // an edited spec's older run of the same name
                folders.insert(folder)
                let start = (row[4].string ?? row[3].string).flatMap(Self.epochSeconds) ?? 0
                let created = row[3].string.flatMap(Self.epochSeconds) ?? start
                let bytes = try events(store: store, runID: id, start: start)
                let dir = staging.appendingPathComponent(folder)
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                let file = dir.appendingPathComponent("events.out.tfevents.\(Int(created)).alignscope")
                try Data(bytes.data).write(to: file)
                written.append(RunFile(run: name, folder: folder, scalars: bytes.scalars))
            }
            if FileManager.default.fileExists(atPath: outURL.path) { try FileManager.default.removeItem(at: outURL) }  // empty, checked above
            try FileManager.default.moveItem(at: staging, to: outURL)
        } catch {
            try? FileManager.default.removeItem(at: staging)
            if let failure = error as? Failure { throw failure }
            throw Failure.io(path: out, reason: "\(error)")
        }
        return written
    }

    /// One run's event file: the file-version event, then its scalars by step.
    static func events(store: RunStore, runID: Int64, start: Double) throws -> (data: [UInt8], scalars: Int) {
        var elapsed: [Int64: Double] = [:]
        for row in try store.query("SELECT step, value FROM train_metrics WHERE run_id = ? AND name = 'elapsed'", [.integer(runID)]) {
            if let s = row[0].int64, let v = row[1].double { elapsed[s] = v }
        }
        var scalars: [(step: Int64, tag: String, value: Float)] = []
        for row in try store.query("SELECT step, name, value FROM train_metrics WHERE run_id = ? AND value IS NOT NULL ORDER BY step, name", [.integer(runID)]) {
            guard let step = row[0].int64, let name = row[1].string, let value = row[2].double else { continue }
            scalars.append((step, "train/" + (name == "lr" ? "learning_rate" : name), Float(value)))
        }
        for row in try store.query("""
            SELECT step, split, category, mean_logprob, mean_token_logprob FROM category_curves WHERE run_id = ? ORDER BY step, split, category
            """, [.integer(runID)]) {
            guard let step = row[0].int64, let split = row[1].string, let category = row[2].string else { continue }
            if let mean = row[3].double { scalars.append((step, "eval/\(split)/\(category)", Float(mean))) }
            if let perToken = row[4].double { scalars.append((step, "eval_per_token/\(split)/\(category)", Float(perToken))) }
        }
        scalars.sort { ($0.step, $0.tag) < ($1.step, $1.tag) }
        var out = TFRecord.frame(EventProto.fileVersion(wallTime: start))
        for s in scalars {
            let wall = start + (elapsed[s.step] ?? 0)
            out += TFRecord.frame(EventProto.scalar(tag: s.tag, value: s.value, step: s.step, wallTime: wall))
        }
        return (out, scalars.count)
    }

    /// "2026-12-07T09:33:12.123Z" -> seconds since 1970.
    static func epochSeconds(_ text: String) -> Double? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text)?.timeIntervalSince1970
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord frames use it.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked form: rotated right by 15 bits, plus 0xa282ead8.
    static func masked(_ bytes: [UInt8]) -> UInt32 {
        let c = checksum(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}

/// TFRecord framing: length (uint64, little-endian), masked CRC-32C of those 8 bytes, the data, masked CRC-32C of the data.
enum TFRecord {
    static func frame(_ data: [UInt8]) -> [UInt8] {
        let length = littleEndian(UInt64(data.count))
        return length + littleEndian(CRC32C.masked(length)) + data + littleEndian(CRC32C.masked(data))
    }

    static func littleEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: v.littleEndian) { Array($0) }
    }
}

/// The two `Event` messages the export writes (tensorflow/core/util/event.proto and summary.proto), in protobuf's wire
/// format: `Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }`,
/// `Summary { repeated Value value = 1; }`, `Value { string tag = 1; float simple_value = 2; }`.
enum EventProto {
    /// The first event of a file: file_version "brain.Event:2".
    static func fileVersion(wallTime: Double) -> [UInt8] {
        double(1, wallTime) + bytes(3, Array("brain.Event:2".utf8))
    }

    static func scalar(tag: String, value: Float, step: Int64, wallTime: Double) -> [UInt8] {
        let v = bytes(1, Array(tag.utf8)) + key(2, wire: 5) + TFRecord.littleEndian(value.bitPattern)
        let summary = bytes(1, v)
        return double(1, wallTime) + key(2, wire: 0) + varint(UInt64(bitPattern: step)) + bytes(5, summary)
    }

    static func key(_ field: UInt64, wire: UInt64) -> [UInt8] { varint(field << 3 | wire) }

    static func varint(_ value: UInt64) -> [UInt8] {
        var v = value, out: [UInt8] = []
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
        return out
    }

    static func double(_ field: UInt64, _ value: Double) -> [UInt8] { key(field, wire: 1) + TFRecord.littleEndian(value.bitPattern) }

    static func bytes(_ field: UInt64, _ data: [UInt8]) -> [UInt8] { key(field, wire: 2) + varint(UInt64(data.count)) + data }
}
