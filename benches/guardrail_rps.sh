#!/usr/bin/env bash
# Gateway req/s at c=32 with the default guardrail policy on vs off, through the real server: one
# gatecore (1 worker, core 0) serving `mock` (no guardrails) and `mock-guarded` (the README's
# default policy), the harness's nginx JSON mock and wrk on core 1; a ~1.5 KB prompt without PII
# (benches/guardrail_rps.lua). The two models alternate ROUNDS times, wrk DURATION s per run; prints
# each run, the medians (req/s and p50 at c=32), their ratio and the median of each round's ratio.
#
#   benches/guardrail_rps.sh          ROUNDS=5 DURATION=5 PY=/path/to/python
#
# Every loop is bounded (ROUNDS × 2 runs, wrk under timeout).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
H="${GWBENCH_HARNESS:-$ROOT/../shared/bench}"
: "${ROUNDS:=5}" "${DURATION:=5}" "${PORT:=18557}"
export BENCH_API_KEY=sk-gwbench-5f0c9a1e7b3d4c2a8e6f1b0d9c7a5e3f
GWBENCH_RUN=/tmp/gwbench MOCK_CPUS=1 bash "$H/mock/start.sh" >/dev/null
OUT="$(mktemp -d /tmp/gatecore-guard-bench.XXXXXX)"
( cd "$ROOT" && GATECORE_STORE_URL="sqlite:///$OUT/gatecore.db" PYTHONPATH="$ROOT/python" exec taskset -c 0 \
    "$PY" -m gatecore serve --config benches/guardrail_rps.yaml --host 127.0.0.1 --port "$PORT" ) >"$OUT/gw.log" 2>&1 &
GW=$!
trap 'kill "$GW" 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 100); do curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/readyz" 2>/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT/v1/chat/completions"
for model in mock mock-guarded; do  # warm-up
  BENCH_MODEL=$model timeout 10 taskset -c 1 wrk -t1 -c32 -d1s -s "$ROOT/benches/guardrail_rps.lua" "$URL" >/dev/null 2>&1 || true
done
: >"$OUT/runs.jsonl"
for round in $(seq "$ROUNDS"); do
  for model in mock mock-guarded; do
    line="$(BENCH_MODEL=$model timeout $((DURATION + 10)) taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" --timeout 10s \
      -s "$ROOT/benches/guardrail_rps.lua" "$URL" 2>&1 | sed -n 's/^WRKJSON //p')"
    echo "{\"round\": $round, \"model\": \"$model\", \"wrk\": $line}" | tee -a "$OUT/runs.jsonl"
  done
done
"$PY" - "$OUT/runs.jsonl" <<'PYEOF'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
def med(model, what):
    values = []
    for r in runs:
        if r["model"] == model:
            w = r["wrk"]
            assert w["errors"]["status"] == 0, r
            values.append(w["requests"] / (w["duration_us"] / 1e6) if what == "rps" else w["lat_us"]["p50"] / 1000)
    return statistics.median(values)
off, on = med("mock", "rps"), med("mock-guarded", "rps")
print(f"req/s c=32: off {off:.0f}   on {on:.0f}   ratio {on / off:.3f}")
# Each round's two runs are adjacent in time: their ratio is the steadier figure when the load drifts.
rate = {(r["round"], r["model"]): r["wrk"]["requests"] / (r["wrk"]["duration_us"] / 1e6) for r in runs}
paired = statistics.median(rate[(n, "mock-guarded")] / rate[(n, "mock")] for n in {r["round"] for r in runs})
print(f"median of the rounds' on/off ratios: {paired:.3f}")
print(f"p50 c=32:   off {med('mock', 'p50'):.3f} ms   on {med('mock-guarded', 'p50'):.3f} ms")
PYEOF
