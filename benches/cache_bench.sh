#!/usr/bin/env bash
# The response cache's figures (issue 19), one session, rounds interleaved so drift hits each alike:
#   ceiling  the granian ceiling anchor (granian answering the mock's bodies, no upstream, no logic)
#   off      gatecore, benches/gatecore-bench.yaml
#   hit      the same with `cache: {enabled: true}`: after the first request every one is an exact hit
#   miss     cache on, every request sent with `cache-control: no-store`: looked up, missed, never
#            stored (the lookup's cost on a miss; the store's capture and insert are not in it)
# wrk at c=32 for DURATION s per run, MODE=json|stream; prints each run and the medians, each as a
# ratio of the ceiling's median and hit/miss also of off's.
#   base     with BASE=<another checkout> (e.g. the main branch): `hit` run from that tree's python/,
#            interleaved with the others, for a before/after of a change to the hit path in one run
#
#   benches/cache_bench.sh        MODE=json ROUNDS=3 DURATION=5 WARMUP=1   (PY: the venv's python)
# Layout as the harness: servers on core 0, the mocks and wrk on core 1. Every loop is bounded.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
H="${GWBENCH_HARNESS:-$ROOT/../shared/bench}"
: "${MODE:=json}" "${ROUNDS:=3}" "${DURATION:=5}" "${WARMUP:=1}" "${PORT:=18556}"
: "${BENCH_API_KEY:=sk-gwbench-5f0c9a1e7b3d4c2a8e6f1b0d9c7a5e3f}"
export BENCH_MODE="$MODE" BENCH_API_KEY
GWBENCH_RUN=/tmp/gwbench MOCK_CPUS=1 bash "$H/mock/start.sh" >/dev/null
OUT="$(mktemp -d /tmp/gatecore-cache-bench.XXXXXX)"
GW=""
trap '[ -n "$GW" ] && kill "$GW" 2>/dev/null; rm -rf "$OUT"' EXIT
cp "$ROOT/benches/gatecore-bench.yaml" "$OUT/off.yaml"
{ cat "$ROOT/benches/gatecore-bench.yaml"; echo "cache: {enabled: true}"; } >"$OUT/on.yaml"

wrk_rps() {  # URL [extra header] -> req/s (errors fail the run)
  local url="$1" headers="${2:-}"
  BENCH_HEADERS="$headers" timeout $((WARMUP + 10)) taskset -c 1 wrk -t1 -c32 -d"${WARMUP}s" -s "$H/lib/chat.lua" "$url" >/dev/null 2>&1 || true
  local line
  line="$(BENCH_HEADERS="$headers" timeout $((DURATION + 10)) taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" --timeout 10s -s "$H/lib/chat.lua" "$url" 2>&1 | sed -n 's/^WRKJSON //p')"
  "$PY" -c '
import json, sys
w = json.loads(sys.argv[1])
bad = sum(w["errors"].values())
assert bad == 0, f"{bad} errors"
n, us = w["requests"], w["duration_us"]
print(round(n / (us / 1e6)))
' "$line"
}

start() {  # command... ; waits until PORT answers (SRC: the tree whose python/ serves)
  ( cd "$ROOT" && PYTHONPATH="${SRC:-$ROOT}/python" exec taskset -c 0 "$@" ) >"$OUT/server.log" 2>&1 &
  GW=$!
  for _ in $(seq 100); do curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz" 2>/dev/null && return; sleep 0.1; done
}

stop() { kill "$GW" 2>/dev/null || true; wait "$GW" 2>/dev/null || true; GW=""; }

run_one() {  # variant -> req/s
  local url="http://127.0.0.1:$PORT/v1/chat/completions"
  case "$1" in
    ceiling)
      ( cd "$H/anchors/granian-ceiling" && exec taskset -c 0 "$(dirname "$PY")/granian" --interface rsgi \
          --workers 1 --loop uvloop --host 127.0.0.1 --port "$PORT" --no-access-log app:app ) >"$OUT/server.log" 2>&1 &
      GW=$!
      for _ in $(seq 100); do curl -fsS -o /dev/null --max-time 1 -X POST "http://127.0.0.1:$PORT/" 2>/dev/null && break; sleep 0.1; done
      wrk_rps "$url"; stop ;;
    off) start "$PY" -m gatecore serve --config "$OUT/off.yaml" --host 127.0.0.1 --port "$PORT"; wrk_rps "$url"; stop ;;
    hit) start "$PY" -m gatecore serve --config "$OUT/on.yaml" --host 127.0.0.1 --port "$PORT"; wrk_rps "$url"; stop ;;
    base)
      SRC="$BASE" start "$PY" -m gatecore serve --config "$OUT/on.yaml" --host 127.0.0.1 --port "$PORT"
      wrk_rps "$url"; stop ;;
    miss)
      start "$PY" -m gatecore serve --config "$OUT/on.yaml" --host 127.0.0.1 --port "$PORT"
      wrk_rps "$url" "Cache-Control: no-store"; stop ;;
  esac
}

declare -A RPS
VARIANTS=(ceiling off hit miss)
[ -n "${BASE:-}" ] && VARIANTS+=(base)
for round in $(seq "$ROUNDS"); do
  for v in "${VARIANTS[@]}"; do
    rps="$(run_one "$v")"
    echo "round $round $MODE $v: $rps req/s"
    RPS[$v]+="$rps "
  done
done
"$PY" -c '
import statistics, sys
mode, runs = sys.argv[1], dict(zip(("ceiling", "off", "hit", "miss", "base"), sys.argv[2:]))
med = {k: statistics.median(float(x) for x in v.split()) for k, v in runs.items() if v.strip()}
for k, m in med.items():
    off, ceiling = med["off"], med["ceiling"]
    extra = f", {m / off:.3f}x of off" if k in ("hit", "miss", "base") else ""
    print(f"{mode} {k}: median {m:,.0f} req/s, {m / ceiling:.3f}x of the ceiling{extra}")
' "$MODE" "${RPS[ceiling]}" "${RPS[off]}" "${RPS[hit]}" "${RPS[miss]}" "${RPS[base]:-}"
