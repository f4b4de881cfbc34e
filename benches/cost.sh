#!/usr/bin/env bash
# Deterministic cost per request (valgrind callgrind instructions) for the granian ceiling and gatecore's
# default and every-policy configurations, per request kind, at c=1 and c=16: prints one table.
#   benches/cost.sh                       # ~6 min; N=600 requests per cell
#   N=300 CONC="1" TARGETS="ceiling default" benches/cost.sh
# Details: benches/cost.py. Needs valgrind (apt-get install -y valgrind). Bounded: every cell is N
# requests (plus a warm-up of N/3), each under a 600 s timeout.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=/work/main/.venv/bin/python
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install -y valgrind" >&2; exit 1; }
cd "$ROOT"
PYTHONPATH="$ROOT/python" exec timeout 3600 "$PY" benches/cost.py --n "${N:-600}" --conc "${CONC:-1 16}" \
  --targets "${TARGETS:-ceiling default all}" --kinds "${KINDS:-json stream translated}" ${JSON_OUT:+--json-out "$JSON_OUT"}
