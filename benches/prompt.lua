-- wrk script: POST /v1/prompts/bench with its variables (benches/prompt_overhead.sh); the rendered
-- request is the one lib/chat.lua sends, so the two differ only by the published-prompt path.
local key = os.getenv("BENCH_API_KEY") or "sk-gwbench-5f0c9a1e7b3d4c2a8e6f1b0d9c7a5e3f"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["X-Mock-Mode"] = "json"
wrk.body = '{"variables":{"words":"one short sentence"}}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"errors":{"status":%d,"connect":%d,"timeout":%d},' ..
    '"lat_us":{"p50":%d,"p99":%d}}\n',
    summary.requests, summary.duration, e.status, e.connect, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
