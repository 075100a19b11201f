#!/usr/bin/env python3
"""Developer tooling (issue 39): reads the stores of experiments/lora-vs-full-lr.json5 and experiments/lora-vs-full.json5
and prints what docs/FINDINGS.md "LoRA against full fine-tuning" reports. Standard library only; never run by tests or the product.

    python3 scripts/lora-analysis.py SWEEP_STORE[,SWEEP_STORE...] EXPERIMENT_STORE > results/report-lora-vs-full/analysis.txt

(1) the learning-rate sweep: each run's mean training loss over its last 10 steps (one pass over the data: every
batch is new to the model), the rate chosen per stage; (2) per stage (full, LoRA r=8, r=64), mean and spread over the
seeds of each category's change in mean log-probability from step 0 to the last evaluation, on training and held-out
prompts; the gap chosen - random; the KL to the starting weights and the argmax/entropy measures at the last
evaluation; and each run's time (wall clock, and the median training step, which pauses do not skew).
"""
import math
import sqlite3
import statistics
import sys
from collections import defaultdict


def spread(xs):
    if len(xs) < 2:
        return f"{xs[0]:+.3f}" if xs else "-"
    return f"{statistics.mean(xs):+.3f} ± {statistics.stdev(xs):.3f} (n {len(xs)}; {min(xs):+.3f}..{max(xs):+.3f})"


def stage_of(name):
    parts = name.split("/")
    return parts[1] if len(parts) > 1 else name


def sweep(paths):
    print("== (1) learning-rate sweep: mean training loss over steps 31-40 (seed 1) ==")
    best = {}
    runs = []
    for path in paths:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        runs += [(db, rid, name) for rid, name in db.execute("SELECT id, name FROM runs WHERE status = 'finished' ORDER BY id")]
    for db, rid, name in sorted(runs, key=lambda r: (stage_of(r[2]), r[0].execute("SELECT value FROM params WHERE run_id = ? AND key = 'train.lr'", (r[1],)).fetchone()[0])):
        rows = db.execute("SELECT value FROM train_metrics WHERE run_id = ? AND name = 'loss' AND step > 30", (rid,)).fetchall()
        lr = db.execute("SELECT value FROM params WHERE run_id = ? AND key = 'train.lr'", (rid,)).fetchone()[0]
        if len(rows) < 10:
            print(f"  {name}: unfinished ({len(rows)} of the last 10 steps)")
            continue
        loss = statistics.mean(v for (v,) in rows)
        seconds = db.execute("SELECT max(value) FROM train_metrics WHERE run_id = ? AND name = 'elapsed'", (rid,)).fetchone()[0]
        print(f"  {name:40s} lr {lr:8.1e}  loss(31-40) {loss:.4f}  ({seconds:.0f} s)")
        stage = stage_of(name)
        if stage not in best or loss < best[stage][1]:
            best[stage] = (lr, loss)
    for stage, (lr, loss) in best.items():
        print(f"  chosen for {stage}: lr {lr:.1e} (loss {loss:.4f})")


def experiment(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    runs = db.execute("SELECT id, name FROM runs WHERE status = 'finished' ORDER BY id").fetchall()
    by_stage = defaultdict(list)
    for rid, name in runs:
        by_stage[stage_of(name)].append((rid, name))
    print("\n== (2) change from step 0 to the last evaluation, mean log-probability per response (nats), mean ± sd over seeds ==")
    for stage, members in by_stage.items():
        print(f"-- {stage}: {', '.join(n for _, n in members)}")
        deltas = defaultdict(list)
        measures = defaultdict(list)
        times, steps = [], []
        for rid, name in members:
            last = db.execute("SELECT max(step) FROM logprobs WHERE run_id = ?", (rid,)).fetchone()[0]
            rows = db.execute("""SELECT r.category, p.split, avg(e.logprob - s.logprob), avg((e.logprob - s.logprob) / e.n_tokens)
                                 FROM logprobs e JOIN logprobs s ON s.run_id = e.run_id AND s.step = 0 AND s.response_id = e.response_id
                                 JOIN responses r ON r.id = e.response_id JOIN probes p ON p.id = r.probe_id
                                 WHERE e.run_id = ? AND e.step = ? GROUP BY 1, 2""", (rid, last)).fetchall()
            per = {}
            for c, split, d, dt in rows:
                deltas[(c, split)].append(d)
                per[(c, split)] = d
            for split in ("train", "heldout"):
                if ("chosen", split) in per and ("random", split) in per:
                    deltas[("chosen - random", split)].append(per[("chosen", split)] - per[("random", split)])
            for m in ("kl_to_reference", "reverse_kl_to_reference", "argmax_match", "entropy"):
                for c, start, end in db.execute("""SELECT r.category, avg(s.value), avg(e.value) FROM measures e
                                                   JOIN measures s ON s.run_id = e.run_id AND s.step = 0 AND s.response_id = e.response_id AND s.name = e.name
                                                   JOIN responses r ON r.id = e.response_id
                                                   WHERE e.run_id = ? AND e.step = ? AND e.name = ? GROUP BY 1""", (rid, last, m)):
                    measures[(m, c)].append((start, end))
            t = db.execute("SELECT (julianday(finished_at) - julianday(started_at)) * 86400 FROM runs WHERE id = ?", (rid,)).fetchone()[0]
            if t is not None:
                times.append(t)
            # the median step (differences of `elapsed`): robust to the run being paused for other work on the machine
            el = [v for (v,) in db.execute("SELECT value FROM train_metrics WHERE run_id = ? AND name = 'elapsed' ORDER BY step", (rid,))]
            if len(el) > 2:
                steps.append(statistics.median(b - a for a, b in zip(el, el[1:])))
        for (c, split) in sorted(deltas):
            print(f"  {c:22s} {split:8s} {spread(deltas[(c, split)])}")
        for (m, c) in sorted(measures):
            ends = [e for _, e in measures[(m, c)]]
            starts = [s for s, _ in measures[(m, c)]]
            print(f"  {m:24s} {c:22s} step 0 {statistics.mean(starts):.4f} -> last {spread(ends)}")
        if times:
            print(f"  run time {statistics.mean(times) / 60:.1f} min (range {min(times) / 60:.1f}-{max(times) / 60:.1f}; wall clock, pauses included)")
        if steps:
            print(f"  median training step {statistics.mean(steps):.2f} s (per-run medians {min(steps):.2f}-{max(steps):.2f})")
        metrics = db.execute("SELECT name, value FROM train_metrics WHERE run_id = ? AND step = 1 AND name IN ('trainable_params', 'total_params')",
                             (members[0][0],)).fetchall()
        if metrics:
            print("  " + ", ".join(f"{n} {v:,.0f}" for n, v in metrics))


def main():
    sweep(sys.argv[1].split(","))
    if len(sys.argv) > 2:
        experiment(sys.argv[2])


if __name__ == "__main__":
    main()
