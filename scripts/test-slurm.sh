#!/usr/bin/env bash
# The cluster test (`make test-slurm`, also run by .ci/run): a real single-node Slurm on this machine.
#
# Installs Debian's slurm-wlm and munge when missing, then, everything under one temporary folder: starts munged
# with its own key and socket, slurmctld and slurmd for localhost (no cgroups), runs `alignscope slurm` on a
# tiny-preset spec (a 2 x 2 SFT sweep, then DPO from one SFT run with a 2-value sweep: two waves, the second
# after the first), stops one DPO task mid-run with `scancel --full --signal=TERM` (the run checkpoints its step
# and the task copies its shard back), requeues it (`scontrol requeue`), waits for every job, merges the shards,
# and checks that the merged store holds what the same spec run by `alignscope run` on one machine holds: the
# same rows, numbers to 17 significant digits (bit for bit), ids aside. Every daemon it started is stopped by
# pid; nothing is left outside the temporary folder. When Slurm cannot be started here (not root, packages not
# installable, ports taken), it says why and exits 0: skipped.
set -uo pipefail
BIN=${1:?usage: scripts/test-slurm.sh ALIGNSCOPE_BINARY}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$(dirname "$0")/.." && pwd)

skip() { echo "test-slurm: skipped: $*"; exit 0; }
fail() { echo "test-slurm: FAILED: $*"; exit 1; }
say() { echo "test-slurm [$(date +%T)]: $*"; }

[ "$(id -u)" = 0 ] || skip "needs root to start slurmctld, slurmd and munged"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null || ! command -v sqlite3 >/dev/null; then
  echo "test-slurm: installing slurm-wlm, munge and sqlite3 (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge sqlite3 >/dev/null 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge sqlite3 >/dev/null 2>&1) \
    || skip "apt-get could not install slurm-wlm, munge and sqlite3"
fi

T=$(mktemp -d /tmp/alignscope-slurm-XXXXXX)
PIDS=()
cleanup() {
  local pids=()
  for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munged.pid"; do
    [ -f "$f" ] && pids+=("$(cat "$f")")
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/state" "$T/spool" "$T/log" "$T/work/res" "$T/node"

# munge: a key of our own, a socket of our own
head -c 1024 /dev/urandom > "$T/munge.key" && chmod 600 "$T/munge.key"
munged -f --socket="$T/munge.sock" --key-file="$T/munge.key" --log-file="$T/log/munged.log" \
  --pid-file="$T/munged.pid" --seed-file="$T/munged.seed" || skip "munged did not start (log: $(tail -1 "$T/log/munged.log" 2>/dev/null))"

# a port nothing listens on (bash's /dev/tcp connects only where something listens)
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  skip "no free port found"
}
HOST=$(hostname -s)
PLUGINS=$(dirname "$(find /usr/lib -name 'select_cons_tres.so' 2>/dev/null | head -1)")
[ -d "$PLUGINS" ] || skip "Slurm's plugins (select_cons_tres.so) not found"
cat > "$T/slurm.conf" <<EOF
ClusterName=alignscope-test
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge.sock
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
MinJobAge=600
PluginDir=$PLUGINS
NodeName=$HOST CPUs=$(nproc) RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$T/slurm.conf"
slurmctld -c -f "$T/slurm.conf" || skip "slurmctld did not start ($(tail -1 "$T/log/slurmctld.log" 2>/dev/null))"
slurmd -f "$T/slurm.conf" || skip "slurmd did not start ($(tail -1 "$T/log/slurmd.log" 2>/dev/null))"
for _ in $(seq 1 30); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo -h -o %t 2>/dev/null | grep -q idle || skip "the node did not come up (sinfo: $(sinfo -h 2>&1 | head -1))"
say "Slurm $(slurmctld -V | cut -d' ' -f2) up on $HOST, in $T"

