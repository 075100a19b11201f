#!/bin/bash
# One Swift turn of a side-by-side round: the main-branch engine and this branch's engine, alternating which
# goes first; the base JSON is kept in /tmp/perf2/ab/, the new JSON goes to stdout for torch_reference.py.
set -e
M=/work/wt/perf2/models/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p /tmp/perf2/ab
n=$(ls /tmp/perf2/ab | grep -c base || true)
ts=$(date +%H%M%S)
if [ $((n % 2)) -eq 0 ]; then
  /tmp/perf2/base/.build/release/alignscope bench --model $M --json --repeats 3 > /tmp/perf2/ab/base-$ts.json
  /work/wt/perf2/.build/release/alignscope bench --model $M --json --repeats 3 | tee /tmp/perf2/ab/new-$ts.json
else
  /work/wt/perf2/.build/release/alignscope bench --model $M --json --repeats 3 > /tmp/perf2/ab/new-$ts.json
  /tmp/perf2/base/.build/release/alignscope bench --model $M --json --repeats 3 > /tmp/perf2/ab/base-$ts.json
  cat /tmp/perf2/ab/new-$ts.json
fi
