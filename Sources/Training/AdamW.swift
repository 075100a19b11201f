import Base
import Dispatch
import Foundation
import Kernels

/// AdamW hyper-parameters (decoupled weight decay, Loshchilov & Hutter).
public struct AdamWConfig: Codable, Sendable, Equatable {
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    /// Decoupled: each step multiplies every parameter by (1 - lr * weightDecay) before the Adam update.
    public var weightDecay: Double

    /// The learning rate is not a setting of the optimizer: `step` takes the rate of each step (the schedule's).
    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }
}

/// AdamW with bias correction. First and second moments live in one allocation (`moments`: m then v),
/// exposed with the step count `t` for checkpoints.
public final class AdamW {
    public let config: AdamWConfig
    public let parameterCount: Int
    /// Steps taken so far (the bias correction of the next step uses t + 1).
    public var t: Int = 0
    /// m (first moment) followed by v (second moment), 2 * parameterCount floats.
    public let moments: UnsafeMutableBufferPointer<Float>

    public init(parameterCount: Int, config: AdamWConfig) {
        self.parameterCount = parameterCount
        self.config = config
        moments = .allocate(capacity: 2 * parameterCount)
        moments.initialize(repeating: 0)
    }

    deinit { moments.deallocate() }

    /// First moments.
    public var m: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(rebasing: moments[0..<parameterCount]) }
    /// Second moments.
    public var v: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: moments[parameterCount..<(2 * parameterCount)])
    }

    /// One update: p -= lr * (wd * p + mhat / (sqrt(vhat) + eps)), with mhat, vhat bias-corrected.
    /// Elementwise, split over fixed chunks, so the result does not depend on scheduling.
    public func step(params: UnsafeMutableBufferPointer<Float>, grads: UnsafeMutableBufferPointer<Float>, lr: Double) {
        step(segments: [(params, grads)], lr: lr)
    }

    /// One update of parameters held in several buffers (`LlamaModel.trainable`): the moments are laid out in the
    /// segments' order, so one segment is `step(params:grads:lr:)` exactly.
    public func step(segments: [(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>)], lr: Double) {
        precondition(segments.reduce(0) { $0 + $1.parameters.count } == parameterCount
                     && segments.allSatisfy { $0.parameters.count == $0.gradients.count }, "AdamW: size mismatch")
        t += 1
        var offset = 0
        for (params, grads) in segments {
            update(params: params, grads: grads, offset: offset, lr: lr)
            offset += params.count
        }
    }

    private func update(params: UnsafeMutableBufferPointer<Float>, grads: UnsafeMutableBufferPointer<Float>, offset: Int, lr: Double) {
        // (1 - beta) is formed in Double: 1 - Float(0.999) would be off by 1e-5 relative.
        let b1 = Float(config.beta1), b2 = Float(config.beta2), eps = Float(config.eps)
        let ob1 = Float(1 - config.beta1), ob2 = Float(1 - config.beta2)
        let c1 = Float(1 / (1 - pow(config.beta1, Double(t)))), c2 = Float(1 / (1 - pow(config.beta2, Double(t))))
        let lrf = Float(lr), decay = Float(1 - lr * config.weightDecay)
        let n = params.count
        let pp = SendablePointer(params.baseAddress!), gp = SendablePointer(grads.baseAddress!)
        let mp = SendablePointer(moments.baseAddress! + offset), vp = SendablePointer(moments.baseAddress! + parameterCount + offset)
        // Elementwise: the split (Threads.count ranges of >= 2^15) does not change the results.
        parallelFor(n, grain: 1 << 15) { r in
            for i in r {
                let g = gp.p[i]
                let m = b1 * mp.p[i] + ob1 * g
                let v = b2 * vp.p[i] + ob2 * g * g
                mp.p[i] = m
                vp.p[i] = v
                pp.p[i] = pp.p[i] * decay - lrf * (m * c1) / ((v * c2).squareRoot() + eps)
            }
        }
    }
}
