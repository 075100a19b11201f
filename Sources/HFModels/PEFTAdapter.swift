import Base
import Foundation
import Model

/// A PEFT LoRA adapter as PEFT saves one (a Trainer checkpoint of a PEFT model): `adapter_config.json` and
/// `adapter_model.safetensors`. Applied onto a model that holds the base weights: W <- W + s B A for every adapted
/// linear layer, s = lora_alpha / r (lora_alpha / sqrt(r) with `use_rslora`), A: (r, in), B: (out, r), as PEFT's merge
/// computes it; the delta is converted to our layout as the base's tensor is (RoPE rows, GPT-NeoX's fused Q|K|V).
///
/// Read: `peft_type` LORA, `r`, `lora_alpha`, `use_rslora`, `base_model_name_or_path`. Refused, naming the key (they
/// would change the model in ways this merge does not do): DoRA (`use_dora`), `fan_in_fan_out`, trained biases (`bias`
/// other than "none"), `modules_to_save`, per-module ranks or alphas (`rank_pattern`, `alpha_pattern`), and any tensor
/// that is not a lora_A / lora_B pair of one of the model's linear weights (embedding adapters among them).
public struct PEFTAdapter {
    public let path: String
    /// `base_model_name_or_path`, as written.
    public let baseModel: String?
    let scale: Float
    let file: SafetensorsFile
    /// Our parameter -> the adapter's (A, B) tensor names.
    let modules: [(parameter: String, a: String, b: String)]

    /// Reads the folder's config and tensor table, matched against the parameters of a model of `config` (the
    /// architecture's tensor names, `HFArchitectures`).
    public init(path: String, config: LlamaConfig) throws(HFError) {
        self.path = path
        let c = try JSONFile(path: path + "/adapter_config.json")
        let type = try c.string("peft_type")
        guard type == "LORA" else { throw HFError.entry(path: c.path, key: "peft_type", reason: "\"\(type)\"; only LORA adapters are read") }
        for key in ["use_dora", "fan_in_fan_out"] where try c.bool(key, default: false) {
            throw HFError.entry(path: c.path, key: key, reason: "true is not supported (merge the adapter with PEFT and save the merged model)")
        }
        if c.has("bias"), case .string(let b) = try c.value("bias"), b != "none" {
            throw HFError.entry(path: c.path, key: "bias", reason: "\"\(b)\": trained biases are not supported (only \"none\")")
        }
        for key in ["modules_to_save", "rank_pattern", "alpha_pattern"] where c.has(key) {
            switch try c.value(key) {
            case .array(let a) where a.isEmpty: continue
            case .object(let o) where o.isEmpty: continue
            default: throw HFError.entry(path: c.path, key: key, reason: "is set; not supported (merge the adapter with PEFT and save the merged model)")
            }
        }
        // every other field must be one known not to change the merged weights, or unset (null, false, empty)
        let harmless: Set<String> = ["peft_type", "r", "lora_alpha", "use_rslora", "base_model_name_or_path", "use_dora", "fan_in_fan_out",
                                     "bias", "modules_to_save", "rank_pattern", "alpha_pattern", "target_modules", "exclude_modules",
                                     "lora_dropout", "inference_mode", "init_lora_weights", "revision", "task_type", "peft_version",
                                     "auto_mapping", "layers_to_transform", "layers_pattern", "loftq_config", "eva_config", "corda_config",
                                     "lora_ga_config", "megatron_config", "megatron_core", "ensure_weight_tying", "qalora_group_size"]
        for key in c.root.keys.sorted() where !harmless.contains(key) {
            switch c.root[key]! {
            case .null, .bool(false): continue
            case .array(let a) where a.isEmpty: continue
            case .object(let o) where o.isEmpty: continue
            default: throw HFError.entry(path: c.path, key: key, reason: "is set, and what it does to the model is not read here (merge the adapter with PEFT and save the merged model)")
            }
        }
        let r = try c.int("r"), alpha = try c.double("lora_alpha")
        scale = Float(try c.bool("use_rslora", default: false) ? alpha / Double(r).squareRoot() : alpha / Double(r))
        baseModel = c.has("base_model_name_or_path") ? try c.string("base_model_name_or_path") : nil
        file = try SafetensorsFile(path: path + "/adapter_model.safetensors")
        let architecture = HFArchitectures.of(config)
        // the module's weight name as the base checkpoint names it -> our parameter
        var ours: [String: String] = [:], shapes: [String: [Int]] = [:]
        for (name, shape) in LlamaModel.parameterTable(for: config) {
            ours[architecture.tensorName(name)] = name
            shapes[name] = shape
        }
        var found: [String: (a: String?, b: String?)] = [:]
        for name in file.tensors.keys.sorted() {
            var module = name
            if module.hasPrefix("base_model.model.") { module.removeFirst("base_model.model.".count) }
            let kind: String
            if module.hasSuffix(".lora_A.weight") { kind = "A" } else if module.hasSuffix(".lora_B.weight") { kind = "B" } else {
                throw HFError.entry(path: file.path, key: name, reason: "not a LoRA A or B weight of a linear layer; not supported")
            }
            module.removeLast(".lora_A.weight".count)
            guard let parameter = ours[module + ".weight"] else {
                throw HFError.entry(path: file.path, key: name, reason: "adapts \(module), which is not a weight of the base model")
            }
            if kind == "A" { found[parameter, default: (nil, nil)].a = name } else { found[parameter, default: (nil, nil)].b = name }
        }
        var modules: [(String, String, String)] = []
        for (parameter, pair) in found.sorted(by: { $0.key < $1.key }) {
            guard let a = pair.a, let b = pair.b else {
                throw HFError.entry(path: file.path, key: pair.a ?? pair.b!, reason: "has no \(pair.a == nil ? "lora_A" : "lora_B") partner")
            }
            let shape = shapes[parameter]!
            let (ta, tb) = (file.tensors[a]!, file.tensors[b]!)
            guard ta.shape.count == 2, tb.shape.count == 2, ta.shape[0] == tb.shape[1], tb.shape[0] == shape[0], ta.shape[1] == shape[1] else {
                throw HFError.entry(path: file.path, key: a, reason: "shapes A \(ta.shape), B \(tb.shape) do not adapt a \(shape) weight")
            }
            modules.append((parameter, a, b))
        }
        guard !modules.isEmpty else { throw HFError.file(path: file.path, reason: "holds no LoRA weights") }
        self.modules = modules
        self.architecture = architecture
        self.config = config
    }

