#!/usr/bin/env bash
# A/B of gatecore configurations in ONE session: each variant runs the harness's gatecore target in
# turn (ROUNDS times, alternating, so drift hits every variant alike), then one table of medians.
#
#   benches/variants.sh                 the variants below: auth off, static key, virtual key (store)
#   VARIANTS="off virtual" ROUNDS=2 benches/variants.sh
#
# Variants are functions `variant_<name>` that write a config to $1 and echo the bearer key to use.
# JSON and stream at c=32 only (MODES, CONCURRENCY), paced streams off; every run is bounded by the
# harness (DURATION s × REPEATS per mode). Results: benches/results/variants-STAMP.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
WORK="$(mktemp -d /tmp/gatecore-variants.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
: "${VARIANTS:=off static virtual}" "${ROUNDS:=2}"
export MODES="${MODES:-json stream}" CONCURRENCY="${CONCURRENCY:-32}" REPEATS="${REPEATS:-3}"
export DURATION="${DURATION:-5}" PACED=0 KEEP_MOCKS=1
export RESULTS_DIR="$ROOT/benches/results/variants"
mkdir -p "$RESULTS_DIR"
BASE="$ROOT/benches/gatecore-bench.yaml"
STATIC_KEY="sk-gwbench-5f0c9a1e7b3d4c2a8e6f1b0d9c7a5e3f"

variant_off() {  # no key of any kind: auth is off
  grep -v -e '^auth:' -e '^  keys:' "$BASE" >"$1"
  echo "unused"
}
variant_static() {  # the key written in the config file
  cp "$BASE" "$1"
  echo "$STATIC_KEY"
}
variant_virtual() {  # a virtual key from the store (HMAC lookup), among 10,000 others
  grep -v -e '^auth:' -e '^  keys:' "$BASE" >"$1"
  printf 'auth: {master_key: "sk-bench-master-0123456789", key_hash_secret: "bench-hash-secret-0123456789"}\nstore: {url: "sqlite:///%s/store.db"}\n' "$WORK" >>"$1"
  "$PY" - "$1" >/dev/null <<'PY'
import asyncio, sys
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
    await store.close()
asyncio.run(main())
PY
  "$PY" -m gatecore keys --config "$1" create --name bench | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}

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
