import Base
import Foundation

/// CPO (Xu et al. 2024) as TRL's `CPOTrainer` computes it: reference-free, on the policy's log-probabilities u (sums;
/// per-token averages for `ipo` and `simpo`, as TRL's `average_log_prob`), optionally AlphaPO-transformed (`alpha` != 0:
/// u -> (1 - e^(-alpha u)) / alpha, arXiv 2501.03884). With d = u_c - u_r:
/// - `sigmoid`: -(1 - eps) log sigmoid(beta d) - eps log sigmoid(-beta d); `simpo`: the same with d - gamma / beta;
/// - `hinge`: max(0, 1 - beta d); `ipo`: (d - 1 / (2 beta))^2;
/// plus `cpo_alpha` times the NLL of the batch's chosen tokens, -(sum of pi_c) / (chosen tokens). `alphapo` is `simpo`
/// with `cpo_alpha` 0, as TRL's config makes it. Keys and TRL's defaults: `loss_type` ("sigmoid"), `beta` (0.1),
/// `cpo_alpha` (1), `simpo_gamma` (0.5), `label_smoothing` ([0, 0.5), 0; not with hinge or ipo), `alpha` (0).
/// Metrics: TRL's rewards (beta u), logps (u) and `nll_loss`.
public struct CPO: PairObjective, Equatable {
    public static let kind = "cpo"
    public static let keys = ["loss_type", "beta", "cpo_alpha", "simpo_gamma", "label_smoothing", "alpha"]
    public enum LossType: String, CaseIterable, Sendable { case sigmoid, hinge, ipo, simpo }

    public var lossType: LossType
    public var beta: Double
    public var cpoAlpha: Double
    public var gamma: Double
    public var labelSmoothing: Double
    public var alpha: Double

    public init(lossType: LossType = .sigmoid, beta: Double = 0.1, cpoAlpha: Double = 1, gamma: Double = 0.5, labelSmoothing: Double = 0, alpha: Double = 0) {
        self.lossType = lossType
        self.beta = beta
        self.cpoAlpha = cpoAlpha
        self.gamma = gamma
        self.labelSmoothing = labelSmoothing
        self.alpha = alpha
    }

    public init(spec f: SpecFields) throws {
        let name = try f.string("loss_type", default: "sigmoid", oneOf: LossType.allCases.map(\.rawValue) + ["alphapo"])
        let alphapo = name == "alphapo"
        self.init(lossType: alphapo ? .simpo : LossType(rawValue: name)!,
                  beta: try f.double("beta", default: 0.1, min: 0, exclusiveMin: true),
                  cpoAlpha: alphapo ? 0 : try f.double("cpo_alpha", default: 1, min: 0),
                  gamma: try f.double("simpo_gamma", default: 0.5, min: 0),
                  labelSmoothing: try f.double("label_smoothing", default: 0, min: 0, max: 0.5, exclusiveMax: true),
                  alpha: try f.double("alpha", default: 0))
        if alphapo && f.has("cpo_alpha") { throw f.invalid("cpo_alpha", "no cpo_alpha with loss_type \"alphapo\" (it is simpo with cpo_alpha 0)") }
        if (lossType == .hinge || lossType == .ipo) && labelSmoothing > 0 {
            throw f.invalid("label_smoothing", "0 with loss_type \"\(lossType.rawValue)\" (TRL refuses label smoothing there)")
        }
    }

    public func encode(spec c: inout KeyedEncodingContainer<SpecKey>) throws {
        try c.encode(lossType.rawValue, "loss_type")
        try c.encode(beta, "beta")
        try c.encode(cpoAlpha, "cpo_alpha")
        try c.encode(gamma, "simpo_gamma")
        try c.encode(labelSmoothing, "label_smoothing")
        try c.encode(alpha, "alpha")
    }

    public var needsReference: Bool { false }
    public var rewardScale: Double { beta }

    var averages: Bool { lossType == .ipo || lossType == .simpo }

    /// u and du/dpi for one response.
    func transformed(_ sum: Double, tokens: Double) -> (u: Double, du: Double) {
        let n = averages ? max(tokens, 1) : 1
        let lp = sum / n
        guard alpha != 0 else { return (lp, 1 / n) }
        let e = exp(-alpha * lp)
        return ((1 - e) / alpha, e / n)
    }

    public func logps(_ q: PairQuantities) -> (chosen: Double, rejected: Double) {
        (transformed(q.policyChosen, tokens: q.chosenTokens).u, transformed(q.policyRejected, tokens: q.rejectedTokens).u)
    }

    public func pairLoss(_ q: PairQuantities) -> (loss: Double, dChosen: Double, dRejected: Double) {
        let (uc, dc) = transformed(q.policyChosen, tokens: q.chosenTokens), (ur, dr) = transformed(q.policyRejected, tokens: q.rejectedTokens)
        let d = uc - ur, eps = labelSmoothing
        var loss = 0.0, g = 0.0  // dLoss/dd
        switch lossType {
        case .sigmoid, .simpo:
            let x = beta * (lossType == .simpo ? d - gamma / beta : d)
            loss = (1 - eps) * softplus(-x) + eps * softplus(x)
            g = beta * (-(1 - eps) * sigmoid(-x) + eps * sigmoid(x))
        case .hinge:
            loss = max(0, 1 - beta * d)
            g = 1 - beta * d > 0 ? -beta : 0
        case .ipo:
            let m = d - 1 / (2 * beta)
            loss = m * m
            g = 2 * m
        }
        return (loss, g * dc, -g * dr)
    }

    public func batchLoss(_ pairs: [PairQuantities]) -> (loss: Double, dChosen: [Double], dRejected: [Double]) {
        addingChosenNLL(meanPairLoss(pairs), pairs, weight: cpoAlpha)
    }

    public func metrics(_ pairs: [PairQuantities]) -> [String: Double] { ["nll_loss": chosenNLL(pairs)] }
}

/// The mean negative log-likelihood of every chosen token of a batch, -(sum of pi_c) / (chosen tokens): TRL's
/// cross-entropy over the chosen completions (CPO's and ORPO's NLL term, DPO's `sft` loss type).
func chosenNLL(_ pairs: [PairQuantities]) -> Double {
    let tokens = pairs.reduce(0) { $0 + $1.chosenTokens }
    return tokens > 0 ? -pairs.reduce(0) { $0 + $1.policyChosen } / tokens : 0
}

/// A batch loss with `weight` times `chosenNLL` added: its derivative in each pi_c is -weight / (chosen tokens).
func addingChosenNLL(_ batch: (loss: Double, dChosen: [Double], dRejected: [Double]), _ pairs: [PairQuantities], weight: Double)
    -> (loss: Double, dChosen: [Double], dRejected: [Double]) {
    let tokens = pairs.reduce(0) { $0 + $1.chosenTokens }
    guard weight != 0, tokens > 0 else { return batch }
    return (batch.loss + weight * chosenNLL(pairs), batch.dChosen.map { $0 - weight / tokens }, batch.dRejected)
}
