import Base
/// Global L2 norm of `grads`; if it exceeds `maxNorm`, scales them to norm `maxNorm`. Returns the norm
/// before clipping. The sum runs in Double over fixed blocks in order, so it is deterministic.
/// A non-positive `maxNorm` only measures.
@discardableResult
public func clipGradients(_ grads: UnsafeMutableBufferPointer<Float>, maxNorm: Float) -> Float {
    clipGradients(segments: [grads], maxNorm: maxNorm)
}

/// `clipGradients` over gradients held in several buffers (`LlamaModel.trainable`): one norm over all, each buffer's
/// blocks in order.
@discardableResult
public func clipGradients(segments: [UnsafeMutableBufferPointer<Float>], maxNorm: Float) -> Float {
    var total = 0.0
    for grads in segments {
        var i = 0
        while i < grads.count {
            let end = min(grads.count, i + 4096)
            var s: Float = 0
            for j in i..<end { s += grads[j] * grads[j] }
            total += Double(s)
            i = end
        }
    }
    let norm = Float(total.squareRoot())
    let scale = clipScale(norm: norm, maxNorm: maxNorm)
    if scale != 1 { for grads in segments { scaleGradients(grads, by: scale) } }
    return norm
}

/// The factor `clipGradients` multiplies gradients of norm `norm` by: maxNorm / norm above `maxNorm`, else 1.
public func clipScale(norm: Float, maxNorm: Float) -> Float {
    maxNorm > 0 && norm > maxNorm ? maxNorm / norm : 1
}

/// grads *= factor. Gradient accumulation: `backward` adds, so after k micro-batches whose losses were each
/// normalised on their own, scale by 1/k (or scale each micro-batch's dLoss/dlogprob by 1/k before backward).
public func scaleGradients(_ grads: UnsafeMutableBufferPointer<Float>, by factor: Float) {
    let p = SendablePointer(grads.baseAddress!)
    parallelFor(grads.count, grain: 1 << 15) { r in
        for j in r { p.p[j] *= factor }
    }
}
