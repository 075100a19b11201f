"""Reads an `alignscope export --format tensorboard` folder with TensorBoard's own event reader and compares every
scalar with the run store it came from. Developer tooling (issue 41): run in the reference virtualenv, never by tests or
the product; commit what it printed.

    /work/refvenv/bin/python scripts/check-tensorboard-export.py --db results/mine.sqlite --logdir results/mine-tb

Exits 1 on any difference: a tag, a step or a value (float32, as TensorBoard stores simple_value) missing or different.
"""
import argparse
import os
import sqlite3
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def expected(db, run_name):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    (run_id,) = con.execute("SELECT id FROM runs WHERE name = ? ORDER BY id DESC LIMIT 1", (run_name,)).fetchone()
    want = {}
    for step, name, value in con.execute("SELECT step, name, value FROM train_metrics WHERE run_id = ? AND value IS NOT NULL", (run_id,)):
        want.setdefault("train/" + ("learning_rate" if name == "lr" else name), {})[step] = f32(value)
    for step, split, category, mean, per_token in con.execute(
            "SELECT step, split, category, mean_logprob, mean_token_logprob FROM category_curves WHERE run_id = ?", (run_id,)):
        want.setdefault(f"eval/{split}/{category}", {})[step] = f32(mean)
        if per_token is not None:
            want.setdefault(f"eval_per_token/{split}/{category}", {})[step] = f32(per_token)
    return want


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--logdir", required=True)
    args = ap.parse_args()
    con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    names = {name.replace("/", "_"): name for (name,) in con.execute("SELECT name FROM runs")}
    failures = 0
    for folder in sorted(os.listdir(args.logdir)):
        acc = event_accumulator.EventAccumulator(os.path.join(args.logdir, folder), size_guidance={event_accumulator.SCALARS: 0})
        acc.Reload()
        tags = acc.Tags()["scalars"]
        want = expected(args.db, names[folder])
        got = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in tags}
        n = sum(len(v) for v in got.values())
        if got != want:
            failures += 1
            for tag in sorted(set(got) | set(want)):
                if got.get(tag) != want.get(tag):
                    print(f"  DIFFERENT {folder} {tag}: tensorboard {got.get(tag)} store {want.get(tag)}")
        print(f"{folder}: {len(tags)} tags, {n} scalars read by TensorBoard's EventAccumulator; "
              f"{'equal to the store' if got == want else 'DIFFERENT from the store'}")
        for tag in sorted(tags)[:4] + ["..."] + sorted(tags)[-3:]:
            if tag == "...":
                print("  ...")
                continue
            events = acc.Scalars(tag)
            print(f"  {tag}: steps {[e.step for e in events][:6]}{'...' if len(events) > 6 else ''}, last {events[-1].value:.6g}")
    import tensorboard
    print(f"tensorboard {tensorboard.__version__}; {'all runs equal' if failures == 0 else f'{failures} runs differ'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
