#!/usr/bin/env python3
"""Reference numbers for the DPO loss family, computed by TRL's own DPOTrainer._compute_loss (developer tooling,
never run by tests or the product).

Feeds TRL's loss code per-token log-probabilities through a stand-in model output (so the loss sees exactly the
per-sequence sums and token counts we give it) and precomputed reference log-probabilities, in float64, and records
for each loss type (and f-divergence) the loss and its gradient with respect to each sequence's summed policy
log-probability (autograd: d loss / d logp_t is the same for every token of a sequence, since the loss reads only the
sum). Writes Tests/TrainingTests/Fixtures/trl-dpo-losses.json.

    python3 scripts/make-loss-fixtures.py   # with torch and trl importable (the reference virtualenv)

Also writes Tests/TrainingTests/Fixtures/trl-cpo-orpo-losses.json (CPO, AlphaPO, ORPO; see cpo_and_orpo).
"""
import json
import os
import types
from collections import defaultdict

import torch
import trl
from trl.trainer.dpo_trainer import DPOTrainer

torch.manual_seed(0)
PAIRS = 6
LENGTHS = [(3, 5), (7, 2), (4, 4), (1, 6), (5, 3), (2, 2)]  # (chosen, rejected) completion tokens
PROMPT = 2


def inputs():
    g = torch.Generator().manual_seed(1234)
    seqs = []
    for c, r in LENGTHS:
        seqs.append(c)
    rows = [c for c, _ in LENGTHS] + [r for _, r in LENGTHS]
    width = PROMPT + max(rows)
    completion_mask = torch.zeros(2 * PAIRS, width, dtype=torch.long)
    for i, n in enumerate(rows):
        completion_mask[i, PROMPT:PROMPT + n] = 1
    per_token = -torch.rand(2 * PAIRS, width - 1, generator=g, dtype=torch.float64) * 1.5
    per_token = per_token * completion_mask[:, 1:]  # TRL's log_probs are 0 outside the completion
    ref = per_token.sum(1) + (torch.rand(2 * PAIRS, generator=g, dtype=torch.float64) - 0.5) * 2.0
    # WPO's per-token log sum_v p(v)^2: in (-4, -0.5), drawn after the values above so those stay as they were
    log_sum_sq = (-0.5 - torch.rand(2 * PAIRS, width - 1, generator=g, dtype=torch.float64) * 3.5) * completion_mask[:, 1:]
    return completion_mask, per_token, ref, log_sum_sq


def run(loss_types, loss_weights=None, beta=0.1, label_smoothing=0.0, f_div="reverse_kl", f_alpha=0.5, tau=0.05,
        dtype=torch.float64, ld_alpha=None, use_weighting=False):
    completion_mask, per_token, ref, log_sum_sq = inputs()
    per_token, ref = per_token.to(dtype), ref.to(dtype)
    log_probs = per_token.clone().requires_grad_(True)
    width = completion_mask.shape[1]

    class Out:
        pass

    def model(**kwargs):
        o = Out()
        o.log_probs = log_probs
        o.entropy = torch.zeros_like(log_probs)
        o.mean_logits = torch.zeros_like(log_probs)
        o.is_top1 = torch.zeros_like(log_probs, dtype=torch.bool)
        o.log_sum_sq_probs = log_sum_sq.to(dtype)
        o.aux_loss = torch.tensor(0.0)
        return o

    model.training = True
    acc = types.SimpleNamespace(device="cpu", gather_for_metrics=lambda x: x, gather=lambda x: x, unwrap_model=lambda m: m)
    me = types.SimpleNamespace(
        model=model, accelerator=acc, aux_loss_enabled=False, ld_alpha=ld_alpha, precompute_ref_logps=True,
        f_divergence_type=f_div, f_alpha_divergence_coef=f_alpha, loss_types=loss_types,
        loss_weights=loss_weights or [1.0] * len(loss_types), beta=beta, label_smoothing=label_smoothing,
        args=types.SimpleNamespace(discopop_tau=tau, gradient_checkpointing_kwargs=None), use_weighting=use_weighting,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
        ref_model=None, router_aux_loss_coef=0.0,
    )
    batch = {
        "input_ids": torch.zeros(2 * PAIRS, width, dtype=torch.long),
        "attention_mask": torch.ones(2 * PAIRS, width, dtype=torch.long),
        "completion_mask": completion_mask,
        "ref_chosen_logps": ref[:PAIRS], "ref_rejected_logps": ref[PAIRS:],
    }
    loss = DPOTrainer._compute_loss(me, model, batch, False)
    loss.backward()
    grad = log_probs.grad
    # d loss / d (summed logp of sequence i): read at its first completion token
    d = [float(grad[i, PROMPT - 1]) for i in range(2 * PAIRS)]
    pi = per_token.sum(1).tolist()
    return {
        "loss": float(loss),
        "d_chosen": d[:PAIRS], "d_rejected": d[PAIRS:],
        "metrics": {k: v[-1] for k, v in me._metrics["train"].items() if k.startswith(("rewards/", "logps/"))},
        "dtype": str(dtype).replace("torch.", ""),
    }


