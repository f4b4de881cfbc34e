#!/usr/bin/env bash
# Responses pass-through req/s at c=32 as a ratio of chat pass-through, same server, same run: an
# nginx fixed-answer upstream (a chat.completion for /v1/chat/completions, a response object for
# /v1/responses), one gatecore worker (provider `responses: native`) on core 0, wrk on core 1,
# chat and responses alternated ROUNDS times, DURATION s each; prints each run and the medians.
#
#   benches/responses_passthrough.sh        ROUNDS=8 DURATION=4 PORT=18701 UPSTREAM_PORT=18700
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
: "${ROUNDS:=8}" "${DURATION:=4}" "${PORT:=18701}" "${UPSTREAM_PORT:=18700}"
DIR="$(mktemp -d /tmp/gatecore-responses-bench.XXXXXX)"
GW=""
trap '[ -n "$GW" ] && kill "$GW" 2>/dev/null; nginx -c "$DIR/nginx.conf" -s stop 2>/dev/null; rm -rf "$DIR"' EXIT
"$PY" - "$DIR" "$PORT" "$UPSTREAM_PORT" <<'PYEOF'
import json, sys
d, port, up = sys.argv[1], sys.argv[2], sys.argv[3]
text = "Hello from the mock upstream, a fixed reply."
chat = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "mock-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22}}
resp = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "mock-model",
        "output": [{"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "usage": {"input_tokens": 12, "output_tokens": 10, "total_tokens": 22}}
q = lambda o: json.dumps(o, separators=(",", ":")).replace("'", "\\'")
open(f"{d}/nginx.conf", "w").write(f"""worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d}; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{up}; default_type application/json;
    location = /v1/chat/completions {{ return 200 '{q(chat)}'; }}
    location = /v1/responses {{ return 200 '{q(resp)}'; }} }} }}
""")
open(f"{d}/gw.yaml", "w").write(f"""server: {{host: 127.0.0.1, port: {port}, workers: 1, access_log: false}}
providers: [{{name: up, kind: openai, base_url: "http://127.0.0.1:{up}/v1", api_key: x, responses: native}}]
models: [{{name: m, deployments: [{{provider: up, model: mock-model}}]}}]
auth: {{master_key: sk-rbench-0123456789}}
store: {{url: "sqlite:///{d}/store.db"}}
""")
bodies = {"chat": ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hello"}]}),
          "responses": ("/v1/responses", {"model": "m", "input": "hello", "store": False})}
for name, (path, body) in bodies.items():
    open(f"{d}/{name}.lua", "w").write(f"""wrk.method = "POST"
wrk.path = "{path}"
wrk.body = '{json.dumps(body)}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-rbench-0123456789"
""")
PYEOF
nginx -c "$DIR/nginx.conf"
( cd "$ROOT" && PYTHONPATH="$ROOT/python" exec taskset -c 0 "$PY" -m gatecore serve --config "$DIR/gw.yaml" ) >"$DIR/gw.log" 2>&1 &
GW=$!
for _ in $(seq 1 60); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.5; done
for i in $(seq 1 "$ROUNDS"); do
  for e in chat responses; do
    r=$(taskset -c 1 timeout $((DURATION + 10)) wrk -t1 -c32 -d"${DURATION}s" -s "$DIR/$e.lua" "http://127.0.0.1:$PORT" | awk '/Requests\/sec/{print $2}')
    echo "$i $e $r" | tee -a "$DIR/runs.txt"
  done
done
"$PY" -c "
import statistics as s, sys
rows = [l.split() for l in open(sys.argv[1])]
m = {k: s.median(float(r[2]) for r in rows if r[1] == k) for k in ('chat', 'responses')}
print(f\"median req/s: chat {m['chat']:.0f}, responses {m['responses']:.0f}, ratio {m['responses'] / m['chat']:.3f}\")
" "$DIR/runs.txt"
