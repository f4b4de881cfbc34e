#!/usr/bin/env bash
# A published prompt's call vs the plain chat call it renders to, on one server in one run:
# POST /v1/prompts/bench (benches/prompt.lua) and POST /v1/chat/completions (the harness's
# lib/chat.lua, the same messages and parameters), alternated ROUNDS times at c=1 and c=32, wrk
# DURATION s per run; prints each run and the medians (p50 at c=1, req/s at c=32).
#
#   benches/prompt_overhead.sh          ROUNDS=3 DURATION=5 PY=/path/to/python
#
# Layout as the harness: gatecore (1 worker) on core 0, the nginx mock and wrk on core 1. Every loop
# is bounded (ROUNDS × 4 runs, wrk under timeout).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
H="${GWBENCH_HARNESS:-$ROOT/../shared/bench}"
: "${ROUNDS:=3}" "${DURATION:=5}" "${PORT:=18556}"
export BENCH_MODE=json BENCH_API_KEY=sk-gwbench-5f0c9a1e7b3d4c2a8e6f1b0d9c7a5e3f
MASTER=sk-prompt-bench-master-0c1d
GWBENCH_RUN=/tmp/gwbench MOCK_CPUS=1 bash "$H/mock/start.sh" >/dev/null
rm -f /tmp/gatecore-prompt-bench.db*
OUT="$(mktemp -d /tmp/gatecore-prompt-bench.XXXXXX)"
( cd "$ROOT" && PYTHONPATH="$ROOT/python" exec taskset -c 0 "$PY" -m gatecore serve \
    --config benches/prompt_overhead.yaml --host 127.0.0.1 --port "$PORT" ) >"$OUT/gw.log" 2>&1 &
GW=$!
trap 'kill "$GW" 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 100); do curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/readyz" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null --max-time 5 -H "authorization: Bearer $MASTER" -H 'content-type: application/json' \
  "http://127.0.0.1:$PORT/admin/v1/prompts" -d '{"name": "bench", "model": "mock",
  "messages": [{"role": "system", "content": "You are a terse assistant."},
               {"role": "user", "content": "Say hello in {{ words }}."}],
  "variables": {"type": "object", "properties": {"words": {"type": "string"}}, "required": ["words"]},
  "params": {"max_tokens": 32, "temperature": 0}}'
declare -A SCRIPT=([chat]="$H/lib/chat.lua" [prompt]="$ROOT/benches/prompt.lua")
declare -A URL=([chat]="http://127.0.0.1:$PORT/v1/chat/completions" [prompt]="http://127.0.0.1:$PORT/v1/prompts/bench")
for path in chat prompt; do  # warm-up
  timeout 10 taskset -c 1 wrk -t1 -c32 -d1s -s "${SCRIPT[$path]}" "${URL[$path]}" >/dev/null 2>&1 || true
done
: >"$OUT/runs.jsonl"
for round in $(seq "$ROUNDS"); do
  for conc in 1 32; do
    for path in chat prompt; do
      line="$(timeout $((DURATION + 10)) taskset -c 1 wrk -t1 -c"$conc" -d"${DURATION}s" --timeout 10s \
        -s "${SCRIPT[$path]}" "${URL[$path]}" 2>&1 | sed -n 's/^WRKJSON //p')"
      echo "{\"round\": $round, \"path\": \"$path\", \"c\": $conc, \"wrk\": $line}" | tee -a "$OUT/runs.jsonl"
    done
  done
done
"$PY" - "$OUT/runs.jsonl" <<'PYEOF'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
def med(path, c, what):
    values = []
    for r in runs:
        if r["path"] == path and r["c"] == c:
            w = r["wrk"]
            assert w["errors"]["status"] == 0, r
            values.append(w["requests"] / (w["duration_us"] / 1e6) if what == "rps" else w["lat_us"]["p50"] / 1000)
    return statistics.median(values)
chat_p50, prompt_p50 = med("chat", 1, "p50"), med("prompt", 1, "p50")
chat_rps, prompt_rps = med("chat", 32, "rps"), med("prompt", 32, "rps")
print(f"p50 c=1:    chat {chat_p50:.3f} ms   prompt {prompt_p50:.3f} ms   added {prompt_p50 - chat_p50:+.3f} ms")
print(f"req/s c=32: chat {chat_rps:.0f}   prompt {prompt_rps:.0f}   ratio {prompt_rps / chat_rps:.3f}")
PYEOF
