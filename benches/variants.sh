#!/usr/bin/env bash
# A/B of gatecore configurations in ONE session: each variant runs the harness's gatecore target in
# turn (ROUNDS times, alternating, so drift hits every variant alike), then one table of medians.
#
#   benches/variants.sh      passthrough (auth, limits, ledger off), virtual (a store key among 10,000),
#                            full (virtual key + rpm/tpm/budget limits in shared memory + ledger),
#                            limits (full without the ledger; not in the default list),
#                            full_redis (the same with limits and budget on Redis)
#   VARIANTS="passthrough full" ROUNDS=3 benches/variants.sh
#   VARIANTS="plain observed traced traced_lean traced_10pct traced_1pct traced_0pct" benches/variants.sh
#                            telemetry: all off, metrics + access log, and OpenTelemetry traces (every
#                            request, without stage spans, 10 %, 1 %, 0 % sampled) to a loopback OTLP
#                            receiver
#
# Variants are functions `variant_<name>` that write a config to $1 and echo the bearer key to use.
# JSON and stream at c=32 only (MODES, CONCURRENCY), paced streams off; every run is bounded by the
# harness (DURATION s × REPEATS per mode). Results: benches/results/variants-STAMP.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
WORK="$(mktemp -d /tmp/gatecore-variants.XXXXXX)"
trap '[ -f "$WORK/redis.pid" ] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null; [ -f "$WORK/otlp.pid" ] && kill "$(cat "$WORK/otlp.pid")" 2>/dev/null; rm -rf "$WORK"' EXIT
: "${VARIANTS:=passthrough virtual full full_redis}" "${ROUNDS:=2}"
export MODES="${MODES:-json stream}" CONCURRENCY="${CONCURRENCY:-32}" REPEATS="${REPEATS:-3}"
export DURATION="${DURATION:-5}" PACED=0 KEEP_MOCKS=1
export RESULTS_DIR="$ROOT/benches/results/variants"
mkdir -p "$RESULTS_DIR"
BASE="$ROOT/benches/gatecore-bench.yaml"
STATIC_KEY="sk-gwbench-5f0c9a1e7b3d4c2a8e6f1b0d9c7a5e3f"

variant_passthrough() {  # no key of any kind (auth off), no ledger: the gateway's bare hop
  grep -v -e '^auth:' -e '^  keys:' "$BASE" >"$1"
  echo 'ledger: {enabled: false}' >>"$1"
  echo "unused"
}
variant_static() {  # the key written in the config file (ledger on)
  cp "$BASE" "$1"
  echo "$STATIC_KEY"
}
variant_virtual() {  # a virtual key from the store (HMAC lookup among 10,000 keys), no limits, no ledger
  store_variant "$1" 'ledger: {enabled: false}' ""
}
variant_full() {  # virtual key with rpm, tpm and budget limits (in-process, shared memory) + ledger
  store_variant "$1" "" '"rpm": 100000000, "tpm": 10000000000, "budget_usd": 1000000'
}
variant_limits() {  # full without the ledger: what the limits alone cost
  store_variant "$1" 'ledger: {enabled: false}' '"rpm": 100000000, "tpm": 10000000000, "budget_usd": 1000000'
}
variant_full_redis() {  # the same with the limits and budget on Redis (one Lua round trip per check)
  store_variant "$1" "redis: {url: \"redis://127.0.0.1:$REDIS_PORT/0\"}" '"rpm": 100000000, "tpm": 10000000000, "budget_usd": 1000000'
}

variant_plain() {  # the static key; ledger, metrics, access log and tracing off: the telemetry baseline
  cp "$BASE" "$1"
  printf 'ledger: {enabled: false}\ntelemetry: {metrics: false}\n' >>"$1"
  echo "$STATIC_KEY"
}
variant_observed() {  # plain + /metrics (its aggregation per request) + the JSON access log on stdout
  sed 's/^server: {access_log: false}/server: {access_log: true}/' "$BASE" >"$1"
  echo 'ledger: {enabled: false}' >>"$1"
  echo "$STATIC_KEY"
}
traced_variant() {  # $1 config path, $2 extra tracing settings: observed + traces to the loopback receiver
  variant_observed "$1" >/dev/null
  printf 'telemetry: {tracing: {enabled: true, endpoint: "http://127.0.0.1:%s/v1/traces"%s}}\n' "$OTLP_PORT" "$2" >>"$1"
  echo "$STATIC_KEY"
}
variant_traced() { traced_variant "$1" ", sample_ratio: 1.0"; }           # every request, stage spans too
variant_traced_lean() { traced_variant "$1" ", stage_spans: false"; }    # request, attempt and relay spans
variant_traced_10pct() { traced_variant "$1" ", sample_ratio: 0.1"; }    # one request in ten
variant_traced_1pct() { traced_variant "$1" ", sample_ratio: 0.01"; }    # one in a hundred
variant_traced_0pct() { traced_variant "$1" ", sample_ratio: 0.0"; }     # none: traceparent upstream only

