#!/usr/bin/env python3
"""Developer tooling (issue 38): reads a store written by experiments/attribution.json5 and the experiment's data files,
and prints what docs/FINDINGS.md "Why it moved" reports. Standard library only; never run by tests or the product.

    python3 scripts/attribution-analysis.py STORE [EXPERIMENT_DIR] > results/report-attribution/analysis.txt

Sections: (1) how well the first-order prediction follows the observed one-step change, per stage, category and
step; (2) which training examples drove the rise of `random` during SFT (the example whose chosen response is the
random text, the example with the probe's own prompt, or others); (3) under DPO, whether CHES at the stage's start
ranks the probes whose chosen response fell most (Spearman); (4) KL to the reference and where the mass went.
"""
import json
import math
import sqlite3
import sys
from collections import Counter, defaultdict


def pearson(x, y):
    n = len(x)
    if n < 3:
        return float("nan")
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def ranks(x):
    order = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(x, y):
    return pearson(ranks(x), ranks(y))


def spearman_p(rho, n):
    """Two-sided p-value of Spearman's rho by the t approximation (n - 2 degrees of freedom), via the regularised
    incomplete beta function (continued fraction)."""
    if n < 4 or abs(rho) >= 1:
        return float("nan")
    t = rho * math.sqrt((n - 2) / (1 - rho * rho))
    df = n - 2
    x = df / (df + t * t)
    return betainc(df / 2, 0.5, x)


def betainc(a, b, x):
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbeta) * contfrac(a, b, x) / a
    return 1 - math.exp(lbeta) * contfrac(b, a, 1 - x) / b


def contfrac(a, b, x):
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-12:
            break
    return h


def key(value):
    return json.dumps(value, sort_keys=True)


def words(value):
    """The set of lower-case words of a text, or of a conversation's contents."""
    if isinstance(value, list):
        value = " ".join(m.get("content", "") for m in value)
    return set("".join(ch.lower() if ch.isalnum() else " " for ch in value).split())


def jaccard(a, b):
    return len(a & b) / len(a | b) if a | b else 0.0


