-- wrk script (benches/guardrail_rps.sh): a ~1.5 KB chat body, no PII, to BENCH_MODEL (`mock` or
-- `mock-guarded`), its user text different in every request; prints one machine-readable line at the end.
local key = os.getenv("BENCH_API_KEY") or "sk-gwbench-5f0c9a1e7b3d4c2a8e6f1b0d9c7a5e3f"
local model = os.getenv("BENCH_MODEL") or "mock"
local prose = "the gateway routes each request to a deployment and streams the answer back to the client. "
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["X-Mock-Mode"] = "json"
local head = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are a terse assistant."},' ..
  '{"role":"user","content":"'
local tail = string.sub(string.rep(prose, 16), 1, 1380) .. '"}],"max_tokens":32,"temperature":0}'
local n = 0

-- Each request's user text differs (a counter first): no guard may answer from what it remembers of
-- an earlier text (the injection score is remembered by text hash), as with real traffic.
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, head .. "request " .. n .. ": " .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"errors":{"status":%d,"connect":%d,"timeout":%d},' ..
    '"lat_us":{"p50":%d,"p99":%d}}\n',
    summary.requests, summary.duration, e.status, e.connect, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
