#!/usr/bin/env bash
# Interleaved A/B of gatecore configs: a fresh server per run, variants alternated ROUNDS times so
# drift hits each alike, wrk at c=32 for DURATION s per run; prints each run and the medians, with
# the gateway's CPU µs per request (its process tree's utime+stime over the run / requests).
#
#   benches/ab.sh A.yaml B.yaml [C.yaml ...]      MODE=json|stream ROUNDS=5 DURATION=6 WARMUP=1
#   benches/ab.sh /path/to/treeA::cfg.yaml /path/to/treeB::cfg.yaml    two trees, one config: each
#       variant's server imports gatecore from TREE/python (a worktree with its _core .so in place)
#
# Faster to iterate with than variants.sh (no harness report, one mode per call); the figures that go
# into benches/README.md come from variants.sh. Layout as the harness: gatecore on core 0, the mocks
# and wrk on core 1. Every loop is bounded (ROUNDS × variants runs, wrk -d under timeout).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
H="${GWBENCH_HARNESS:-$ROOT/../shared/bench}"
: "${MODE:=json}" "${ROUNDS:=5}" "${DURATION:=6}" "${WARMUP:=1}" "${PORT:=18555}"
: "${BENCH_API_KEY:=sk-gwbench-5f0c9a1e7b3d4c2a8e6f1b0d9c7a5e3f}"
export BENCH_MODE="$MODE" BENCH_API_KEY
GWBENCH_RUN=/tmp/gwbench MOCK_CPUS=1 bash "$H/mock/start.sh" >/dev/null
OUT="$(mktemp -d /tmp/gatecore-ab.XXXXXX)"
GW=""
trap '[ -n "$GW" ] && kill "$GW" 2>/dev/null; rm -rf "$OUT"' EXIT

cpu_ticks() {  # utime+stime of every thread of $1 (granian's main process and its workers)
  local total=0 pid
  for pid in $1 $(pgrep -P "$1" || true); do
    for stat in /proc/"$pid"/task/*/stat; do
      total=$((total + $(awk '{print $14 + $15}' "$stat" 2>/dev/null || echo 0)))
    done
  done
  echo "$total"
}

run_one() {  # [tree::]config -> "req/s cpu_us_per_req"
  local cfg="$1" tree=""
  if [[ "$cfg" == *::* ]]; then tree="${cfg%%::*}"; cfg="${cfg#*::}"; fi
  ( cd "$ROOT" && PYTHONPATH="${tree:+$tree/python}" exec taskset -c 0 "$PY" -m gatecore serve --config "$cfg" \
      --host 127.0.0.1 --port "$PORT" ) >"$OUT/gw.log" 2>&1 &
  GW=$!
  for _ in $(seq 100); do curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/readyz" 2>/dev/null && break; sleep 0.1; done
  local url="http://127.0.0.1:$PORT/v1/chat/completions"
  timeout $((WARMUP + 10)) taskset -c 1 wrk -t1 -c32 -d"${WARMUP}s" -s "$H/lib/chat.lua" "$url" >/dev/null 2>&1 || true
  local before after line
  before="$(cpu_ticks "$GW")"
  line="$(timeout $((DURATION + 10)) taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" --timeout 10s -s "$H/lib/chat.lua" "$url" 2>&1 | sed -n 's/^WRKJSON //p')"
  after="$(cpu_ticks "$GW")"
  kill "$GW"; wait "$GW" 2>/dev/null || true; GW=""
  "$PY" -c '
import json, os, sys
w = json.loads(sys.argv[1]); ticks = int(sys.argv[2]) / os.sysconf("SC_CLK_TCK")
errors = sum(w["errors"].values())
n, seconds = w["requests"], w["duration_us"] / 1e6
print(f"{n / seconds:.0f} {ticks * 1e6 / max(1, n):.1f} {errors}")
' "$line" "$((after - before))"
}

label() { if [[ "$1" == *::* ]]; then echo "$(basename "${1%%::*}")::$(basename "${1#*::}")"; else basename "$1"; fi; }

declare -A RPS CPU
for round in $(seq "$ROUNDS"); do
  for cfg in "$@"; do
    read -r rps cpu errors < <(run_one "$cfg")
    echo "round $round $(label "$cfg"): $rps req/s, $cpu CPU µs/req, $errors errors"
    RPS[$cfg]+="$rps "; CPU[$cfg]+="$cpu "
  done
done
base=""
for cfg in "$@"; do
  "$PY" -c '
import statistics, sys
name, base, rps, cpu = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3].split()], [float(x) for x in sys.argv[4].split()]
med = statistics.median(rps)
ratio = f" ({med / float(base):.3f}x)" if base else ""
print(f"{name}: median {med:,.0f} req/s{ratio}, {statistics.median(cpu):.1f} CPU µs/req (n={len(rps)})")
' "$(label "$cfg")" "$base" "${RPS[$cfg]}" "${CPU[$cfg]}"
  [ -z "$base" ] && base="$("$PY" -c 'import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1].split()))' "${RPS[$cfg]}")"
done
