#!/usr/bin/env python3
"""Test generator for ProbesTests: answers each JSON request line with its text upper-cased.

usage: uppercase_generator.py COUNTER_FILE [--fail | --garbage | --drop-last]
Each run appends one line to COUNTER_FILE, so tests can see whether the command ran.
"""
import json
import sys

counter, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
with open(counter, "a") as f:
    f.write("run\n")
requests = [json.loads(line) for line in sys.stdin if line.strip()]
if mode == "--fail":
    sys.stderr.write("something went wrong\nmodel not available\n")
    sys.exit(3)
answers = []
for r in requests:
    source = r["text"] if r["text"] else r["prompt"][-1]["content"]
    answers.append(json.dumps({"id": r["id"], "text": r["template"].replace("{text}", source).upper() + " #" + str(r["seed"])}))
if mode == "--garbage":
    answers.insert(1, "this is not json")
if mode == "--drop-last":
    answers.pop()
for a in reversed(answers):  # any order is allowed
    print(a)
