import Foundation
import XCTest
import Base
import Model
@testable import Training

/// Issue 38: per-step attribution (`Attribution`), checked against naive Double computations on the tiny model.
final class AttributionTests: XCTestCase {
    private func bytes(_ s: String) -> [Int32] { Array(s.utf8).map(Int32.init) }

    private lazy var sequences: [EncodedPair] = [("Q: hi\nA:", " hello"), ("Q: 2+2\nA:", " four"), ("Q: sky?\nA:", " blue"),
                                                 ("Q: cat?\nA:", " a pet"), ("Q: sun?\nA:", " hot star")].map {
        EncodedPair(prompt: [256] + bytes($0.0), response: bytes($0.1) + [257], promptCut: 0)
    }
    private lazy var pairs: [PreferencePair] = [
        PreferencePair(prompt: [256] + bytes("Q: hi\nA:"), chosen: bytes(" hello") + [257], rejected: bytes(" go away") + [257]),
        PreferencePair(prompt: [256] + bytes("Q: 2+2\nA:"), chosen: bytes(" four") + [257], rejected: bytes(" five") + [257]),
        PreferencePair(prompt: [256] + bytes("Q: sky?\nA:"), chosen: bytes(" blue") + [257], rejected: bytes(" no") + [257]),
    ]
    /// Probe responses: a trained one, a near one and unrelated ones.
    private lazy var responses: [(context: [Int32], continuation: [Int32])] = [
        ([256] + bytes("Q: hi\nA:"), bytes(" hello") + [257]), ([256] + bytes("Q: hi\nA:"), bytes(" hallo") + [257]),
        ([256] + bytes("Q: dog?\nA:"), bytes(" a pet") + [257]), ([256] + bytes("Q: 2+2\nA:"), bytes(" five") + [257]),
        ([256] + bytes("Q: why?\nA:"), bytes(" because") + [257]),
    ]

    private func settings(_ overrides: [String: Double] = [:]) throws -> TrainSettings {
        var keys: [String: Double] = ["steps": 4, "batch_size": 2, "grad_accum": 2, "lr": 1e-3, "warmup": 0, "weight_decay": 0.1, "grad_clip": 1]
        keys.merge(overrides) { $1 }
        return try JSONDecoder().decode(TrainSettings.self, from: JSONSerialization.data(withJSONObject: keys))
    }

    private func model() -> LlamaModel {
        let m = LlamaModel(config: .tiny(dim: 32, ffnDim: 48), maxTokens: 256)
        m.initializeRandom(seed: 7, std: 0.2)
        return m
    }

    /// Steps 1..<`step` plainly, then step `step` with attribution; returns what a naive check needs.
    private func attributed(_ trainer: Trainer, step: Int, sketch: CountSketch? = nil)
        -> (result: [Attribution.Response], theta: [Float], mOld: [Float], terms: [ExampleTerm], step: Trainer.StepResult) {
        for s in 1..<step { _ = trainer.step(s) }
        let attribution = Attribution(model: trainer.model, sketch: sketch)
        attribution.begin(optimizer: trainer.optimizer)
        let theta = Array(trainer.model.parameters), mOld = Array(trainer.optimizer.m)
        trainer.recordsExampleTerms = true
        let result = trainer.step(step)
        let scale = clipScale(norm: Float(result.gradNorm), maxNorm: Float(trainer.train.gradClip))
        let out = attribution.attribute(optimizer: trainer.optimizer, lr: result.lr, clipScale: scale,
                                        terms: trainer.lastExampleTerms, responses: responses)
        return (out, theta, mOld, trainer.lastExampleTerms, result)
    }

    /// The gradient of sum_t d_t log p_t over a term's batch (its loss's linearisation), as Double.
    private func gradient(_ model: LlamaModel, _ batch: TokenBatch, _ d: [Float]) -> [Double] {
        model.zeroGradients()
        _ = model.forward(batch, training: true)
        d.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
        return model.gradients.map(Double.init)
    }

