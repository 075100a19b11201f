import Base
import Foundation

/// DPO (Rafailov et al. 2023) and the loss types of TRL's `DPOTrainer` (its `loss_type`, checked against TRL 1.16 by
/// `scripts/make-loss-fixtures.py`). Per pair, with log-ratios r_c = pi_c - ref_c and r_r = pi_r - ref_r (summed
/// log-probabilities), scores s = f'(r) of the f-divergence (`reverse_kl`: s = r; `forward_kl`: s = 1 - e^-r;
/// `js_divergence`: s = log 2 + log sigmoid(r); `alpha_divergence`: s = (e^((a-1) r) - 1) / (a - 1), a =
/// `f_alpha_divergence_coef`, (a-1) r clamped at 80 as TRL does), Delta = s_c - s_r and x = beta Delta:
///
/// - `sigmoid`: -(1 - eps) log sigmoid(x) - eps log sigmoid(-x) (eps = `label_smoothing` > 0 is our conservative DPO;
///   TRL's current `sigmoid` has no smoothing, so eps = 0 is TRL's form); with `dpop_lambda` (DPOP, Pal et al. 2024,
///   arXiv 2402.13228; not in TRL) x becomes beta (Delta - lambda max(0, ref_c - pi_c)), a penalty when the chosen
///   response falls below the reference;
/// - `hinge`: max(0, 1 - x); `ipo`: (s_c / N_c - s_r / N_r - 1 / (2 beta))^2 (N the response's tokens);
/// - `exo_pair`: q_w (log q_w - log(1 - eps)) + q_l (log q_l - log eps), q_w = sigmoid(x), q_l = sigmoid(-x), eps > 0
///   (TRL forms log(1 - eps) and log eps in float32, so its loss differs from ours by up to ~1e-8);
/// - `nca_pair`: -log sigmoid(beta r_c) - 0.5 log sigmoid(-beta r_c) - 0.5 log sigmoid(-beta r_r);
/// - `robust`: ((1 - eps)(-log sigmoid(x)) - eps (-log sigmoid(-x))) / (1 - 2 eps);
/// - `bco_pair`: -log sigmoid(beta r_c) - log sigmoid(-beta r_r);
/// - `sppo_hard`: (r_c - 1 / (2 beta))^2 + (r_r + 1 / (2 beta))^2 (these three read the log-ratios, not the scores, as
///   TRL 1.16 does);
/// - `apo_zero`: 1 - sigmoid(beta r_c) + sigmoid(beta r_r); `apo_down`: sigmoid(beta r_c) + 1 - sigmoid(x);
/// - `discopop`: -log sigmoid(x) (1 - m) + e^-x m, m = sigmoid(x / `discopop_tau`);
/// - `sigmoid_norm`: -log sigmoid(beta (s_c / N_c - s_r / N_r)).
///
/// Over the (micro-)batch as a whole (`batchLoss`): `aot`: the batch's policy margins pi_c - pi_r and reference margins
/// ref_c - ref_r are each sorted, delta_k = sorted policy margin k - sorted reference margin k, loss = mean over k of
/// -(1 - eps) log sigmoid(beta delta_k) - eps log sigmoid(-beta delta_k); `aot_unpaired`: the same with the chosen and
/// the rejected log-ratios sorted apart, delta_k = r_c(k) - r_r(k); `sft`: -(sum of the chosen log-probabilities) /
/// (number of chosen tokens), the mean NLL of every chosen token of the batch (RPO is `["sigmoid", "sft"]`).
///
/// `ld_alpha` (LD-DPO, in (0, 1], TRL's `ld_alpha`): every summed log-probability, the policy's and the reference's, is
/// shared + alpha * tail, the tail being a response's tokens beyond the pair's shared length (the shorter response's);
/// the token counts the normalised losses divide by stay the whole responses'. (alpha = 0, masking the tail, is not
/// offered: the weights would no longer tell the tail's tokens from the prompt's.)
///
/// `use_weighting` (WPO, Zhou et al. 2024, arXiv 2406.11827; TRL's `use_weighting`): each pair's loss (every loss type
/// but `aot` and `aot_unpaired`, which sort the batch and are refused with it) is multiplied by w_c w_r, w = exp(mean
/// over the response's tokens of (log pi(y_t) - log sum_v pi(v)^2)), the policy's length-normalised probability of the
/// response aligned by each position's collision probability, held constant (no gradient flows through it); `sft`'s
/// batch NLL is multiplied by the batch's mean of w_c w_r, as TRL multiplies its per-pair copies of it.
///
/// `sync_ref_model` (TR-DPO, Gorbatovski et al. 2024, arXiv 2404.09656; TRL's keys): after every
/// `ref_model_sync_steps`-th optimizer step the reference's weights become alpha theta + (1 - alpha) theta_ref, alpha =
/// `ref_model_mixup_alpha` (`ReferenceSync`).
///
/// A list of loss types adds them with `loss_weights` (default 1 each). Keys: `beta` (> 0, 0.1), `label_smoothing` ([0, 0.5), 0), `loss_type` ("sigmoid" or a list), `loss_weights`,
/// `f_divergence_type` ("reverse_kl"), `f_alpha_divergence_coef` (> 0, 1), `discopop_tau` (> 0, 0.05); every key
/// added since the first runs is left out of run identities while it has its default.
public struct DPO: PairObjective, Equatable {
    public static let kind = "dpo"
    public static let keys = ["beta", "label_smoothing", "loss_type", "loss_weights", "f_divergence_type", "f_alpha_divergence_coef", "discopop_tau",
                              "dpop_lambda", "ld_alpha", "use_weighting", "sync_ref_model", "ref_model_mixup_alpha", "ref_model_sync_steps"]

