#!/usr/bin/env python3
"""Checks the default AlignScope dataset (experiments/data/helpful-*.jsonl).

Developer tooling only: run `python3 scripts/check-dataset.py` from the repository root.
Prints a summary and one line per problem; exits 1 if any problem was found.
"""
import json
import re
import sys
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "experiments/data/helpful-train.jsonl"
PROBES = ROOT / "experiments/data/helpful-probes.jsonl"

N_TRAIN, N_PROBES, N_PROBES_TRAIN = 160, 64, 32
MULTI_TURN = (12, 18)  # "about 15"
# Word limits (whitespace-separated words), inclusive.
LIMITS = {
    "prompt": (8, 30),                 # string prompts
    "chosen": (25, 60), "variant": (25, 60),
    "rejected": (15, 45), "paraphrased_rejected": (15, 45),
    "non_response": (10, 30),
}
TURN_WORDS = (3, 30)       # each message of a multi-turn prompt
TURNS_TOTAL = (8, 45)      # all messages of a multi-turn prompt together
MAX_PARAPHRASE_JACCARD = 0.5
MAX_VARIANT_JACCARD = 0.5
MAX_NONRESPONSE_JACCARD = 0.15  # against the prompt plus its chosen response

FUNCTION_WORDS = set("""
a an the and or but if then so than that this these those there here of to in on at by for from
with without about into onto over under up down out off as is are was were be been being am do
does did doing have has had having will would shall should can could may might must it its it's
i me my mine we us our you your yours he him his she her they them their what which who whom whose
when where why how not no nor all any both each few more most other some such only own same too
very just also s t don't can't won't isn't aren't doesn't didn't i'm you're they're we're that's
let's i'd you'd you'll we'll i've you've one
""".split())

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


def words(text):
    return text.split()


def content_words(text):
    toks = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())
    return {t for t in toks if t not in FUNCTION_WORDS}


def jaccard(a, b):
    a, b = content_words(a), content_words(b)
    return len(a & b) / len(a | b) if a | b else 1.0


def prompt_text(p):
    return p if isinstance(p, str) else " ".join(m["content"] for m in p)


def check_prompt(where, p):
    if isinstance(p, str):
        lo, hi = LIMITS["prompt"]
        n = len(words(p))
        if not p.strip():
            problem(where, "empty prompt")
        elif not lo <= n <= hi:
            problem(where, f"prompt has {n} words, expected {lo}-{hi}")
        return False
    if not isinstance(p, list) or len(p) < 3 or len(p) % 2 == 0:
        problem(where, "prompt must be a string or an odd-length list of messages (>= 3)")
        return True
    total = 0
    for i, m in enumerate(p):
        want = "user" if i % 2 == 0 else "assistant"
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            problem(where, f"message {i} must have exactly role and content")
            continue
        if m["role"] != want:
            problem(where, f"message {i} has role {m['role']!r}, expected {want!r}")
        if not isinstance(m["content"], str) or not m["content"].strip():
            problem(where, f"message {i} is empty")
            continue
        n = len(words(m["content"]))
        total += n
        if not TURN_WORDS[0] <= n <= TURN_WORDS[1]:
            problem(where, f"message {i} has {n} words, expected {TURN_WORDS[0]}-{TURN_WORDS[1]}")
    if not TURNS_TOTAL[0] <= total <= TURNS_TOTAL[1]:
        problem(where, f"multi-turn prompt has {total} words, expected {TURNS_TOTAL[0]}-{TURNS_TOTAL[1]}")
    return True


def check_text(where, field, text):
    if not isinstance(text, str) or not text.strip():
        problem(where, f"{field} is empty or not a string")
        return
    lo, hi = LIMITS[field]
    n = len(words(text))
    if not lo <= n <= hi:
        problem(where, f"{field} has {n} words, expected {lo}-{hi}")
    if text != text.strip() or "  " in text:
        problem(where, f"{field} has stray whitespace")
    if text[-1] not in ".!?'\")":
        problem(where, f"{field} does not end a sentence: ...{text[-20:]!r}")


def load(path, keys):
    rows = []
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        problem(path.name, f"not UTF-8: {e}")
    if not raw.endswith(b"\n"):
        problem(path.name, "last line is not terminated by a newline")
    for i, line in enumerate(raw.decode("utf-8", "replace").split("\n")[:-1], 1):
        where = f"{path.name}:{i}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problem(where, f"invalid JSON: {e}")
            continue
        if not isinstance(obj, dict) or list(obj) != keys:
            problem(where, f"expected keys {keys}, got {list(obj) if isinstance(obj, dict) else type(obj).__name__}")
            continue
        rows.append((where, obj))
    return rows


def key(p):
    return json.dumps(p, ensure_ascii=False, sort_keys=True)


