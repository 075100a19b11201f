import Base
import Foundation
import Model

/// Writing a LoRA run's adapters as PEFT saves them (`export --format peft`): `adapter_config.json` (`peft_type`
/// LORA, `r`, `lora_alpha`, `lora_dropout`, `target_modules` as the base checkpoint names its linear layers, `bias`
/// "none", `task_type` CAUSAL_LM, `base_model_name_or_path`) and `adapter_model.safetensors` with, per adapted layer,
/// `base_model.model.<module>.lora_A.weight` (r, in) and `.lora_B.weight` (out, r). Our Q/K rows (adjacent RoPE pairs)
/// and GPT-NeoX's fused q|k|v rows are put back in the checkpoint's order on B's rows, as the weights' rows are
/// (`HFArchitecture.convert`); A reads the unchanged input. `PEFTAdapter` reads the same files back.
public enum PEFTExport {
    /// The base checkpoint's name of the linear layer that `target` adapts in block `layer` (without ".weight").
    static func module(_ target: LoRATarget, layer: Int, _ c: LlamaConfig) -> (ours: String, theirs: String) {
        let ours: String
        switch target {
        case .q: ours = "blk.\(layer).attn_q.weight"
        case .k: ours = "blk.\(layer).attn_k.weight"
        case .v: ours = "blk.\(layer).attn_v.weight"
        case .qkv: ours = "blk.\(layer).attn_qkv.weight"
        case .o: ours = "blk.\(layer).attn_output.weight"
        case .gate: ours = "blk.\(layer).ffn_gate.weight"
        case .up: ours = "blk.\(layer).ffn_up.weight"
        case .down: ours = "blk.\(layer).ffn_down.weight"
        }
        var theirs = HFArchitectures.of(c).tensorName(ours)
        theirs.removeLast(".weight".count)
        return (ours, theirs)
    }

    /// The row order `convert(inverse: true)` gives parameter `ours` (a row permutation: RoPE pairs, fused Q|K|V):
    /// theirs[i] = ours[order[i]].
    static func rowOrder(_ ours: String, rows: Int, _ c: LlamaConfig) -> [Int] {
        let columns = LlamaModel.parameterTable(for: c).first { $0.name == ours }!.shape[1]
        var index = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows { for j in 0..<columns { index[r * columns + j] = Float(r) } }
        index.withUnsafeMutableBufferPointer { HFArchitectures.of(c).convert($0, parameter: ours, c, inverse: true) }
        return (0..<rows).map { Int(index[$0 * columns]) }
    }

    /// Writes the adapters of `lora` (on a model of configuration `c`) into the directory `out`, made beside it under a
    /// temporary name and renamed when complete. `baseModel`: `base_model_name_or_path`.
    public static func write(_ lora: LoRAAdapters, config c: LlamaConfig, baseModel: String, to out: String) throws {
        try HFExport.writeDirectory(out) { temp in
            var entries: [(name: String, shape: [Int])] = []
            var sources: [(values: UnsafeBufferPointer<Float>, order: [Int]?)] = []
            var modules = Set<String>()
            let r = lora.settings.rank
            for t in lora.tensors {
                let (ours, theirs) = module(t.target, layer: t.layer, c)
                modules.insert(String(theirs.split(separator: ".").last!))
                entries.append(("base_model.model.\(theirs).lora_A.weight", [r, t.a.count / r]))
                sources.append((t.a, nil))
                // B's rows are the weight's output rows; a target that is part of a fused weight (q, k, v) has its own rows
                entries.append(("base_model.model.\(theirs).lora_B.weight", [t.b.count / r, r]))
                sources.append((t.b, rowOrder(ours, rows: t.b.count / r, c)))
            }
            try HFExport.writeSafetensors(entries, to: temp + "/adapter_model.safetensors") { i in
                let values = sources[i].values
                guard let order = sources[i].order else { return Array(values) }
                var out = [Float](repeating: 0, count: values.count)
                for (row, from) in order.enumerated() { for k in 0..<r { out[row * r + k] = values[from * r + k] } }
                return out
            }
            let s = lora.settings
            let config: [String: JSONValue] = [
                "peft_type": .string("LORA"), "task_type": .string("CAUSAL_LM"), "r": .number(Double(s.rank)),
                "lora_alpha": .number(s.alpha), "lora_dropout": .number(s.dropout), "bias": .string("none"),
                "target_modules": .array(modules.sorted().map { .string($0) }), "fan_in_fan_out": .bool(false),
                "use_rslora": .bool(false), "use_dora": .bool(false), "inference_mode": .bool(true),
                "init_lora_weights": .bool(true), "base_model_name_or_path": .string(baseModel),
            ]
            try AtomicFile.write(JSONValue.object(config).canonical + "\n", to: temp + "/adapter_config.json")
        }
    }
}