def main():
    completion_mask, per_token, ref, log_sum_sq = inputs()
    pi = per_token.sum(1).tolist()
    out = {
        "trl_version": trl.__version__, "torch_version": torch.__version__,
        "pairs": [{"policy_chosen": pi[i], "policy_rejected": pi[PAIRS + i], "reference_chosen": float(ref[i]),
                   "reference_rejected": float(ref[PAIRS + i]), "chosen_tokens": LENGTHS[i][0], "rejected_tokens": LENGTHS[i][1],
                   "chosen_token_logprobs": per_token[i, PROMPT - 1:PROMPT - 1 + LENGTHS[i][0]].tolist(),
                   "rejected_token_logprobs": per_token[PAIRS + i, PROMPT - 1:PROMPT - 1 + LENGTHS[i][1]].tolist(),
                   "chosen_token_log_sum_squares": log_sum_sq[i, PROMPT - 1:PROMPT - 1 + LENGTHS[i][0]].tolist(),
                   "rejected_token_log_sum_squares": log_sum_sq[PAIRS + i, PROMPT - 1:PROMPT - 1 + LENGTHS[i][1]].tolist()}
                  for i in range(PAIRS)],
        "cases": [],
    }
    per_pair = ["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "apo_zero", "apo_down",
                "discopop", "sigmoid_norm"]
    for lt in per_pair:
        for beta in (0.1, 0.7):
            ls = 0.2 if lt in ("exo_pair", "robust") else 0.0
            out["cases"].append({"loss_type": [lt], "beta": beta, "label_smoothing": ls, "f_divergence_type": "reverse_kl",
                                 **run([lt], beta=beta, label_smoothing=ls)})
    for f in ("forward_kl", "js_divergence", "alpha_divergence"):
        for lt in ("sigmoid", "bco_pair"):
            out["cases"].append({"loss_type": [lt], "beta": 0.3, "label_smoothing": 0.0, "f_divergence_type": f, "f_alpha": 0.5,
                                 # TRL's alpha divergence accepts no float64 (its clamp table): float32 there
                                 **run([lt], beta=0.3, f_div=f, f_alpha=0.5,
                                       dtype=torch.float32 if f == "alpha_divergence" else torch.float64)})
    out["cases"].append({"loss_type": ["sigmoid", "apo_zero"], "loss_weights": [1.0, 0.5], "beta": 0.2, "label_smoothing": 0.0,
                         "f_divergence_type": "reverse_kl", **run(["sigmoid", "apo_zero"], [1.0, 0.5], beta=0.2)})
    # LD-DPO: the policy's sums become shared + ld_alpha * tail (the reference values are given, as precomputed)
    for lt in ("sigmoid", "ipo"):
        out["cases"].append({"loss_type": [lt], "beta": 0.2, "label_smoothing": 0.0, "f_divergence_type": "reverse_kl", "ld_alpha": 0.5,
                             **run([lt], beta=0.2, ld_alpha=0.5)})
    # the loss types that read the whole batch: AOT sorts it, sft is the NLL of its chosen tokens (RPO = sigmoid + sft)
    for lt, ls in (("aot", 0.0), ("aot", 0.1), ("aot_unpaired", 0.0), ("aot_unpaired", 0.1)):
        out["cases"].append({"loss_type": [lt], "beta": 0.4, "label_smoothing": ls, "f_divergence_type": "reverse_kl",
                             **run([lt], beta=0.4, label_smoothing=ls)})
    out["cases"].append({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 1.0], "beta": 0.1, "label_smoothing": 0.0,
                         "f_divergence_type": "reverse_kl", **run(["sigmoid", "sft"], [1.0, 1.0], beta=0.1)})
    # WPO: each pair's loss times its (detached) weight w_c w_r. (With "sft" in the list TRL 1.16 fails: it multiplies the
    # expanded batch NLL in place. Ours multiplies that NLL by the batch's mean weight, what its code states.)
    for lts, ws in ((["sigmoid"], None), (["ipo"], None), (["sigmoid", "apo_zero"], [1.0, 0.5])):
        out["cases"].append({"loss_type": lts, "loss_weights": ws, "beta": 0.3, "label_smoothing": 0.0, "f_divergence_type": "reverse_kl",
                             "use_weighting": True, **run(lts, ws, beta=0.3, use_weighting=True)})
    path = os.path.join(os.path.dirname(__file__), "..", "Tests", "TrainingTests", "Fixtures", "trl-dpo-losses.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", os.path.normpath(path), len(out["cases"]), "cases with trl", trl.__version__)