    public enum LossType: String, CaseIterable, Sendable {
        case sigmoid, hinge, ipo, exoPair = "exo_pair", ncaPair = "nca_pair", robust, bcoPair = "bco_pair", sppoHard = "sppo_hard"
        case apoZero = "apo_zero", apoDown = "apo_down", discopop, sigmoidNorm = "sigmoid_norm"
        /// Read the whole batch (`batchLoss`): AOT sorts the batch's log-ratios; `sft` is the NLL of all its chosen tokens.
        case aot, aotUnpaired = "aot_unpaired", sft

        var readsTheBatch: Bool { self == .aot || self == .aotUnpaired || self == .sft }
    }

    public enum Divergence: String, CaseIterable, Sendable {
        case reverseKL = "reverse_kl", forwardKL = "forward_kl", jsDivergence = "js_divergence", alphaDivergence = "alpha_divergence"
    }

    public var beta: Double
    public var labelSmoothing: Double
    public var lossTypes: [LossType]
    public var lossWeights: [Double]
    public var divergence: Divergence
    public var alphaCoefficient: Double
    public var discopopTau: Double
    /// DPOP's lambda (0: off).
    public var dpopLambda: Double
    /// LD-DPO's alpha (nil: off): tokens beyond the pair's shared length weigh alpha in the summed log-probabilities.
    public var ldAlpha: Double?
    /// WPO's weighting (`use_weighting`): each pair's loss times `PairQuantities.weight`.
    public var useWeighting: Bool
    /// TR-DPO's reference updates (nil: the reference stays fixed).
    public var referenceSync: ReferenceSync.Settings?

    public init(beta: Double, labelSmoothing: Double = 0, lossTypes: [LossType] = [.sigmoid], lossWeights: [Double]? = nil,
                divergence: Divergence = .reverseKL, alphaCoefficient: Double = 1, discopopTau: Double = 0.05, dpopLambda: Double = 0,
                ldAlpha: Double? = nil, useWeighting: Bool = false, referenceSync: ReferenceSync.Settings? = nil) {
        precondition(beta > 0 && labelSmoothing >= 0 && labelSmoothing < 0.5, "DPO: needs beta > 0 and 0 <= labelSmoothing < 0.5")
        precondition(!lossTypes.isEmpty && (lossWeights?.count ?? lossTypes.count) == lossTypes.count, "DPO: one weight per loss type")
        self.beta = beta
        self.labelSmoothing = labelSmoothing
        self.lossTypes = lossTypes
        self.lossWeights = lossWeights ?? lossTypes.map { _ in 1 }
        self.divergence = divergence
        self.alphaCoefficient = alphaCoefficient
        self.discopopTau = discopopTau
        self.dpopLambda = dpopLambda
        self.ldAlpha = ldAlpha
        self.useWeighting = useWeighting
        self.referenceSync = referenceSync
    }