    private func probe(_ r: (context: [Int32], continuation: [Int32])) -> (batch: TokenBatch, weights: [Float]) {
        let p = TokenBatch.pack([[(r.context, false), (r.continuation, true)]])
        return (p.batch, p.weights)
    }

    /// The examples' terms of a step add up to the step's gradient (before clipping), for SFT with two micro-batches and
    /// for DPO (whose terms read the batch's loss through each pair's log-ratio). Separate backward passes round
    /// differently from the packed one: within 1e-5 of the gradient's largest entry.
    func testTheExampleTermsSumToTheStepsGradient() throws {
        let train = try settings(["grad_clip": 0])
        for (objective, data) in [(Objective.sft(lossOn: .response), TrainingData.sequences(sequences)),
                                  (Objective.dpo(beta: 0.5, labelSmoothing: 0),
                                   .preference(pairs, reference: referenceLogprobs(model: model(), pairs: pairs, batchSize: 3).map { $0 - 0.5 }))] {
            let m = model()
            let trainer = Trainer(model: m, train: train, objective: objective, seed: 3, data: data)
            trainer.recordsExampleTerms = true
            let theta = Array(m.parameters)
            _ = trainer.step(1)
            let stepGradient = Array(m.gradients)
            _ = m.parameters.update(fromContentsOf: theta)  // the terms' gradients at the step's weights
            XCTAssertEqual(trainer.lastExampleTerms.count, 4, "2 micro-batches of 2")
            var sum = [Double](repeating: 0, count: m.parameterCount)
            for term in trainer.lastExampleTerms {
                for (i, g) in gradient(m, term.batch, term.dLogprobs).enumerated() { sum[i] += g }
            }
            let scale = Double(stepGradient.map(abs).max()!)
            XCTAssertGreaterThan(scale, 1e-3)
            for i in sum.indices { XCTAssertEqual(sum[i], Double(stepGradient[i]), accuracy: 1e-5 * scale, "\(objective.kind) [\(i)]") }
        }
    }