def main():
    train = load(TRAIN, ["prompt", "chosen", "rejected"])
    if len(train) != N_TRAIN:
        problem(TRAIN.name, f"{len(train)} valid lines, expected {N_TRAIN}")
    multi = 0
    seen_prompts, seen_responses = {}, {}
    for where, o in train:
        multi += check_prompt(where, o["prompt"])
        for f in ("chosen", "rejected"):
            check_text(where, f, o[f])
        k = key(o["prompt"])
        if k in seen_prompts:
            problem(where, f"duplicate prompt (also {seen_prompts[k]})")
        seen_prompts[k] = where
        for f in ("chosen", "rejected"):
            if o[f] in seen_responses:
                problem(where, f"{f} duplicates {seen_responses[o[f]]}")
            seen_responses[o[f]] = f"{where} {f}"
    if not MULTI_TURN[0] <= multi <= MULTI_TURN[1]:
        problem(TRAIN.name, f"{multi} multi-turn prompts, expected {MULTI_TURN[0]}-{MULTI_TURN[1]}")
    train_by_prompt = {key(o["prompt"]): o for _, o in train}
    print(f"{TRAIN.name}: {len(train)} lines, {multi} multi-turn, {len(train) - multi} single-turn")
    stats("train", [o for _, o in train], ["chosen", "rejected"])

    if not PROBES.exists():
        print(f"{PROBES.name}: not present, skipped")
        return finish()
    fields = ["prompt", "chosen", "rejected", "paraphrased_rejected", "variant", "non_response"]
    probes = load(PROBES, fields)
    if len(probes) != N_PROBES:
        problem(PROBES.name, f"{len(probes)} valid lines, expected {N_PROBES}")
    n_train = n_multi = 0
    seen_probe_prompts, seen = {}, {}
    pj, vj, nj = [], [], []
    for where, o in probes:
        n_multi += check_prompt(where, o["prompt"])
        for f in fields[1:]:
            check_text(where, f, o[f])
        k = key(o["prompt"])
        if k in seen_probe_prompts:
            problem(where, f"duplicate probe prompt (also {seen_probe_prompts[k]})")
        seen_probe_prompts[k] = where
        t = train_by_prompt.get(k)
        if t is not None:
            n_train += 1
            for f in ("chosen", "rejected"):
                if o[f] != t[f]:
                    problem(where, f"train probe: {f} differs from the training line")
        else:
            for f in ("chosen", "rejected"):
                if o[f] in seen_responses:
                    problem(where, f"held-out {f} duplicates training {seen_responses[o[f]]}")
            if prompt_text(o["prompt"]).lower() in {prompt_text(x["prompt"]).lower() for _, x in train}:
                problem(where, "held-out prompt matches a training prompt's text")
        for f in fields[1:]:
            if o[f] in seen:
                problem(where, f"{f} is identical to {seen[o[f]]}")
            seen[o[f]] = f"{where} {f}"
            if t is None or f not in ("chosen", "rejected"):
                if o[f] in seen_responses:
                    problem(where, f"{f} duplicates training {seen_responses[o[f]]}")
        j = jaccard(o["paraphrased_rejected"], o["rejected"])
        pj.append(j)
        if j >= MAX_PARAPHRASE_JACCARD:
            problem(where, f"paraphrased_rejected copies rejected (Jaccard {j:.2f})")
        j = jaccard(o["variant"], o["chosen"])
        vj.append(j)
        if j >= MAX_VARIANT_JACCARD:
            problem(where, f"variant too close to chosen (Jaccard {j:.2f})")
        j = jaccard(o["non_response"], prompt_text(o["prompt"]) + " " + o["chosen"])
        nj.append(j)
        if j >= MAX_NONRESPONSE_JACCARD:
            problem(where, f"non_response overlaps its prompt/chosen (Jaccard {j:.2f})")
    if n_train != N_PROBES_TRAIN:
        problem(PROBES.name, f"{n_train} probes with a training prompt, expected {N_PROBES_TRAIN}")
    print(f"{PROBES.name}: {len(probes)} lines, {n_train} train, {len(probes) - n_train} held-out, {n_multi} multi-turn")
    stats("probes", [o for _, o in probes], fields[1:])
    for name, js in (("paraphrased_rejected~rejected", pj), ("variant~chosen", vj),
                     ("non_response~prompt+chosen", nj)):
        if js:
            print(f"  Jaccard {name}: mean {sum(js)/len(js):.2f}, max {max(js):.2f}")
    return finish()


def stats(name, objs, fields):
    for f in fields:
        ns = [len(words(o[f])) for o in objs if isinstance(o.get(f), str)]
        if ns:
            print(f"  {name} {f}: words min {min(ns)}, mean {sum(ns)/len(ns):.1f}, max {max(ns)}")


def finish():
    for p in problems:
        print("PROBLEM " + p)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