def main():
    store = sys.argv[1]
    folder = sys.argv[2] if len(sys.argv) > 2 else "experiments"
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    train = [json.loads(line) for line in open(f"{folder}/data/helpful-train.jsonl") if line.strip()]
    probes_file = [json.loads(line) for line in open(f"{folder}/data/helpful-probes.jsonl") if line.strip()]
    runs = {name: rid for rid, name in db.execute("SELECT id, name FROM runs")}
    print(f"store {store}; runs: {', '.join(sorted(runs))}")

    # (1) the fit
    print("\n== (1) predicted against observed one-step changes (Pearson r over the (step, response) rows) ==")
    for name, rid in sorted(runs.items(), key=lambda kv: kv[1]):
        rows = db.execute("""SELECT a.step, r.category, a.predicted, a.observed FROM attributions a
                             JOIN responses r ON r.id = a.response_id WHERE a.run_id = ?""", (rid,)).fetchall()
        if not rows:
            continue
        lr = {s: v for s, v in db.execute("SELECT step, value FROM train_metrics WHERE run_id = ? AND name = 'lr'", (rid,))}
        print(f"{name}: {len(rows)} rows; all categories r = {pearson([r[2] for r in rows], [r[3] for r in rows]):.3f}, "
              f"sum predicted {sum(r[2] for r in rows):.3f} vs observed {sum(r[3] for r in rows):.3f} nats")
        by = defaultdict(list)
        for s, c, p, o in rows:
            by[c].append((p, o))
        for c in sorted(by):
            p, o = zip(*by[c])
            slope = sum(a * b for a, b in zip(p, o)) / sum(a * a for a in p)
            err = sum(abs(a - b) for a, b in zip(p, o)) / len(p)
            print(f"  {c:22s} n {len(p):4d}  r {pearson(p, o):6.3f}  observed/predicted slope {slope:6.3f}  "
                  f"mean |obs - pred| {err:.4f}  mean obs {sum(o) / len(o):+.4f}")
        steps = sorted({r[0] for r in rows})
        line = []
        for s in steps:
            p = [r[2] for r in rows if r[0] == s]
            o = [r[3] for r in rows if r[0] == s]
            slope = sum(a * b for a, b in zip(p, o)) / sum(a * a for a in p) if any(p) else float("nan")
            line.append(f"{s}: r {pearson(p, o):.3f} slope {slope:.2f} (lr {lr.get(s, float('nan')):.1e}, mean |obs| {sum(map(abs, o)) / len(o):.3f})")
        print("  by step:\n    " + "\n    ".join(line))

    # (2) random's sources during SFT
    sft = runs.get("attribution/sft")
    if sft is not None:
        print("\n== (2) what raised `random` during SFT: each influences row of a random response, by what the example is ==")
        probes = {pid: (idx, prompt) for pid, idx, prompt in db.execute("SELECT id, idx, prompt FROM probes")}
        rows = db.execute("""SELECT i.step, i.response_id, r.probe_id, r.category, r.text, i.example, i.contribution, i.cosine
                             FROM influences i JOIN responses r ON r.id = i.response_id
                             WHERE i.run_id = ? AND i.example >= 0""", (sft,)).fetchall()
        carried = dict(((s, rid), c) for s, rid, c in db.execute(
            "SELECT step, response_id, contribution FROM influences WHERE run_id = ? AND example = -1", (sft,)))
        for category in ["random", "chosen", "non_response"]:
            classes = defaultdict(list)
            twins = Counter()
            for step, rid, pid, cat, text, example, contribution, cosine in rows:
                if cat != category:
                    continue
                ex = train[example]
                probe = probes_file[probes[pid][0]]
                same_response = ex.get("chosen") == text
                same_prompt = key(ex["prompt"]) == key(probe["prompt"])
                kind = ("response twin and prompt twin" if same_response and same_prompt else "response twin (its chosen is this text)"
                        if same_response else "prompt twin (the probe's own prompt)" if same_prompt else "other example")
                classes[kind].append((contribution, cosine, step, rid))
            total = sum(c for v in classes.values() for c, *_ in v)
            print(f"{category}: {sum(map(len, classes.values()))} (step, response, example) rows, summed contribution {total:+.4f} nats; "
                  f"carried part {sum(v for (s, r), v in carried.items() if any(r == x[3] for vs in classes.values() for x in vs)):+.4f}")
            for kind in sorted(classes):
                v = classes[kind]
                cs = [c for c, *_ in v]
                cos = [x for _, x, *_ in v if x is not None]
                # rank of these rows' contribution among the examples of the same (step, response)
                rank = []
                for c, _, s, r in v:
                    peers = sorted((x[6] for x in rows if x[0] == s and x[1] == r), reverse=True)
                    rank.append(peers.index(c) + 1)
                print(f"  {kind:40s} rows {len(v):4d}  mean contribution {sum(cs) / len(cs):+.5f}  share of sum {sum(cs) / total if total else float('nan'):6.1%}  "
                      f"mean cos {sum(cos) / len(cos):+.3f}  mean rank in its batch {sum(rank) / len(rank):.2f} of 4")
            # beyond twins: does an example's contribution follow how much its response, or its prompt, shares words
            # with the probe's response / prompt? (Spearman over the rows of examples that are neither twin)
            resp_sim, prompt_sim, contrib, cosines = [], [], [], []
            for step, rid, pid, cat, text, example, contribution, cosine in rows:
                if cat != category:
                    continue
                ex = train[example]
                probe = probes_file[probes[pid][0]]
                if ex.get("chosen") == text or key(ex["prompt"]) == key(probe["prompt"]):
                    continue
                resp_sim.append(jaccard(words(ex.get("chosen", "")), words(text)))
                prompt_sim.append(jaccard(words(ex["prompt"]), words(probe["prompt"])))
                contrib.append(contribution)
                cosines.append(cosine)
            if len(contrib) > 3:
                for label, sim in [("its response's words vs the probe response's", resp_sim), ("its prompt's words vs the probe prompt's", prompt_sim)]:
                    rc, rs = spearman(sim, contrib), spearman(sim, cosines)
                    print(f"  other examples, Jaccard of {label}: Spearman with contribution {rc:+.3f} (p {spearman_p(rc, len(sim)):.3g}), "
                          f"with cosine {rs:+.3f} (p {spearman_p(rs, len(sim)):.3g}), n {len(sim)}")

    # (3) CHES under DPO
    dpo = runs.get("attribution/dpo")
    if dpo is not None:
        print("\n== (3) DPO: does CHES at the stage's start rank the probes whose chosen response fell most? ==")
        last = db.execute("SELECT max(step) FROM logprobs WHERE run_id = ?", (dpo,)).fetchone()[0]
        rows = db.execute("""SELECT r.id, p.split,
                                    (SELECT value FROM measures m WHERE m.run_id = ? AND m.step = 0 AND m.response_id = r.id AND m.name = 'ches'),
                                    (SELECT value FROM measures m WHERE m.run_id = ? AND m.step = 0 AND m.response_id = r.id AND m.name = 'ches_norm'),
                                    s.logprob, e.logprob, s.n_tokens
                             FROM responses r JOIN probes p ON p.id = r.probe_id
                             JOIN logprobs s ON s.run_id = ? AND s.step = 0 AND s.response_id = r.id
                             JOIN logprobs e ON e.run_id = ? AND e.step = ? AND e.response_id = r.id
                             WHERE r.category = 'chosen'""", (dpo, dpo, dpo, dpo, last)).fetchall()
        rows = [r for r in rows if r[2] is not None]
    if dpo is not None and rows:
        change = [r[5] - r[4] for r in rows]
        per_token = [(r[5] - r[4]) / r[6] for r in rows]
        print(f"{len(rows)} probes; chosen's change step 0 -> {last}: mean {sum(change) / len(change):+.3f} nats, "
              f"{sum(c < 0 for c in change)} fell")
        for label, xs in [("ches", [r[2] for r in rows]), ("ches_norm", [r[3] for r in rows])]:
            for target, ys in [("change", change), ("change per token", per_token)]:
                rho = spearman(xs, ys)
                print(f"  Spearman({label}, chosen's {target}) = {rho:+.3f} (p {spearman_p(rho, len(xs)):.3f}; the paper: negative)")
        for split in ["train", "heldout"]:
            sub = [(r[3], r[5] - r[4]) for r in rows if r[1] == split]
            rho = spearman([a for a, _ in sub], [b for _, b in sub])
            print(f"  {split}: n {len(sub)}, Spearman(ches_norm, change) = {rho:+.3f} (p {spearman_p(rho, len(sub)):.3f})")
        pairs = db.execute("SELECT value FROM pair_measures WHERE run_id = ? AND name = 'ches_norm'", (dpo,)).fetchall()
        if pairs:
            vals = sorted(v for (v,) in pairs)
            print(f"  training pairs (pair_measures): {len(vals)}; ches_norm median {vals[len(vals) // 2]:.1f}, "
                  f"range {vals[0]:.1f} to {vals[-1]:.1f}")

    # (4) KL and the mass
    print("\n== (4) KL to the reference at the last evaluation (mean over responses, nats summed over positions) ==")
    for name, rid in sorted(runs.items(), key=lambda kv: kv[1]):
        last = db.execute("SELECT max(step) FROM measures WHERE run_id = ? AND name = 'kl_to_reference'", (rid,)).fetchone()[0]
        if last is None:
            continue
        rows = db.execute("""SELECT r.category, avg(m.value), avg(k.value) FROM measures m JOIN responses r ON r.id = m.response_id
                             JOIN measures k ON k.run_id = m.run_id AND k.step = m.step AND k.response_id = m.response_id AND k.name = 'reverse_kl_to_reference'
                             WHERE m.run_id = ? AND m.step = ? AND m.name = 'kl_to_reference' GROUP BY r.category ORDER BY r.category""",
                          (rid, last)).fetchall()
        print(f"{name} (step {last}): " + "; ".join(f"{c} {a:.2f} / {b:.2f}" for c, a, b in rows) + "  (KL(ref||model) / KL(model||ref))")
    print("\n== artifact check: where in the responses each category's change sits (first evaluation to last; first token, "
          "body, end-of-turn token) ==")
    for name, rid in sorted(runs.items(), key=lambda kv: kv[1]):
        steps = db.execute("SELECT min(step), max(step) FROM token_logprobs WHERE run_id = ?", (rid,)).fetchone()
        if steps[0] is None:
            continue
        rows = db.execute("""SELECT r.category,
                                    CASE WHEN e.position = 0 THEN 'first' WHEN e.position = l.n_tokens - 1 THEN 'end' ELSE 'body' END,
                                    sum(e.logprob - s.logprob), count(DISTINCT e.response_id)
                             FROM token_logprobs e
                             JOIN token_logprobs s ON s.run_id = e.run_id AND s.step = ? AND s.response_id = e.response_id AND s.position = e.position
                             JOIN logprobs l ON l.run_id = e.run_id AND l.step = e.step AND l.response_id = e.response_id
                             JOIN responses r ON r.id = e.response_id
                             WHERE e.run_id = ? AND e.step = ? GROUP BY 1, 2""", (steps[0], rid, steps[1])).fetchall()
        by = defaultdict(dict)
        for c, part, total, n in rows:
            by[c][part] = total / n
        print(f"{name} (step {steps[0]} -> {steps[1]}), mean change per response: " + "; ".join(
            f"{c} first {v.get('first', 0):+.2f} body {v.get('body', 0):+.2f} end {v.get('end', 0):+.2f}" for c, v in sorted(by.items())))
    print("\n== where the mass went: at the last evaluation, positions whose token fell by more than 1 nat, the tokens that took it ==")
    for name, rid in sorted(runs.items(), key=lambda kv: kv[1]):
        last = db.execute("SELECT max(step) FROM token_logprobs WHERE run_id = ? AND gain_token IS NOT NULL", (rid,)).fetchone()[0]
        if last is None:
            continue
        rows = db.execute("""SELECT r.category, tt.text, t.token = t.gain_token FROM token_logprobs t
                             JOIN token_logprobs f ON f.run_id = t.run_id AND f.step = 0 AND f.response_id = t.response_id AND f.position = t.position
                             JOIN responses r ON r.id = t.response_id
                             LEFT JOIN token_texts tt ON tt.run_id = t.run_id AND tt.token = t.gain_token
                             WHERE t.run_id = ? AND t.step = ? AND t.logprob - f.logprob < -1""", (rid, last)).fetchall()
        by = defaultdict(Counter)
        for c, text, _ in rows:
            by[c][text] += 1
        print(f"{name} (step {last}): {len(rows)} positions")
        for c in sorted(by):
            top = ", ".join(f"{json.dumps(t)} {n}" for t, n in by[c].most_common(6))
            print(f"  {c:22s} {sum(by[c].values()):5d}: {top}")


if __name__ == "__main__":
    main()
