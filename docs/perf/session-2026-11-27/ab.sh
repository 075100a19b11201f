#!/bin/bash
# One Swift turn of a side-by-side round: the engine at the start of the session (bcf900b, generic build) and
# the new engine (native build), alternating which goes first; base JSON kept in /tmp/sbs/ab/, new JSON to stdout.
set -e
M=/work/main/models/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p /tmp/sbs/ab
n=$(ls /tmp/sbs/ab | grep -c base || true)
ts=$(date +%H%M%S)
if [ $((n % 2)) -eq 0 ]; then
  /tmp/base-alignscope bench --model $M --json --repeats 3 > /tmp/sbs/ab/base-$ts.json
  /tmp/new-alignscope bench --model $M --json --repeats 3 | tee /tmp/sbs/ab/new-$ts.json
else
  /tmp/new-alignscope bench --model $M --json --repeats 3 > /tmp/sbs/ab/new-$ts.json
  /tmp/base-alignscope bench --model $M --json --repeats 3 > /tmp/sbs/ab/base-$ts.json
  cat /tmp/sbs/ab/new-$ts.json
fi