    public init(spec f: SpecFields) throws {
        let known = LossType.allCases.map(\.rawValue)
        let expected = "one of \(known.map { "\"\($0)\"" }.joined(separator: ", ")), or a list of them"
        func lossType(_ v: JSONValue) throws -> LossType {
            guard case .string(let s) = v else { throw f.invalid("loss_type", expected) }
            guard let t = LossType(rawValue: s) else { throw f.invalid("loss_type", expected) }
            return t
        }
        var types: [LossType] = [.sigmoid]
        switch f.value("loss_type") {
        case nil: break
        case .array(let items)?:
            guard !items.isEmpty else { throw f.invalid("loss_type", expected) }
            types = try items.map(lossType)
        case let v?: types = [try lossType(v)]
        }
        var weights = types.map { _ in 1.0 }
        if let w = f.value("loss_weights") {
            let refusal = f.invalid("loss_weights", "a list of \(types.count) number\(types.count == 1 ? "" : "s") >= 0, one per loss_type")
            guard case .array(let items) = w, items.count == types.count else { throw refusal }
            weights = try items.map { item in
                guard case .number(let x) = item, x.isFinite, x >= 0 else { throw refusal }
                return x
            }
        }
        let eps = try f.double("label_smoothing", default: 0, min: 0, max: 0.5, exclusiveMax: true)
        if types.contains(.exoPair) && eps == 0 {
            throw f.invalid("label_smoothing", "a number in (0, 0.5) with loss_type \"exo_pair\" (its target distribution is (1 - eps, eps); TRL suggests 1e-3)")
        }
        self.init(beta: try f.double("beta", default: 0.1, min: 0, exclusiveMin: true), labelSmoothing: eps, lossTypes: types,
                  lossWeights: weights,
                  divergence: try f.choice("f_divergence_type", default: .reverseKL),
                  alphaCoefficient: try f.double("f_alpha_divergence_coef", default: 1, min: 0, exclusiveMin: true),
                  discopopTau: try f.double("discopop_tau", default: 0.05, min: 0, exclusiveMin: true),
                  dpopLambda: try f.double("dpop_lambda", default: 0, min: 0),
                  ldAlpha: f.has("ld_alpha") ? try f.double("ld_alpha", min: 0, max: 1, exclusiveMin: true) : nil,
                  useWeighting: try f.bool("use_weighting", default: false),
                  referenceSync: try f.bool("sync_ref_model", default: false)
                    ? ReferenceSync.Settings(alpha: try f.double("ref_model_mixup_alpha", default: 0.6, min: 0, max: 1, exclusiveMin: true),
                                             every: try f.int("ref_model_sync_steps", default: 512, min: 1)) : nil)
        if referenceSync == nil, let key = ["ref_model_mixup_alpha", "ref_model_sync_steps"].first(where: f.has) {
            throw f.invalid(key, "no value without sync_ref_model: true (it sets how TR-DPO moves the reference)")
        }
        if useWeighting, let sorted = lossTypes.first(where: { $0 == .aot || $0 == .aotUnpaired }) {
            throw f.invalid("use_weighting", "false with loss_type \"\(sorted.rawValue)\" (it sorts the batch, so a pair's weight would meet another pair's loss)")
        }
        if dpopLambda > 0 && !lossTypes.contains(.sigmoid) {
            throw f.invalid("dpop_lambda", "0 unless loss_type includes \"sigmoid\" (DPOP's penalty sits inside the sigmoid loss)")
        }
    }

    public func encode(spec c: inout KeyedEncodingContainer<SpecKey>) throws {
        try c.encode(beta, "beta")
        try c.encode(labelSmoothing, "label_smoothing")
        if lossTypes.count == 1 { try c.encode(lossTypes[0].rawValue, "loss_type") } else { try c.encode(lossTypes.map(\.rawValue), "loss_type") }
        try c.encode(lossWeights, "loss_weights")
        try c.encode(divergence.rawValue, "f_divergence_type")
        try c.encode(alphaCoefficient, "f_alpha_divergence_coef")
        try c.encode(discopopTau, "discopop_tau")
        try c.encode(dpopLambda, "dpop_lambda")
        if let ldAlpha { try c.encode(ldAlpha, "ld_alpha") }  // absent while off: earlier identities stay
        try c.encode(useWeighting, "use_weighting")
        try c.encode(referenceSync != nil, "sync_ref_model")
        if let referenceSync {  // absent while off: earlier identities stay
            try c.encode(referenceSync.alpha, "ref_model_mixup_alpha")
            try c.encode(referenceSync.every, "ref_model_sync_steps")
        }
    }

    public var rewardScale: Double { beta }

    /// The score s = f'(r) of a log-ratio and ds/dr.
    func score(_ r: Double) -> (s: Double, ds: Double) {
        switch divergence {
        case .reverseKL: return (r, 1)
        case .forwardKL: return (1 - exp(-r), exp(-r))
        case .jsDivergence: return (log(2) - softplus(-r), sigmoid(-r))
        case .alphaDivergence:
            let a1 = alphaCoefficient - 1
            if abs(a1) < 1e-6 { return (r, 1) }
            let t = a1 * r
            // TRL clamps (a - 1) r at 80 before the exponential: beyond it the score is constant
            return t > 80 ? ((exp(80) - 1) / a1, 0) : ((exp(t) - 1) / a1, exp(t))
        }
    }

    public func pairLoss(_ q: PairQuantities) -> (loss: Double, dChosen: Double, dRejected: Double) {
        let rc = q.policyChosen - q.referenceChosen, rr = q.policyRejected - q.referenceRejected
        let (sc, dsc) = score(rc), (sr, dsr) = score(rr)
        let (nc, nr) = (max(q.chosenTokens, 1), max(q.rejectedTokens, 1))
        let x = beta * (sc - sr), eps = labelSmoothing
        // per loss type: the loss, its derivatives with respect to the scores, and (apo) to the log-ratios directly
        var loss = 0.0, gsc = 0.0, gsr = 0.0, grc = 0.0, grr = 0.0
        for (type, w) in zip(lossTypes, lossWeights) {
            var l = 0.0, a = 0.0, b = 0.0, c = 0.0, d = 0.0  // dl/ds_c, dl/ds_r, dl/dr_c, dl/dr_r
            switch type {
            case .sigmoid:
                // DPOP: x - beta lambda max(0, ref_c - pi_c): the penalty for the chosen response falling below the reference
                let xp = x - beta * dpopLambda * max(0, -rc)
                l = (1 - eps) * softplus(-xp) + eps * softplus(xp)
                let g = beta * (-(1 - eps) * sigmoid(-xp) + eps * sigmoid(xp))
                (a, b) = (g, -g)
                if rc < 0 { c = g * dpopLambda }
            case .hinge:
                l = max(0, 1 - x)
                let g = 1 - x > 0 ? -beta : 0
                (a, b) = (g, -g)
            case .ipo:
                let m = sc / nc - sr / nr - 1 / (2 * beta)
                l = m * m
                (a, b) = (2 * m / nc, -2 * m / nr)
            case .exoPair:
                let (qw, ql) = (sigmoid(x), sigmoid(-x))
                let (logPw, logPl) = (log1p(-eps), log(eps))
                l = qw * (-softplus(-x) - logPw) + ql * (-softplus(x) - logPl)
                let g = beta * qw * ql * (x - logPw + logPl)
                (a, b) = (g, -g)
            case .ncaPair:
                let (xc, xr) = (beta * rc, beta * rr)
                l = softplus(-xc) + 0.5 * softplus(xc) + 0.5 * softplus(xr)
                (c, d) = (beta * (-sigmoid(-xc) + 0.5 * sigmoid(xc)), beta * 0.5 * sigmoid(xr))
            case .robust:
                l = ((1 - eps) * softplus(-x) - eps * softplus(x)) / (1 - 2 * eps)
                let g = beta * (-(1 - eps) * sigmoid(-x) - eps * sigmoid(x)) / (1 - 2 * eps)
                (a, b) = (g, -g)
            case .bcoPair:
                let (xc, xr) = (beta * rc, beta * rr)
                l = softplus(-xc) + softplus(xr)
                (c, d) = (-beta * sigmoid(-xc), beta * sigmoid(xr))
            case .sppoHard:
                let (u, v) = (rc - 0.5 / beta, rr + 0.5 / beta)
                l = u * u + v * v
                (c, d) = (2 * u, 2 * v)
            case .apoZero:
                let (pc, pr) = (sigmoid(beta * rc), sigmoid(beta * rr))
                l = 1 - pc + pr
                (c, d) = (-beta * pc * (1 - pc), beta * pr * (1 - pr))
            case .apoDown:
                let (pc, px) = (sigmoid(beta * rc), sigmoid(x))
                l = pc + 1 - px
                c = beta * pc * (1 - pc)
                let g = -beta * px * (1 - px)
                (a, b) = (g, -g)
            case .discopop:
                let m = sigmoid(x / discopopTau), e = exp(-x), logistic = softplus(-x)
                l = logistic * (1 - m) + e * m
                let dm = m * (1 - m) / discopopTau
                let g = beta * (-sigmoid(-x) * (1 - m) - logistic * dm - e * m + e * dm)
                (a, b) = (g, -g)
            case .sigmoidNorm:
                let xn = beta * (sc / nc - sr / nr)
                l = softplus(-xn)
                let g = -beta * sigmoid(-xn)
                (a, b) = (g / nc, -g / nr)
            case .aot, .aotUnpaired, .sft:
                continue  // read the whole batch: `batchLoss`
            }
            loss += w * l
            gsc += w * a
            gsr += w * b
            grc += w * c
            grr += w * d
        }
        // WPO: the pair's weight, a constant of the step
        let k = useWeighting ? q.weight : 1
        return (k * loss, k * (gsc * dsc + grc), k * (gsr * dsr + grr))
    }

    /// The mean of the per-pair loss types over the batch, plus the loss types that read the batch as a whole.
    public func batchLoss(_ pairs: [PairQuantities]) -> (loss: Double, dChosen: [Double], dRejected: [Double]) {
        let p = pairs.count
        guard p > 0 else { return (0, [], []) }
        let inv = 1 / Double(p)
        var (loss, dc, dr) = lossTypes.contains(where: { !$0.readsTheBatch }) ? meanPairLoss(pairs)
            : (0, [Double](repeating: 0, count: p), [Double](repeating: 0, count: p))
        let eps = labelSmoothing
        /// -(1 - eps) log sigmoid(beta d) - eps log sigmoid(-beta d) and its derivative in d.
        func smoothedSigmoid(_ d: Double) -> (Double, Double) {
            let x = beta * d
            return ((1 - eps) * softplus(-x) + eps * softplus(x), beta * (-(1 - eps) * sigmoid(-x) + eps * sigmoid(x)))
        }
        /// Indices ordered by value, ties by index (a stable sort, as torch.sort's order of equal values may be any).
        func order(_ v: [Double]) -> [Int] { v.indices.sorted { (v[$0], $0) < (v[$1], $1) } }
        for (type, w) in zip(lossTypes, lossWeights) where type.readsTheBatch {
            switch type {
            case .aot:
                let policy = order(pairs.map { $0.policyChosen - $0.policyRejected })
                let reference = pairs.map { $0.referenceChosen - $0.referenceRejected }.sorted()
                for (k, i) in policy.enumerated() {
                    let (l, g) = smoothedSigmoid(pairs[i].policyChosen - pairs[i].policyRejected - reference[k])
                    loss += w * l * inv
                    dc[i] += w * g * inv
                    dr[i] -= w * g * inv
                }
            case .aotUnpaired:
                let chosen = order(pairs.map { $0.policyChosen - $0.referenceChosen })
                let rejected = order(pairs.map { $0.policyRejected - $0.referenceRejected })
                for k in 0..<p {
                    let (i, j) = (chosen[k], rejected[k])
                    let (l, g) = smoothedSigmoid((pairs[i].policyChosen - pairs[i].referenceChosen) - (pairs[j].policyRejected - pairs[j].referenceRejected))
                    loss += w * l * inv
                    dc[i] += w * g * inv
                    dr[j] -= w * g * inv
                }
            case .sft:
                let k = useWeighting ? pairs.reduce(0) { $0 + $1.weight } * inv : 1
                (loss, dc, dr) = addingChosenNLL((loss, dc, dr), pairs, weight: w * k)
            default:
                continue
            }
        }
        return (loss, dc, dr)
    }
}
