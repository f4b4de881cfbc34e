#!/usr/bin/env bash
# gatecore load bench: the anchors and gatecore measured in ONE session, then one comparison table.
#
#   benches/run.sh [TARGET ...]      TARGETs: direct nginx granian-ceiling gatecore (default: all four)
#   QUICK=1 benches/run.sh           fast iteration: REPEATS=1 DURATION=3 CONCURRENCY="1 32" PACED_DURATION=3,
#                                    results in benches/results/quick/
#
# The shared harness (../shared/bench, read-only) is copied to benches/.harness/ (git-ignored) and run
# from there with RESULTS_DIR=benches/results, so raw runs land in benches/results/raw/, medians in
# benches/results/TARGET-STAMP.summary.json and the session's table in benches/results/report-STAMP.md.
# Layout: gatecore on core 0 (GW_CPUS), mocks + wrk + stream client on core 1 (MOCK_CPUS, LOADGEN_CPUS).
#
# Knobs (env, passed through to the harness): MODES, CONCURRENCY, REPEATS, DURATION, WARMUP, PACED,
# PACED_CONC, PACED_DURATION, BENCH_API_KEY, NOTE; here: GATECORE_PORT (8080), GATECORE_CONFIG_BENCH,
# GWBENCH_HARNESS (source of the harness), KEEP_MOCKS=1 (leave the mock upstreams running; mocks that
# were already up before the run are always left running).
# Every loop here is bounded; the harness bounds its own (wrk -d under timeout, stream client --duration).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="${GWBENCH_HARNESS:-$ROOT/../shared/bench}"
H="$ROOT/benches/.harness"
RUN="${GWBENCH_RUN:-/tmp/gwbench}"
PORT="${GATECORE_PORT:-8080}"
CONFIG="${GATECORE_CONFIG_BENCH:-$ROOT/benches/gatecore-bench.yaml}"
TARGETS="${*:-direct nginx granian-ceiling gatecore}"

# --- settings (defaults per the bench issue; QUICK=1 for fast iteration) -------------------------
if [ "${QUICK:-0}" = 1 ]; then
  : "${REPEATS:=1}" "${DURATION:=3}" "${CONCURRENCY:=1 32}" "${PACED_DURATION:=3}" "${WARMUP:=1}"
  : "${RESULTS_DIR:=$ROOT/benches/results/quick}"   # quick figures are not for the README
fi
: "${MODES:=json stream}" "${CONCURRENCY:=1 32 256}" "${REPEATS:=3}" "${PACED_CONC:=1 16}"
export MODES CONCURRENCY REPEATS PACED_CONC
for v in DURATION WARMUP PACED PACED_DURATION BENCH_API_KEY; do
  if [ -n "${!v:-}" ]; then export "${v?}"; fi
done
export RESULTS_DIR="${RESULTS_DIR:-$ROOT/benches/results}"
export GW_CPUS="${GW_CPUS:-0}" MOCK_CPUS="${MOCK_CPUS:-1}" LOADGEN_CPUS="${LOADGEN_CPUS:-1}" GWBENCH_RUN="$RUN"

# --- tools the harness needs (Debian packages) ---------------------------------------------------
missing=()
for p in nginx:nginx-light wrk:wrk gcc:gcc curl:curl taskset:util-linux; do
  command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "benches: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- a writable copy of the harness (results excluded: they go to RESULTS_DIR) --------------------
[ -f "$SRC/run.sh" ] || { echo "harness not found at $SRC (set GWBENCH_HARNESS)" >&2; exit 1; }
rm -rf "$H"; mkdir -p "$H" "$RESULTS_DIR/raw" "$RUN"
tar -C "$SRC" --exclude=./results -cf - . | tar -C "$H" -xf -
chmod -R u+w "$H"

GW=""
cleanup() {
  if [ -n "$GW" ] && kill -0 "$GW" 2>/dev/null; then
    kill "$GW" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$GW" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$GW" 2>/dev/null && kill -9 "$GW" 2>/dev/null || true
  fi
  # stop the mocks only if this run started them (another session may be using them)
  [ "${KEEP_MOCKS:-0}" = 1 ] || [ "$MOCKS_WERE_UP" = 1 ] || bash "$H/mock/stop.sh" || true
}
MOCKS_WERE_UP=0
curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:18000/health 2>/dev/null && MOCKS_WERE_UP=1
trap cleanup EXIT