    /// Every gradient attribution uses against central finite differences: an example term's (the gradient of
    /// sum_t d_t log p_t, d its dLoss/dlogprob) and a probe response's (of log pi(y | x)).
    func testTheGradientsMatchFiniteDifferences() throws {
        let m = model()
        let trainer = Trainer(model: m, train: try settings(), objective: .dpo(beta: 0.5, labelSmoothing: 0), seed: 3,
                              data: .preference(pairs, reference: [Double](repeating: -20, count: 6)))
        trainer.recordsExampleTerms = true
        _ = trainer.step(1)
        let term = trainer.lastExampleTerms[1]
        XCTAssertEqual(term.batch.sequenceStarts.count, 2, "a pair's term: its chosen and rejected sequences")
        func linearised() -> Double {
            let lp = m.forward(term.batch, training: false)
            return zip(lp, term.dLogprobs).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        _ = gradient(m, term.batch, term.dLogprobs)
        assertGradientMatchesFiniteDifferences(m, loss: linearised)
        let (batch, weights) = probe(responses[2])
        func logprob() -> Double { m.forward(batch, training: false).reduce(0) { $0 + Double($1) } }
        _ = gradient(m, batch, weights)
        assertGradientMatchesFiniteDifferences(m, loss: logprob)
    }

    /// At step 3 (momentum from two steps, weight decay, clipping at 1): the contributions and the carried row sum to the
    /// prediction (1e-6 relative), and each equals a naive Double computation from the gradients and AdamW's state
    /// (1e-4 relative: the naive one sums in Double what the pass sums in float blocks); the prediction equals
    /// <g_o, theta_{t+1} - theta_t> from the stored weights (1e-3 relative: theta_{t+1} is rounded to float32).
    func testTheContributionsSumToThePredictionAndMatchANaiveComputation() throws {
        let m = model()
        let train = try settings()
        let trainer = Trainer(model: m, train: train, objective: .sft(lossOn: .response), seed: 3, data: .sequences(sequences))
        let (out, theta, mOld, terms, step) = attributed(trainer, step: 3)
        XCTAssertGreaterThan(step.gradNorm, train.gradClip, "the step is clipped")
        let after = Array(m.parameters)
        // the naive computation
        let opt = trainer.optimizer, t = Double(opt.t), lr = step.lr
        let c1 = 1 / (1 - pow(0.9, t)), c2 = 1 / (1 - pow(0.999, t)), clip = train.gradClip / step.gradNorm
        let denominators = opt.v.map { (Double($0) * c2).squareRoot() + 1e-8 }
        _ = m.parameters.update(fromContentsOf: theta)
        let exampleGradients = terms.map { gradient(m, $0.batch, $0.dLogprobs) }
        for (r, response) in responses.enumerated() {
            let (batch, weights) = probe(response)
            let go = gradient(m, batch, weights)
            var predicted = 0.0, carried = 0.0, stored = 0.0
            var contributions = [Double](repeating: 0, count: terms.count)
            for i in go.indices {
                predicted += go[i] * (-lr * 0.1 * Double(theta[i]) - lr * c1 * Double(opt.m[i]) / denominators[i])
                carried += go[i] * (-lr * 0.1 * Double(theta[i]) - lr * c1 * 0.9 * Double(mOld[i]) / denominators[i])
                stored += go[i] * (Double(after[i]) - Double(theta[i]))
                for e in terms.indices { contributions[e] += go[i] * -lr * c1 * 0.1 * clip * exampleGradients[e][i] / denominators[i] }
            }
            let a = out[r]
            XCTAssertGreaterThan(abs(a.predicted), 1e-4, "response \(r) moves")
            XCTAssertEqual(a.carried + a.contributions.reduce(0, +), a.predicted, accuracy: 1e-6 * abs(a.predicted), "response \(r)")
            XCTAssertEqual(a.predicted, predicted, accuracy: 1e-4 * abs(predicted), "response \(r)")
            XCTAssertEqual(a.carried, carried, accuracy: 1e-4 * abs(predicted), "response \(r)")
            for e in terms.indices { XCTAssertEqual(a.contributions[e], contributions[e], accuracy: 1e-4 * abs(predicted), "response \(r) example \(e)") }
            XCTAssertEqual(stored, predicted, accuracy: 1e-3 * abs(predicted), "response \(r)")
            let norm = go.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for e in terms.indices {
                let ge = exampleGradients[e]
                let cos = -zip(go, ge).reduce(0) { $0 + $1.0 * $1.1 } / (norm * ge.reduce(0) { $0 + $1 * $1 }.squareRoot())
                XCTAssertEqual(a.cosines[e], cos, accuracy: 1e-5, "response \(r) example \(e)")
            }
        }
        _ = m.parameters.update(fromContentsOf: after)
    }

    /// The cosine's sign: a probe response that is an SFT example of the step has cosine 1 with that example (the example's
    /// descent direction is the response's own gradient), and a positive contribution.
    func testAnExampleThatIsTheResponseHasCosineOne() throws {
        let trainer = Trainer(model: model(), train: try settings(["grad_accum": 1, "batch_size": 1]), objective: .sft(lossOn: .response), seed: 3,
                              data: .sequences(sequences))
        let attribution = Attribution(model: trainer.model, sketch: nil)
        attribution.begin(optimizer: trainer.optimizer)
        trainer.recordsExampleTerms = true
        let result = trainer.step(1)
        let example = sequences[trainer.lastExampleTerms[0].example]
        let out = attribution.attribute(optimizer: trainer.optimizer, lr: result.lr, clipScale: clipScale(norm: Float(result.gradNorm), maxNorm: 1),
                                        terms: trainer.lastExampleTerms, responses: [(example.prompt, example.response)])
        XCTAssertEqual(out[0].cosines[0], 1, accuracy: 1e-5)
        XCTAssertGreaterThan(out[0].contributions[0], 0)
        XCTAssertGreaterThan(out[0].observed, 0, "the step raised its own example")
    }

    /// At a small rate (1e-4) the first-order prediction follows the observed one-step change: Pearson r >= 0.98 over the
    /// responses of several steps. At a rate 100 times larger (1e-2) the same responses' changes are no longer first
    /// order (r recorded, not asserted, in the message; the experiment reports it at its real rate).
    func testThePredictionFollowsTheObservedChangeAtASmallRate() throws {
        var predicted: [Double] = [], observed: [Double] = []
        for step in 1...3 {
            let trainer = Trainer(model: model(), train: try settings(["lr": 1e-4]), objective: .sft(lossOn: .response), seed: 3,
                                  data: .sequences(sequences))
            let (out, _, _, _, _) = attributed(trainer, step: step)
            predicted += out.map(\.predicted)
            observed += out.map(\.observed)
        }
        let r = pearson(predicted, observed)
        XCTAssertGreaterThanOrEqual(r, 0.98, "predicted \(predicted)\nobserved \(observed)")
        XCTAssertGreaterThan(observed.map(abs).max()!, 1e-3, "the responses moved")
    }

    /// The sketch estimates inner products without bias and within its stated spread: over 60 pairs of correlated random
    /// vectors (P = 200,000, D = 1,024) every error is within 5 standard errors sqrt((|a|^2|b|^2 + <a,b>^2) / D), and the
    /// mean squared error in those units is about 1 (0.5 to 1.5: the bound is tight for these vectors), so a sketch
    /// that were off by a factor 2 would fail. The same sketch under 1 and 2 threads is the same to the bit.
    func testTheSketchKeepsInnerProductsWithinItsBound() {
        let n = 200_000, sketch = CountSketch(dimension: 1024, seed: 5)
        var rng = SplitMix64(seed: 9)
        var z2 = 0.0
        for k in 0..<60 {
            let a = (0..<n).map { _ in Float(rng.normal()) }
            let mix = Float(k % 4) / 3
            let b = a.map { $0 * mix + Float(rng.normal()) * (1 - mix) }
            let exact = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let sa = a.withUnsafeBufferPointer { sketch.project($0) }, sb = b.withUnsafeBufferPointer { sketch.project($0) }
            let estimate = zip(sa, sb).reduce(0) { $0 + $1.0 * $1.1 }
            let se = sketch.standardError(normA: a.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot(),
                                          normB: b.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot(), inner: exact)
            XCTAssertLessThanOrEqual(abs(estimate - exact), 5 * se, "pair \(k)")
            z2 += pow((estimate - exact) / se, 2) / 60
            if k == 0 {
                let two = Threads.count
                Threads.count = 1
                let one = a.withUnsafeBufferPointer { sketch.project($0) }
                Threads.count = two
                XCTAssertEqual(one, sa)
            }
        }
        XCTAssertGreaterThan(z2, 0.5)
        XCTAssertLessThan(z2, 1.5)
    }

    /// With a sketch, predicted and the carried row stay exact and the cosines are estimates within the sketch's bound
    /// (5 standard errors of sqrt((1 + cos^2) / D)).
    func testASketchedAttributionEstimatesTheExactOne() throws {
        let exact = attributed(Trainer(model: model(), train: try settings(), objective: .sft(lossOn: .response), seed: 3,
                                       data: .sequences(sequences)), step: 2).result
        let sketch = CountSketch(dimension: 4096, seed: 1)
        let sketched = attributed(Trainer(model: model(), train: try settings(), objective: .sft(lossOn: .response), seed: 3,
                                          data: .sequences(sequences)), step: 2, sketch: sketch).result
        for (e, s) in zip(exact, sketched) {
            XCTAssertEqual(s.predicted, e.predicted)
            XCTAssertEqual(s.carried, e.carried)
            XCTAssertEqual(s.observed, e.observed)
            for (ce, cs) in zip(e.cosines, s.cosines) {
                XCTAssertLessThanOrEqual(abs(cs - ce), 5 * ((1 + ce * ce) / 4096).squareRoot())
            }
        }
        XCTAssertNotEqual(exact.map(\.cosines), sketched.map(\.cosines), "the sketch is an estimate")
    }

    private func pearson(_ x: [Double], _ y: [Double]) -> Double {
        let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
            syy += (b - my) * (b - my)
        }
        return sxy / (sxx * syy).squareRoot()
    }
}