    private let architecture: any HFArchitecture.Type
    private let config: LlamaConfig

    /// The adapted parameters (ours), for the plan and the tests.
    public var parameters: [String] { modules.map(\.parameter) }

    /// Adds s B A to each adapted weight of `model`, which must hold the base weights (of the configuration this
    /// adapter was read for). The product is summed in Double over the rank, then rounded once.
    public func apply(to model: LlamaModel) throws(HFError) {
        precondition(model.config.holdsTheWeights(of: config), "PEFTAdapter.apply: a model of another configuration")
        for (parameter, a, b) in modules {
            let (ta, tb) = (file.tensors[a]!, file.tensors[b]!)
            let r = ta.shape[0], n = ta.shape[1], m = tb.shape[0]
            var av = [Float](repeating: 0, count: r * n), bv = [Float](repeating: 0, count: m * r)
            try av.withUnsafeMutableBufferPointer { buffer throws(HFError) in try file.read(a, into: buffer) }
            try bv.withUnsafeMutableBufferPointer { buffer throws(HFError) in try file.read(b, into: buffer) }
            var delta = [Float](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for k in 0..<r { sum += Double(bv[i * r + k]) * Double(av[k * n + j]) }
                    delta[i * n + j] = Float(Double(scale) * sum)
                }
            }
            delta.withUnsafeMutableBufferPointer { architecture.convert($0, parameter: parameter, config, inverse: false) }
            let target = model.parameter(parameter)
            for i in 0..<target.count { target[i] += delta[i] }
        }
    }
}