# the experiment: 4 SFT runs (2 x 2 sweep), then 2 DPO runs from one of them (a second wave)
cd "$T/work"
cp "$ROOT/Tests/ExperimentsTests/Fixtures/tiny-train.jsonl" "$ROOT/Tests/ExperimentsTests/Fixtures/tiny-probes.jsonl" .
cat > cluster.json5 <<'EOF'
{
  name: "cluster", model: { preset: "tiny", seed: 0 },
  data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
  train: { steps: 6, batch_size: 2, lr: 1e-3, max_length: 160 }, eval: { every: 3 },
  stages: [
    { name: "sft", sweep: { seed: [1, 2], "train.lr": [1e-3, 3e-3] } },
    { name: "dpo", init_from: { run: "sft/lr=0.001,seed=1" }, objective: { kind: "dpo" },
      train: { steps: 400 }, eval: { every: 100 }, checkpoint: { every: 100 }, sweep: { "train.lr": [1e-4, 3e-4] } },
  ],
}
EOF
export TMPDIR="$T/node"
"$BIN" slurm cluster.json5 --db res/runs.sqlite --max-parallel 2 --time 00:20:00 > submit.txt || fail "alignscope slurm: $(cat submit.txt)"
cat submit.txt
say "submitted"
SECOND=$(sed -n 's/^wave 1: job \([0-9]*\),.*/\1/p' submit.txt)
[ -n "$SECOND" ] || fail "no second wave in: $(cat submit.txt)"
# status shows each run's array task and what Slurm says of it
"$BIN" status --db res/runs.sqlite > status.txt || fail "alignscope status"
grep -Eq "cluster/dpo/lr=0.0003 .* ${SECOND}_1 (pending|running|completed)" status.txt || fail "status does not show the job of cluster/dpo/lr=0.0003: $(cat status.txt)"

# stop DPO task 1 mid-run (SIGTERM to the batch script and the run), then requeue it
for _ in $(seq 1 300); do squeue -h -j "${SECOND}_1" -t R 2>/dev/null | grep -q . && break; sleep 0.2; done
squeue -h -j "${SECOND}_1" -t R | grep -q . || fail "task ${SECOND}_1 never ran"
sleep 2
scancel --full --signal=TERM "${SECOND}_1" || fail "scancel"
for _ in $(seq 1 150); do squeue -h -j "${SECOND}_1" 2>/dev/null | grep -q . || break; sleep 0.2; done
SHARD="res/cluster/shards/dpo_lr=0.0003.sqlite"
[ -f "$SHARD" ] || fail "the stopped task left no shard"
STOPPED=$(sqlite3 -readonly "$SHARD" "SELECT status || ' ' || coalesce(last_step, 0) FROM runs WHERE name = 'cluster/dpo/lr=0.0003'")
say "task ${SECOND}_1 stopped: $STOPPED"
case "$STOPPED" in interrupted\ [1-9]*) ;; *) fail "the stopped run is '$STOPPED', expected interrupted after a step" ;; esac
# the first step's wall-clock metric: a run resumed from its checkpoint does not take that step again
FIRST="SELECT printf('%.17g', value) FROM train_metrics t JOIN runs r ON r.id = t.run_id WHERE r.name = 'cluster/dpo/lr=0.0003' AND t.step = 1 AND t.name = 'elapsed'"
BEFORE=$(sqlite3 -readonly "$SHARD" "$FIRST")
# as if the task had been stopped between the last two steps of its checkpoint copy-back (old folder removed,
# the complete copy not yet renamed into place), with a partial copy of an earlier attempt beside it and another
# folder's temporary copy that shares the name's prefix: the next attempt must put the ready copy in place,
# drop the partial one and leave the other alone
CKPT="res/cluster/dpo_lr=0.0003"
[ -d "$CKPT" ] || fail "the stopped task left no checkpoint folder"
mv "$CKPT" "res/cluster/.dpo_lr=0.0003.ready.99999" && mkdir "res/cluster/.dpo_lr=0.0003.88888" "res/cluster/.dpo_lr=0.0003.5.77777" || fail "mv"
scontrol requeue "${SECOND}_1" || fail "scontrol requeue"
# a requeued job waits its begin time out (about two minutes); this test need not
sleep 1; scontrol update JobId="${SECOND}_1" StartTime=now >/dev/null 2>&1 || true
say "task ${SECOND}_1 requeued"
for _ in $(seq 1 600); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
[ -z "$(squeue -h)" ] || fail "jobs still queued: $(squeue -h | head -3)"