OTLP_PORT=""
start_otlp() {  # a loopback OTLP/HTTP receiver that decodes and drops, on the mocks' core
  OTLP_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  ( cd "$ROOT" && exec taskset -c "${MOCK_CPUS:-1}" "$PY" -m tests.upstreams.otlp_receiver --port "$OTLP_PORT" --drop ) \
    >"$WORK/otlp.log" 2>&1 &
  echo $! >"$WORK/otlp.pid"
  for _ in $(seq 50); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$OTLP_PORT/" && break; sleep 0.1; done
}

REDIS_PORT=""
start_redis() {
  REDIS_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  taskset -c "${MOCK_CPUS:-1}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$WORK/redis.pid" >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

# $1 config path, $2 extra top-level YAML, $3 extra JSON fields of the bench key
store_variant() {
  grep -v -e '^auth:' -e '^  keys:' "$BASE" >"$1"
  printf 'auth: {master_key: "sk-bench-master-0123456789", key_hash_secret: "bench-hash-secret-0123456789"}\nstore: {url: "sqlite:///%s/%s.db"}\n' "$WORK" "$(basename "$1" .yaml)" >>"$1"
  [ -n "$2" ] && echo "$2" >>"$1"
  "$PY" - "$1" "{${3}}" <<'PY'
import asyncio, json, sys
from gatecore.config.source import read_config
from gatecore.identity.repository import IdentityRepository
from gatecore.identity.records import ApiKey
from gatecore.identity.secrets import KeyHasher
from gatecore.store import open_store
from gatecore.store.migrations import migrate
async def main() -> None:
    config = read_config(sys.argv[1], demo=False)
    store = await open_store(config.store.url)
    await migrate(store)
    repo = IdentityRepository(store, KeyHasher(config.auth.key_hash_secret))
    for i in range(10_000):
        await repo.create_key(ApiKey(id="", name=f"filler-{i}", prefix="", hash=""), "bench")
    key, secret = await repo.create_key(ApiKey(id="", name="bench", prefix="", hash="", **json.loads(sys.argv[2])), "bench")
    await store.close()
    print(secret)
asyncio.run(main())
PY
}

[[ " $VARIANTS " == *" full_redis "* ]] && start_redis
[[ " $VARIANTS " == *" traced"* ]] && start_otlp
declare -A summaries
for round in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    cfg="$WORK/$v.yaml"
    key="$("variant_$v" "$cfg" | tail -n 1)"
    echo "variants: round $round, $v"
    GATECORE_CONFIG_BENCH="$cfg" BENCH_API_KEY="$key" NOTE="variant $v, round $round" \
      "$ROOT/benches/run.sh" gatecore >"$WORK/$v-$round.log" 2>&1 || { tail -n 30 "$WORK/$v-$round.log"; exit 1; }
    summaries[$v]+="$(ls -t "$RESULTS_DIR"/gatecore-2*.summary.json | head -n 1) "
  done
done

REPORT="$ROOT/benches/results/variants-$(date -u +%Y%m%dT%H%M%SZ).md"
for v in $VARIANTS; do echo "$v ${summaries[$v]}"; done | "$PY" -c '
import json, statistics, sys
rows = []
for line in sys.stdin:
    name, *files = line.split()
    rps = {}
    for f in files:
        for load in json.load(open(f))["load"]:
            rps.setdefault(load["mode"], []).extend(load["rps_all"])
    rows.append((name, {m: statistics.median(v) for m, v in rps.items()}, {m: len(v) for m, v in rps.items()}))
base = rows[0][1]
print("| variant | " + " | ".join(f"{m} req/s c=32 (median of n)" for m in base) + " |")
print("|---|" + "---:|" * len(base))
for name, med, n in rows:
    cells = [f"{med[m]:,.0f} (n={n[m]}, {med[m] / base[m]:.3f}x)" for m in base]
    print(f"| {name} | " + " | ".join(cells) + " |")
' | tee "$REPORT"
echo "report -> $REPORT"
