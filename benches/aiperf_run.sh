#!/usr/bin/env bash
# aiperf's TTFT and inter-token latency through gatecore vs direct to a paced upstream, in one session.
#
#   make build aiperf-venv && benches/aiperf_run.sh        # ~4 min with the defaults below
#
# The upstream is the shared harness's paced SSE mock (../shared/bench/mock/paced.c: N chunks GAP_MS
# apart on an absolute clock, the last with finish_reason + usage, then [DONE]), compiled and started
# here on its own port. gatecore (1 worker, ledger on, access log off) runs on core 0; the mock and
# aiperf on core 1. Each repeat runs every concurrency against both targets back to back, the order
# alternating between repeats; aiperf runs are bounded by --request-count. gatecore's own view of
# its runs (GET /admin/v1/runs/{id}) is saved beside aiperf's.
#
# Knobs (env): REQUESTS (200), CONCURRENCY ("1 8"), REPEATS (2), RATE (unset: closed loop; else
# aiperf's --request-rate in requests/s, concurrency then a cap), PACED_CHUNKS (20), PACED_GAP_MS (5),
# PACED_FIRST_MS (0), PACED_PORT (18102), GW_PORT (18180), GW_CPUS (0), LOADGEN_CPUS (1),
# AIPERF_VENV (.venv-aiperf), PY (.venv/bin/python), OUT (benches/results/aiperf/STAMP: aiperf's
# artifacts, git-ignored; the table also goes to benches/results/aiperf-STAMP.md).
# While /tmp/BENCH_QUIET exists (someone else is measuring) the script waits before starting.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED_BENCH="${SHARED_BENCH:-$ROOT/../shared/bench}"
[ -d "$SHARED_BENCH" ] || SHARED_BENCH=/work/shared/bench
AIPERF_VENV="${AIPERF_VENV:-$ROOT/.venv-aiperf}"
PY="${PY:-$ROOT/.venv/bin/python}"
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"  # this tree's gatecore
REQUESTS="${REQUESTS:-200}" CONCURRENCY="${CONCURRENCY:-1 8}" REPEATS="${REPEATS:-2}"
PACED_CHUNKS="${PACED_CHUNKS:-20}" PACED_GAP_MS="${PACED_GAP_MS:-5}" PACED_FIRST_MS="${PACED_FIRST_MS:-0}"
PACED_PORT="${PACED_PORT:-18102}" GW_PORT="${GW_PORT:-18180}"
GW_CPUS="${GW_CPUS:-0}" LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${OUT:-$ROOT/benches/results/aiperf/$STAMP}"
RUN="$(mktemp -d /tmp/gatecore-aiperf.XXXXXX)"
KEY="sk-aiperf-bench-0123456789abcdef"
[ -x "$AIPERF_VENV/bin/aiperf" ] || { echo "no aiperf in $AIPERF_VENV: make aiperf-venv" >&2; exit 1; }

waited=0
while [ -e /tmp/BENCH_QUIET ] && [ "$waited" -lt 3600 ]; do
  [ "$waited" = 0 ] && echo "waiting: /tmp/BENCH_QUIET exists (another measurement is running)"
  sleep 10; waited=$((waited + 10))
done
[ -e /tmp/BENCH_QUIET ] && { echo "still quiet after an hour; giving up" >&2; exit 1; }

mkdir -p "$OUT"
cpu_idle() { head -1 /proc/stat; sleep 1; head -1 /proc/stat; }
cpu_idle >"$OUT/cpu-before.txt"  # before anything of ours runs: is someone else using the machine?

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$RUN"; }
trap cleanup EXIT

gcc -O2 -Wall -pthread -o "$RUN/paced" "$SHARED_BENCH/mock/paced.c"
taskset -c "$LOADGEN_CPUS" "$RUN/paced" "$PACED_PORT" "$PACED_CHUNKS" "$PACED_GAP_MS" "$PACED_FIRST_MS" \
  >"$RUN/paced.log" 2>&1 &
PIDS+=($!)
cat >"$RUN/gatecore.yaml" <<EOF
server: {access_log: false}
providers:
  - {name: paced, kind: openai, base_url: "http://127.0.0.1:$PACED_PORT/v1", api_key: "none"}
models:
  - {name: paced, deployments: [{provider: paced, model: mock-paced}]}
auth: {master_key: "$KEY"}
store: {url: "sqlite:///$RUN/gatecore.db"}
EOF
taskset -c "$GW_CPUS" "$PY" -m gatecore serve --config "$RUN/gatecore.yaml" --port "$GW_PORT" \
  --log-level warning >"$RUN/gatecore.log" 2>&1 &
PIDS+=($!)
"$AIPERF_VENV/bin/python" "$ROOT/benches/aiperf_tokenizer.py" "$RUN/tokenizer" 2>/dev/null
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$GW_PORT/readyz" 2>/dev/null \
    && curl -fsS -o /dev/null "http://127.0.0.1:$PACED_PORT/health" 2>/dev/null && break
  sleep 0.1
done

profile() {  # TARGET CONCURRENCY REPEAT
  local target="$1" conc="$2" rep="$3" url extra=()
  if [ "$target" = gatecore ]; then
    url="http://127.0.0.1:$GW_PORT"
    extra=(--api-key "$KEY" --header "x-gatecore-run-id:bench-c$conc-r$rep")
  else
    url="http://127.0.0.1:$PACED_PORT"
  fi
  env -u HF_HUB_OFFLINE -u TRANSFORMERS_OFFLINE NO_PROXY=127.0.0.1 taskset -c "$LOADGEN_CPUS" \
    "$AIPERF_VENV/bin/aiperf" profile --model paced --url "$url" --endpoint-type chat --streaming \
    --tokenizer "$RUN/tokenizer" --use-server-token-count --no-server-metrics --no-gpu-telemetry \
    --ui-type none --request-count "$REQUESTS" --warmup-request-count "$conc" --concurrency "$conc" \
    ${RATE:+--request-rate "$RATE"} \
    --prompt-input-tokens-mean 64 --output-tokens-mean "$PACED_CHUNKS" --random-seed 7 \
    --artifact-dir "$OUT/$target-c$conc-r$rep" "${extra[@]}" >"$OUT/$target-c$conc-r$rep.log" 2>&1
  echo "  $target c=$conc repeat $rep done"
  if [ "$target" = gatecore ]; then
    sleep 0.5  # the ledger writes its rows in batches (every 0.2 s)
    curl -fsS -H "authorization: Bearer $KEY" \
      "http://127.0.0.1:$GW_PORT/admin/v1/runs/bench-c$conc-r$rep" >"$OUT/gatecore-c$conc-r$rep/run.json"
  fi
}

for rep in $(seq "$REPEATS"); do
  for conc in $CONCURRENCY; do
    if [ $((rep % 2)) = 1 ]; then order="direct gatecore"; else order="gatecore direct"; fi
    for target in $order; do profile "$target" "$conc" "$rep"; done
  done
done
cpu_idle >"$OUT/cpu-after.txt"
"$PY" "$ROOT/benches/aiperf_report.py" "$OUT" | tee "$OUT/report.md"
# The artifacts (aiperf's per-request records, logs) stay out of git; the table is kept beside them.
cp "$OUT/report.md" "$ROOT/benches/results/aiperf-$(basename "$OUT").md"
