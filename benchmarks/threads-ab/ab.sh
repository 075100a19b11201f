#!/bin/bash
# Two alignscope binaries alternating on ab.json5 (issue 40: "the 2-thread step and evaluation are no slower than
# today's, old and new binary alternating"). Usage: benchmarks/threads-ab/ab.sh OLD_BINARY NEW_BINARY [ROUNDS]
# Build each with `swift build -c release -Xswiftc -target-cpu -Xswiftc native --product alignscope` in a worktree of
# its commit. Per run: the median step time (tokens / tokens_per_s of steps 2..10), the evaluations' seconds after
# step 0 (48 responses each), and the loss at step 10. The order alternates between rounds.
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${3:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="old new"; else order="new old"; fi
  for which in $order; do
    bin=$OLD; [ "$which" = new ] && bin=$NEW
    rm -rf "$WORK/$which" && mkdir -p "$WORK/$which"
    "$bin" run "$HERE/ab.json5" --db "$WORK/$which/runs.sqlite" 2> "$WORK/$which/err.txt" > /dev/null
    step=$(sqlite3 "$WORK/$which/runs.sqlite" "SELECT t.value / s.value FROM train_metrics t JOIN train_metrics s ON s.run_id = t.run_id AND s.step = t.step AND s.name = 'tokens_per_s' WHERE t.name = 'tokens' AND t.step >= 2 ORDER BY 1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    evals=$(grep -o "step [0-9]* evaluated 48 responses in [0-9.]*s" "$WORK/$which/err.txt" | grep -v "step 0 " | awk '{print $NF}' | tr '\n' ' ')
    loss=$(sqlite3 "$WORK/$which/runs.sqlite" "SELECT printf('%.6f', value) FROM train_metrics WHERE name = 'loss' AND step = 10")
    echo "round $round $which: median step ${step}s, evaluations ${evals}, loss@10 $loss"
  done
done
