/// The number type of a matrix product's inputs. Accumulation and outputs are float32 in both; bf16 (the
/// top 16 bits of a float32, rounded to nearest even) halves the inputs' memory traffic and runs on the
/// CPU's bf16 dot-product instructions (AVX512-BF16, AMX).
public enum Precision: String, Sendable, Codable, CaseIterable {
    case fp32, bf16
}
