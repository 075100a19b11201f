/// The numbers recorded per (run, step, response) beside the summed log-probability (`logprobs.logprob`),
/// in the store's `measures` table under these names. For a response y = (y_1..y_L) scored after its
/// prompt x, with p_l = p(. | x, y_<l) the model's next-token distribution at response position l
/// (teacher forcing: the response's own tokens are the context, never the model's choices). Formulas,
/// and why each is recorded, in analysis/README.md. The computation is `measureValues` (module Kernels),
/// from the `TokenDistribution` of every position.
public enum Measure: String, CaseIterable, Sendable {
    /// (1/L) sum_l log p_l(y_l).
    case meanTokenLogprob = "mean_token_logprob"
    /// sum_l log max_v p_l(v): the teacher-forced argmax sequence's log-probability (the learning-dynamics
    /// paper's "argmax").
    case argmaxLogprob = "argmax_logprob"
    /// (1/L) #{l : y_l = argmax_v p_l(v)}.
    case argmaxMatch = "argmax_match"
    /// sum_l log(1 - max_v p_l(v)): the mass left outside the argmax.
    case exceptArgmax = "except_argmax"
    /// (1/L) sum_l H(p_l), in nats.
    case entropy
    /// (1/L) sum_l (1 - p_l(y_l)).
    case energy
    /// (1/L) sum_l ||p_l - onehot(y_l)||_2.
    case pE = "p_e"
    /// (1/L) sum_l ||p_l||_2.
    case peakiness
    /// Greedy responses only: 1 when the decode stopped at an end-of-turn (stop) token, 0 when it ran
    /// out of `max_tokens`.
    case endedTurn = "ended_turn"
    /// Greedy responses only: tokens decoded (the stop token not counted).
    case generatedTokens = "generated_tokens"
    /// Reward models only: r(x, y) = w_r . h, h the final norm's output at the response's last token (the
    /// end of turn), the score the Bradley-Terry objective trains.
    case reward
    /// With `eval.kl`: sum_l KL(p_ref,l || p_l) over the response's positions, the reference's distribution p_ref (the
    /// objective's reference model, else the run's starting weights) against the model's, over the whole vocabulary.
    case klToReference = "kl_to_reference"
    /// With `eval.kl`: sum_l KL(p_l || p_ref,l).
    case reverseKLToReference = "reverse_kl_to_reference"
    /// On the `chosen` response of a probe that also has a `rejected` one: CHES (Razin et al. 2024) =
    /// <H+, H-> - ||H+||^2, H = sum of the final hidden states at the positions that predict the response's tokens.
    case ches
    /// The length-normalised CHES: <H+, H-> / (|y+| |y-|) - ||H+||^2 / |y+|^2.
    case chesNorm = "ches_norm"

    /// The measures computed from the next-token distributions of every scored response.
    public static let distributional: [Measure] = [
        .meanTokenLogprob, .argmaxLogprob, .argmaxMatch, .exceptArgmax, .entropy, .energy, .pE, .peakiness,
    ]

    /// Short axis label for figures.
    public var label: String {
        switch self {
        case .meanTokenLogprob: return "mean token log-probability"
        case .argmaxLogprob: return "log-probability of the argmax sequence"
        case .argmaxMatch: return "share of tokens that are the argmax"
        case .exceptArgmax: return "log mass outside the argmax (summed)"
        case .entropy: return "mean entropy (nats)"
        case .energy: return "mean 1 - p(token)"
        case .pE: return "mean ||p - onehot||"
        case .peakiness: return "mean ||p||"
        case .endedTurn: return "share ended with end of turn"
        case .generatedTokens: return "tokens decoded"
        case .reward: return "reward (reward model)"
        case .klToReference: return "KL(reference || model), summed over the response"
        case .reverseKLToReference: return "KL(model || reference), summed over the response"
        case .ches: return "CHES of the chosen and rejected responses"
        case .chesNorm: return "length-normalised CHES"
        }
    }
}
