import Foundation

/// What the learning rate does after warm-up.
public enum LRSchedule: String, Codable, Sendable, CaseIterable {
    case constant, linear, cosine
}

/// Learning rate of (0-based) `step`: linear warm-up from peak/warmup to `peak` over `warmup` steps, then
/// constant, or linear / cosine decay from `peak` to `peak * minRatio` at step `totalSteps - 1`.
public func learningRate(
    step: Int, totalSteps: Int, warmup: Int, peak: Double, schedule: LRSchedule, minRatio: Double = 0
) -> Double {
    if step < warmup { return peak * Double(step + 1) / Double(warmup) }
    let span = totalSteps - 1 - warmup
    let progress = span <= 0 ? 0 : min(1, Double(step - warmup) / Double(span))
    switch schedule {
    case .constant: return peak
    case .linear: return peak * (minRatio + (1 - minRatio) * (1 - progress))
    case .cosine: return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + cos(Double.pi * progress)))
    }
}
