#!/usr/bin/env bash
# The browser test (`make test-browser`, also run by .ci/run): a report rendered in Debian's headless Chromium.
#
# Installs Debian's chromium when missing, then, under one temporary folder: runs a tiny-preset spec of two stages
# (SFT, then DPO seed-paired from it: init_from { stage }) over two seeds with per-token rows, renders its report,
# and checks in the browser at 1280 px that
#   - index.html fits the window: the page's scroll width (which the page writes into <body data-scroll-width>)
#     is at most 1280, and every figure is at most 1200 px wide, so none is shrunk below 80%;
#   - explore.html#probe=0 runs without a script error (the page writes data-selfcheck="ok", or the error) and
#     shows that probe's prompt and responses, with per-token rows holding token text;
#   - explore.html#run=ID&vs=ID2&probe=1 shows two runs of different seeds side by side, every category of each.
# Screenshots are kept in the temporary folder, named in the output. When Chromium cannot be installed or
# started here, it says why and exits 0: skipped. No Python.
set -uo pipefail
BIN=${1:?usage: scripts/test-browser.sh ALIGNSCOPE_BINARY}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$(dirname "$0")/.." && pwd)

skip() { echo "test-browser: skipped: $*"; exit 0; }
fail() { echo "test-browser: FAILED: $*"; exit 1; }
say() { echo "test-browser [$(date +%T)]: $*"; }

if ! command -v chromium >/dev/null; then
  [ "$(id -u)" = 0 ] || skip "chromium is not installed and installing it needs root (apt-get install chromium)"
  echo "test-browser: installing chromium (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1) \
    || skip "apt-get could not install chromium"
fi
T=$(mktemp -d /tmp/alignscope-browser-XXXXXX)
# chromium as root needs --no-sandbox; its own profile under $T so nothing is left in the home folder
browse() { timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$T/profile" \
             --window-size=1280,900 --virtual-time-budget=10000 "$@" 2>>"$T/chromium.log"; }
browse --dump-dom "data:text/html,<p>ok</p>" | grep -q "<p>ok</p>" || skip "headless chromium does not start here (see $T/chromium.log)"

cp "$ROOT/Tests/ExperimentsTests/Fixtures/tiny-train.jsonl" "$ROOT/Tests/ExperimentsTests/Fixtures/tiny-probes.jsonl" "$T/"
cat > "$T/spec.json5" <<'SPEC'
{
  name: "browser",
  model: { preset: "tiny", seed: 0 },
  template: "chatml",
  data: {
    train: { path: "tiny-train.jsonl" },
    probes: { path: "tiny-probes.jsonl", categories: { chosen: "chosen", rejected: "rejected", non_response: "non_response",
                                                        random: { derive: "other_prompt", field: "chosen" } } },
  },
  train: { steps: 4, batch_size: 2, lr: 3e-3, max_length: 160 },
  eval: { every: 2, tokens: true },
  sweep: { seed: [1, 2] },
  stages: [
    { name: "sft" },
    { name: "dpo", init_from: { stage: "sft" }, objective: { kind: "dpo", beta: 0.1 } },
  ],
}
SPEC
say "running the spec (tiny preset, 2 stages x 2 seeds)"
"$BIN" run "$T/spec.json5" --db "$T/runs.sqlite" --quiet > "$T/run.log" 2>&1 || fail "alignscope run failed: $(tail -3 "$T/run.log")"
"$BIN" report --db "$T/runs.sqlite" --out "$T/report" > "$T/report.log" 2>&1 || fail "alignscope report failed: $(cat "$T/report.log")"

say "index.html at 1280 px"
browse --dump-dom "file://$T/report/index.html" > "$T/index.dom"
width=$(grep -o 'data-scroll-width="[0-9]*"' "$T/index.dom" | grep -o '[0-9]*')
[ -n "$width" ] || fail "index.html did not report its width (no data-scroll-width in the rendered page)"
[ "$width" -le 1280 ] || fail "index.html is $width px wide at a 1280 px window: it scrolls sideways"
for f in "$T"/report/figures/*.svg; do
  w=$(grep -o -m1 '<svg[^>]* width="[0-9.]*"' "$f" | grep -o 'width="[0-9.]*"' | grep -o '[0-9.]*' | cut -d. -f1)
  [ -n "$w" ] && [ "$w" -le 1200 ] || fail "$(basename "$f") is ${w:-?} px wide (more than 1200: shown below 80% at 1280 px)"
done
grep -q 'id="change"' "$T/index.dom" && grep -q '(2 seeds)' "$T/index.dom" || fail "index.html lacks the final-change table with the means over seeds"
browse --screenshot="$T/index.png" "file://$T/report/index.html" >/dev/null

say "explore.html#probe=0"
browse --dump-dom "file://$T/report/explore.html#probe=0" > "$T/probe.dom"
check=$(grep -o 'data-selfcheck="[^"]*"' "$T/probe.dom")
[ "$check" = 'data-selfcheck="ok"' ] || fail "explore.html#probe=0: ${check:-the page never finished drawing} (see $T/probe.dom)"
grep -q 'data-probe="0"' "$T/probe.dom" || fail "explore.html#probe=0 does not show probe 0"
prompt=$(sqlite3 "$T/runs.sqlite" "SELECT prompt FROM probes WHERE idx = 0" 2>/dev/null)
[ -n "$prompt" ] || prompt="How do I boil an egg?"
grep -qF "class=\"prompt\">$prompt<" "$T/probe.dom" || fail "explore.html#probe=0 does not show the probe's prompt \"$prompt\""

chosen=$(sqlite3 "$T/runs.sqlite" "SELECT r.text FROM responses r JOIN probes p ON p.id = r.probe_id WHERE p.idx = 0 AND r.category = 'chosen'" 2>/dev/null)
[ -z "$chosen" ] || grep -qF "class=\"text\">$chosen<" "$T/probe.dom" || fail "explore.html#probe=0 does not show the chosen response \"$chosen\""
grep -q 'class="tok"' "$T/probe.dom" || fail "explore.html#probe=0 shows no per-token row"
grep -qE 'class="tok"[^>]*>[^#<]' "$T/probe.dom" || fail "explore.html#probe=0 shows token ids without their text"
browse --screenshot="$T/probe.png" "file://$T/report/explore.html#probe=0" >/dev/null

# seeds 1 and 2 draw other `random` responses, so each has its own probe set (other probe ids): the page must match
# the probe by its index and show every category of both runs
say "two runs of different seeds side by side"
browse --dump-dom "file://$T/report/explore.html#run=1&vs=4&probe=1" > "$T/pair.dom"
grep -q 'data-selfcheck="ok"' "$T/pair.dom" || fail "explore.html#run=1&vs=4&probe=1: $(grep -o 'data-selfcheck="[^"]*"' "$T/pair.dom")"
[ "$(grep -o '<h3>browser/' "$T/pair.dom" | wc -l)" -eq 2 ] || fail "explore.html#run=1&vs=4&probe=1 does not show two runs"
# (rendered texts only: the page's own script, in the DOM too, writes class="text">${...})
shown=$(grep -o 'class="text">[^$]' "$T/pair.dom" | wc -l)
[ "$shown" -eq 8 ] || fail "explore.html#run=1&vs=4&probe=1 shows $shown responses, not 4 categories x 2 runs"

echo "test-browser: passed (screenshots: $T/index.png, $T/probe.png)"
