#!/usr/bin/env bash
# `--workers N` scaling: req/s at c=32·N for N in $WORKERS (default "1 2"), JSON and stream, and the
# gateway's CPU per request (CPU-µs from /proc; cycles from `perf stat` where the machine exposes the
# counter), so a larger machine can be projected. Bounded: each point is WARMUP + DURATION seconds of
# wrk under `timeout`.
#
#   benches/workers_scaling.sh                 WORKERS="1 2" MODES="json stream" DURATION=5 WARMUP=1
#
# Uses the shared harness's nginx mock upstreams (../shared/bench/mock/start.sh, left running) and
# benches/gatecore-bench.yaml. Prints one markdown table (also written to benches/results/).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="${GWBENCH_HARNESS:-$ROOT/../shared/bench}"
PY="${PYTHON:-python3}"
PORT="${GATECORE_PORT:-18180}"
CONFIG="${GATECORE_CONFIG_BENCH:-$ROOT/benches/gatecore-bench.yaml}"
: "${WORKERS:=1 2}" "${MODES:=json stream}" "${DURATION:=5}" "${WARMUP:=1}"
export BENCH_API_KEY="${BENCH_API_KEY:-sk-gwbench-5f0c9a1e7b3d4c2a8e6f1b0d9c7a5e3f}"
OUT="$ROOT/benches/results/workers-scaling-$(date -u +%Y%m%dT%H%M%SZ).md"
mkdir -p "$ROOT/benches/results"
"$SRC/mock/start.sh" >/dev/null

cpu_ticks() {  # utime+stime of a process and its children (clock ticks)
  local total=0 pid
  for pid in "$@"; do
    if [ -r "/proc/$pid/stat" ]; then
      total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    fi
  done
  echo "$total"
}

# The server's processes (main and workers), found by their command line: read, never signalled.
tree() { pgrep -f -- "gatecore serve --config .* --port $PORT" || echo "$1"; }

HZ=$(getconf CLK_TCK)
perf_ok=0
if command -v perf >/dev/null && perf stat -e cycles -x, true 2>&1 | grep -qv "not supported"; then
  perf_ok=1
fi
{
  echo "| workers | mode | connections | req/s | p50 ms | p99 ms | errors | CPU-µs/req | cycles/req |"
  echo "|---|---|---|---|---|---|---|---|---|"
} | tee "$OUT"
for n in $WORKERS; do
  log="$(mktemp)"
  GATECORE_STORE_URL="sqlite:///$(mktemp -d)/bench.db" setsid "$PY" -m gatecore serve --config "$CONFIG" \
    --workers "$n" --port "$PORT" --log-level warning >"$log" 2>&1 &
  gw=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  for mode in $MODES; do
    conns=$((32 * n))
    BENCH_MODE=$mode timeout $((WARMUP + 10)) wrk -t1 -c"$conns" -d"${WARMUP}s" -s "$SRC/lib/chat.lua" \
      "http://127.0.0.1:$PORT/v1/chat/completions" >/dev/null 2>&1 || true
    pids=$(tree "$gw")
    before=$(cpu_ticks $pids)
    perf_out="$(mktemp)"
    if [ "$perf_ok" = 1 ]; then
      timeout $((DURATION + 5)) perf stat -e cycles -x, -o "$perf_out" -p "$(echo $pids | tr ' ' ,)" \
        sleep "$DURATION" &
      perf_pid=$!
    fi
    result=$(BENCH_MODE=$mode timeout $((DURATION + 10)) wrk -t1 -c"$conns" -d"${DURATION}s" \
      -s "$SRC/lib/chat.lua" "http://127.0.0.1:$PORT/v1/chat/completions" | sed -n 's/^WRKJSON //p')
    if [ -n "${perf_pid:-}" ]; then wait "$perf_pid" 2>/dev/null || true; perf_pid=""; fi
    after=$(cpu_ticks $pids)
    "$PY" - "$result" "$before" "$after" "$HZ" "$perf_out" "$n" "$mode" "$conns" <<'PYEOF' | tee -a "$OUT"
import json, sys
r = json.loads(sys.argv[1]); before, after, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n, mode, conns = sys.argv[6], sys.argv[7], sys.argv[8]
reqs = max(r["requests"], 1); secs = r["duration_us"] / 1e6
errors = sum(r["errors"].values())
cpu_us = (after - before) / hz * 1e6 / reqs
cycles = "n/a"
try:
    for line in open(sys.argv[5]):
        parts = line.strip().split(",")
        if len(parts) > 2 and parts[2].startswith("cycles") and parts[0].isdigit():
            cycles = f"{int(parts[0]) / reqs:,.0f}"
except OSError:
    pass
lat = r["lat_us"]
print(f"| {n} | {mode} | {conns} | {reqs / secs:,.0f} | {lat['p50'] / 1000:.2f} | {lat['p99'] / 1000:.2f} | {errors} | {cpu_us:.0f} | {cycles} |")
PYEOF
  done
  kill -TERM "$gw" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$gw" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$gw" 2>/dev/null || true
  rm -f "$log"
done
echo "written: $OUT"