def cpo_and_orpo():
    """CPO (its loss types, AlphaPO) and ORPO, through TRL's own CPOTrainer.cpo_loss and ORPOTrainer.odds_ratio_loss on
    the fixture's per-sequence sums: averaged by the token counts where TRL averages (get_batch_logps with
    average_log_prob), plus the NLL of the chosen tokens (TRL's cross-entropy over every chosen token of the batch, which
    for these inputs is -(sum of chosen log-probabilities) / (number of chosen tokens)); gradients by autograd with
    respect to each sequence's summed log-probability. ORPO's odds_ratio_loss casts to float32 (so its cases are float32)."""
    from trl.experimental.cpo.cpo_trainer import CPOTrainer
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer
    completion_mask, per_token, ref, _ = inputs()
    sums = per_token.sum(1)
    counts = torch.tensor([c for c, _ in LENGTHS] + [r for _, r in LENGTHS], dtype=torch.float64)
    acc = types.SimpleNamespace(device="cpu")
    cases = []
    for loss_type, alpha, cpo_alpha, beta, gamma, ls in [
        ("sigmoid", 0.0, 1.0, 0.1, 0.5, 0.0), ("sigmoid", 0.0, 1.0, 0.5, 0.5, 0.2), ("hinge", 0.0, 1.0, 0.3, 0.5, 0.0),
        ("ipo", 0.0, 1.0, 0.2, 0.5, 0.0), ("simpo", 0.0, 0.0, 2.0, 1.0, 0.0), ("simpo", 0.0, 0.5, 0.7, 0.5, 0.1),
        ("simpo", 0.3, 0.0, 2.0, 0.5, 0.0), ("sigmoid", -0.2, 1.0, 0.5, 0.5, 0.0),
    ]:
        s = sums.clone().requires_grad_(True)
        logps = s / counts if loss_type in ("ipo", "simpo") else s
        me = types.SimpleNamespace(alpha=alpha, loss_type=loss_type, simpo_gamma=gamma, beta=beta, label_smoothing=ls, accelerator=acc)
        losses, cr, rr = CPOTrainer.cpo_loss(me, logps[:PAIRS], logps[PAIRS:])
        nll = -s[:PAIRS].sum() / counts[:PAIRS].sum()
        loss = losses.mean() + cpo_alpha * nll
        loss.backward()
        cases.append({"kind": "cpo", "loss_type": loss_type, "alpha": alpha, "cpo_alpha": cpo_alpha, "beta": beta, "simpo_gamma": gamma,
                      "label_smoothing": ls, "loss": float(loss), "d_chosen": s.grad[:PAIRS].tolist(), "d_rejected": s.grad[PAIRS:].tolist(),
                      "nll_loss": float(nll), "rewards_chosen": float(cr.mean()), "rewards_rejected": float(rr.mean()), "dtype": "float64"})
    for beta in (0.1, 0.5):
        s = sums.clone().requires_grad_(True)
        logps = s / counts
        me = types.SimpleNamespace(beta=beta, accelerator=acc)
        losses, cr, rr, ratio, log_odds = ORPOTrainer.odds_ratio_loss(me, logps[:PAIRS], logps[PAIRS:])
        nll = -s[:PAIRS].sum() / counts[:PAIRS].sum()
        loss = nll - losses.mean()
        loss.backward()
        cases.append({"kind": "orpo", "beta": beta, "loss": float(loss), "d_chosen": s.grad[:PAIRS].tolist(), "d_rejected": s.grad[PAIRS:].tolist(),
                      "nll_loss": float(nll), "log_odds_ratio": float(ratio), "log_odds_chosen": float(log_odds), "dtype": "float32"})
    path = os.path.join(os.path.dirname(__file__), "..", "Tests", "TrainingTests", "Fixtures", "trl-cpo-orpo-losses.json")
    with open(path, "w") as f:
        json.dump({"trl_version": trl.__version__, "cases": cases}, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", os.path.normpath(path), len(cases), "cases")


if __name__ == "__main__":
    main()
    cpo_and_orpo()
