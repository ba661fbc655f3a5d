#!/usr/bin/env bash
# bench/overhead.sh [RATES] [DURATION] — reproduces the gateway-overhead table.
#
# Builds multipolar, starts it with key auth, metrics and the request log on,
# routed to the mock upstream that ../shared/bench/overhead.sh starts on
# 127.0.0.1:18080, then runs that script (direct, floor proxy, nginx and the
# gateway interleaved in one run) and stops the gateway. Extra environment is
# passed through to overhead.sh (ROUNDS, MAXTP, TARGETS, MOCK_FLAGS, ...).
#
#   bench/overhead.sh                 # rates 500,2000,5000, 10 s each, + max throughput
#   bench/overhead.sh 2000 20         # 2,000 req/s for 20 s
#   STREAM=1 bench/overhead.sh 2000   # streamed requests (BODY with "stream":true)
#   PROFILE=core bench/overhead.sh    # ledger off, no budgets, limits, agreements or policies
#   PROFILE=metering ...              # + SQLite ledger, prices, a budget and rate limits on the key
#   PROFILE=routing ...               # + a first-refusal agreement, tiers and a workload policy
#   PROFILE=full ...                  # metering and routing (the default)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
[ -x "$SHARED/overhead.sh" ] || { echo "bench: $SHARED/overhead.sh not found (set SHARED)" >&2; exit 1; }
PORT=${GATEWAY_PORT:-8080}
WORK=$(mktemp -d /tmp/multipolar-bench.XXXXXX)
trap 'kill "$GW" 2>/dev/null || true; wait "$GW" 2>/dev/null || true' EXIT

go build -C "$ROOT" -o "$WORK/multipolar" ./cmd/multipolar
PROFILE=${PROFILE:-full}
. "$ROOT/bench/profile.sh"
write_config "$PROFILE" "$PORT" "$WORK/multipolar.yaml" "$WORK/ledger.db"
echo "bench: profile $PROFILE"
env BENCH_KEY=sk-bench ${GOGC:+GOGC=$GOGC} "$WORK/multipolar" serve --config "$WORK/multipolar.yaml" 2>"$WORK/gateway.log" &
GW=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

if [ "${STREAM:-0}" = 1 ] && [ -z "${BODY:-}" ]; then
  BODY=$WORK/stream.json
  echo '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello to the benchmark."}]}' > "$BODY"
  export BODY
fi
TARGET_HEADER='Authorization: Bearer sk-bench' "$SHARED/overhead.sh" "http://127.0.0.1:$PORT" "$@"
echo "gateway log: $WORK/gateway.log ($(wc -l < "$WORK/gateway.log") lines)"
