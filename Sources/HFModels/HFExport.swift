import Base
import Foundation
import Model

/// Writing a model as a Hugging Face directory that `transformers.AutoModelForCausalLM.from_pretrained`
/// loads: `model.safetensors` (F32, transformers' tensor names and layouts: Q/K rows back in half-split RoPE order,
/// GPT-NeoX's Q|K|V per head),
/// `config.json`, `generation_config.json` and the tokenizer files. The directory is built beside `out`
/// under a temporary name and renamed into place when complete, so a crash leaves no half directory.
public enum HFExport {
    /// The tokenizer and config files of the export.
    public enum Files {
        /// Copied from the Hugging Face directory the run started from (its `config.json` with `dtype`
        /// set to float32, its `generation_config.json` and tokenizer files as they are).
        case from(directory: String)
        /// Written from these texts (a GGUF-based run: the tokenizer rebuilt from the GGUF's metadata).
        case generated(tokenizerJSON: String, tokenizerConfigJSON: String, eos: Int32, bos: Int32?)
    }

    static let copiedFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]

    public static func write(model: LlamaModel, files: Files, to out: String) throws {
        if model.config.rewardHead {
            throw HFError.file(path: out, reason: "a reward model cannot be written as a Hugging Face directory yet; export it with --format gguf (its head is the extra tensor reward_head.weight)")
        }
        try writeDirectory(out) { temp in
            try writeSafetensors(model, to: temp + "/model.safetensors")
            switch files {
            case let .from(directory):
                for name in copiedFiles where FileManager.default.fileExists(atPath: directory + "/" + name) {
                    try AtomicFile.write([UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))), to: temp + "/" + name)
                }
                var config = try JSONFile(path: directory + "/config.json").root
                config.removeValue(forKey: "torch_dtype")
                config["dtype"] = .string("float32")
                try AtomicFile.write(JSONValue.object(config).canonical + "\n", to: temp + "/config.json")
            case let .generated(tokenizerJSON, tokenizerConfigJSON, eos, bos):
                try AtomicFile.write(tokenizerJSON, to: temp + "/tokenizer.json")
                try AtomicFile.write(tokenizerConfigJSON, to: temp + "/tokenizer_config.json")
                try AtomicFile.write(configJSON(model.config, eos: eos, bos: bos), to: temp + "/config.json")
                var generation: [String: JSONValue] = ["eos_token_id": .number(Double(eos))]
                if let bos { generation["bos_token_id"] = .number(Double(bos)) }
                try AtomicFile.write(JSONValue.object(generation).canonical + "\n", to: temp + "/generation_config.json")
            }
        }
    }

    /// Makes the new directory `out` (`--out`; never over an existing path) by filling a temporary one beside it with
    /// `fill` and renaming it into place, so a crash leaves no half directory (the temporary is removed on failure).
    static func writeDirectory(_ out: String, fill: (_ temp: String) throws -> Void) throws {
        let fm = FileManager.default
        do {
            try OutputPath.check(out, flag: "--out")
        } catch {
            throw HFError.file(path: out, reason: error.reason)
        }
        let parent = (out as NSString).deletingLastPathComponent
        let temp = (parent.isEmpty ? "." : parent) + "/." + (out as NSString).lastPathComponent + AtomicFile.tempMarker + UUID().uuidString
        do {
            try fm.createDirectory(atPath: temp, withIntermediateDirectories: true)
        } catch {
            throw HFError.file(path: temp, reason: "cannot create the directory")
        }
        do {
            try fill(temp)
            try fm.moveItem(atPath: temp, toPath: out)
        } catch {
            try? fm.removeItem(atPath: temp)
            throw error
        }
    }

    /// `config.json` of a model of configuration `c` (transformers' key names for its architecture).
    static func configJSON(_ c: LlamaConfig, eos: Int32, bos: Int32?) -> String {
        var object = HFArchitectures.of(c).configJSON(c, eos: eos, bos: bos)
        object["dtype"] = .string("float32")
        object["eos_token_id"] = .number(Double(eos))
        object["bos_token_id"] = bos.map { .number(Double($0)) } ?? .null
        return JSONValue.object(object).canonical + "\n"
    }

    /// model.safetensors: every parameter as F32 under transformers' name, in name order.
    static func writeSafetensors(_ model: LlamaModel, to path: String) throws {
        let c = model.config, architecture = HFArchitectures.of(c)
        let entries = model.parameterTable.map { (name: architecture.tensorName($0.name), ours: $0.name, shape: $0.shape) }
        try writeSafetensors(entries.map { ($0.name, $0.shape) }, to: path) { i in
            var values = Array(model.parameter(entries[i].ours))
            values.withUnsafeMutableBufferPointer { architecture.convert($0, parameter: entries[i].ours, c, inverse: true) }
            return values
        }
    }

    /// A safetensors file of F32 tensors `entries` (name, shape), in name order, the header padded with spaces to a
    /// multiple of 8 bytes; `values(i)` gives entry i's floats when it is written (one tensor in memory at a time).
    static func writeSafetensors(_ entries: [(name: String, shape: [Int])], to path: String, values: (Int) throws -> [Float]) throws {
        let order = entries.indices.sorted { entries[$0].name < entries[$1].name }
        var header: [String: JSONValue] = ["__metadata__": .object(["format": .string("pt")])]
        var offset = 0
        for i in order {
            let bytes = 4 * entries[i].shape.reduce(1, *)
            header[entries[i].name] = .object([
                "dtype": .string("F32"), "shape": .array(entries[i].shape.map { .number(Double($0)) }),
                "data_offsets": .array([.number(Double(offset)), .number(Double(offset + bytes))]),
            ])
            offset += bytes
        }
        var text = Array(JSONValue.object(header).canonical.utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        try AtomicFile.write(to: path) { out in
            var length = UInt64(text.count).littleEndian
            try withUnsafeBytes(of: &length) { try out.write($0) }
            try out.write(text)
            for i in order {
                var v = try values(i)
                precondition(v.count == entries[i].shape.reduce(1, *), "writeSafetensors: \(entries[i].name) has \(v.count) values")
                #if _endian(big)
                v = v.map { Float(bitPattern: $0.bitPattern.littleEndian) }
                #endif
                try v.withUnsafeBytes { try out.write($0) }
            }
        }
    }
}