say "every job done"
[ "$(sqlite3 -readonly "$SHARD" "$FIRST")" = "$BEFORE" ] || fail "the requeued task took its first steps again instead of resuming from its checkpoint"
[ "$(sqlite3 -readonly "$SHARD" "SELECT status FROM runs WHERE name = 'cluster/dpo/lr=0.0003'")" = finished ] || fail "the requeued run did not finish"
[ -d "$CKPT" ] && [ ! -e "res/cluster/.dpo_lr=0.0003.ready.99999" ] || fail "the ready checkpoint copy was not moved into place"
[ ! -e "res/cluster/.dpo_lr=0.0003.88888" ] || fail "the partial checkpoint copy was left"
[ -d "res/cluster/.dpo_lr=0.0003.5.77777" ] || fail "another folder's temporary copy was removed"
# both DPO runs have one reference (the same SFT weights and data): one cache file, shared, and the requeued
# attempt found it (the run then loads it instead of computing it: ReferenceLogprobCache.values)
[ "$(ls res/cluster/reference-cache/reflogps-*.bin 2>/dev/null | wc -l)" = 1 ] || fail "expected one shared reference-cache file: $(ls -a res/cluster/reference-cache 2>&1)"
LOG=$(ls res/cluster/slurm/logs/*-"${SECOND}"_1.out)
[ "$(grep -c 'reference-cache file' "$LOG")" = 2 ] && grep -q "alignscope: 1 reference-cache file(s)" "$LOG" || fail "the requeued attempt did not get the shared reference cache: $(grep 'reference-cache' "$LOG")"
"$BIN" merge --db res/runs.sqlite res/cluster/shards/*.sqlite || fail "merge"
"$BIN" run cluster.json5 --db one/runs.sqlite --quiet || fail "the one-machine run"
snapshot() {
  sqlite3 -readonly "$1" <<'EOF'
SELECT 'run', name, config_sha256, seed, status, coalesce(error, ''), last_step FROM runs ORDER BY name;
SELECT 'logprob', r.name, l.step, p.probe_set, p.idx, s.category, s.text, printf('%.17g', l.logprob), l.n_tokens FROM logprobs l
  JOIN runs r ON r.id = l.run_id JOIN responses s ON s.id = l.response_id JOIN probes p ON p.id = s.probe_id ORDER BY 2, 3, 4, 5, 6, 7;
SELECT 'measure', r.name, m.step, p.probe_set, p.idx, s.category, s.text, m.name, printf('%.17g', m.value) FROM measures m
  JOIN runs r ON r.id = m.run_id JOIN responses s ON s.id = m.response_id JOIN probes p ON p.id = s.probe_id ORDER BY 2, 3, 4, 5, 6, 7, 8;
SELECT 'metric', r.name, m.step, m.name, printf('%.17g', m.value) FROM train_metrics m JOIN runs r ON r.id = m.run_id
  WHERE m.name NOT IN ('elapsed', 'tokens_per_s', 'step_time') AND m.name NOT LIKE 'time/%' ORDER BY 2, 3, 4;
EOF
}
snapshot res/runs.sqlite > merged.txt
snapshot one/runs.sqlite > one.txt
[ "$(grep -c '^run|.*|finished|' merged.txt)" = 6 ] || fail "not every run finished: $(grep '^run' merged.txt)"
cmp -s merged.txt one.txt || fail "the merged store differs from the one-machine store: $(diff merged.txt one.txt | head -5)"
echo "test-slurm: passed: 6 runs in 2 waves, one task stopped mid-copy-back and requeued; merged store = one-machine store ($(wc -l < one.txt) rows compared)"