bash "$H/mock/start.sh"
# other load on the machine skews every figure: measure it (1 s, per core) and say so in the report
IDLE_CHECK="$(python3 - <<'PY'
import time
def snap():
    with open("/proc/stat") as f:
        return {l.split()[0]: [int(x) for x in l.split()[1:]] for l in f if l[:3] == "cpu" and l[3].isdigit()}
a = snap(); time.sleep(1); b = snap()
busy = {k: 100 * (1 - ((b[k][3] + b[k][4]) - (a[k][3] + a[k][4])) / max(1, sum(b[k]) - sum(a[k]))) for k in a}
print(" ".join(f"{k} {v:.0f}%" for k, v in sorted(busy.items())))
PY
)"
echo "benches: cores busy before the run (should be ~0): $IDLE_CHECK"
MARK="$RUN/benches-session.mark"; touch "$MARK"; sleep 1   # summaries newer than this are this session's

# --- anchors ---------------------------------------------------------------------------------------
anchors=()
for t in $TARGETS; do [ "$t" != gatecore ] && anchors+=("$t"); done
[ "${#anchors[@]}" -eq 0 ] || bash "$H/run_baseline.sh" "${anchors[@]}"

# --- gatecore ------------------------------------------------------------------------------------
if [[ " $TARGETS " == *" gatecore "* ]]; then
  PY="$ROOT/.venv/bin/python"
  [ -x "$PY" ] && "$PY" -c 'import gatecore._core' 2>/dev/null \
    || { echo "gatecore is not built into .venv: run 'make build'" >&2; exit 1; }
  curl -sS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" 2>/dev/null \
    && { echo "port $PORT is already in use" >&2; exit 1; }
  ( cd "$ROOT" && exec taskset -c "$GW_CPUS" "$PY" -m gatecore serve --config "$CONFIG" \
      --host 127.0.0.1 --port "$PORT" ) >"$RUN/gatecore.log" 2>&1 &
  GW=$!
  for _ in $(seq 300); do   # up to 30 s
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
    kill -0 "$GW" 2>/dev/null || break
    sleep 0.1
  done
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz" \
    || { echo "gatecore did not come up; log:" >&2; tail -n 40 "$RUN/gatecore.log" >&2; exit 1; }
  sha="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  dirty="$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo +dirty || true)"
  GATEWAY_PID="$GW" NOTE="${NOTE:-gatecore $sha$dirty, 1 worker, $(basename "$CONFIG")}" \
    bash "$H/run.sh" gatecore "http://127.0.0.1:$PORT"
  kill "$GW" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$GW" 2>/dev/null || break; sleep 0.1; done
fi

# --- this session's table: targets in the order given, direct first when present -------------------
sums=()
for t in $TARGETS; do
  f="$(find "$RESULTS_DIR" -maxdepth 1 -name "$t-2*.summary.json" -newer "$MARK" | sort | tail -n 1)"
  [ -n "$f" ] && sums+=("$f")
done
[ "${#sums[@]}" -gt 0 ] || { echo "no summaries from this session" >&2; exit 1; }
REPORT="$RESULTS_DIR/report-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "# gatecore bench session $(date -u +%FT%TZ)"
  echo
  echo "Settings: MODES=\"$MODES\" CONCURRENCY=\"$CONCURRENCY\" REPEATS=$REPEATS DURATION=${DURATION:-10}" \
       "PACED_CONC=\"$PACED_CONC\" PACED_DURATION=${PACED_DURATION:-8}; gateway cpus $GW_CPUS, load+mock cpus $LOADGEN_CPUS."
  echo "Cores busy before the run: $IDLE_CHECK. Summaries: ${sums[*]##*/}"
  echo
  python3 "$H/lib/summarize.py" report "${sums[@]}"
} | tee "$REPORT"
echo "report -> $REPORT"
