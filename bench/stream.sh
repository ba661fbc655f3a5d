#!/usr/bin/env bash
# bench/stream.sh — streamed-event latency and memory with many open streams.
#
# Starts streamlat's SSE upstream, the floor proxy (../shared/bench/floorproxy)
# and multipolar in front of it, then
#   1. measures upstream-flush -> client-read latency per event for direct,
#      floor and gateway, interleaved in one run;
#   2. holds OPEN (default 1000) streams open through the gateway and reports
#      its RSS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
UP=127.0.0.1:18085 FLOOR=127.0.0.1:18086 GWADDR=127.0.0.1:18087
WORK=$(mktemp -d /tmp/multipolar-stream.XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
ulimit -n 65536 2>/dev/null || true

go build -C "$ROOT" -o "$WORK/multipolar" ./cmd/multipolar
go build -C "$ROOT" -o "$WORK/streamlat" ./bench/streamlat
go build -C "$SHARED/floorproxy" -o "$WORK/floorproxy" .
cat > "$WORK/multipolar.yaml" <<YAML
listen: $GWADDR
log: {level: warn}
providers:
  - {name: lat, type: openai-compatible, base_url: "http://$UP/v1"}
models:
  - {name: gpt-4o-mini, routes: [lat]}
keys:
  - {name: bench, key: "\${BENCH_KEY}"}
YAML
"$WORK/streamlat" -upstream "$UP" -serve & PIDS+=($!)
"$WORK/floorproxy" -listen "$FLOOR" -upstream "http://$UP" 2>/dev/null & PIDS+=($!)
BENCH_KEY=sk-bench "$WORK/multipolar" serve --config "$WORK/multipolar.yaml" & GW=$!; PIDS+=($GW)
for _ in $(seq 100); do curl -fs "http://$GWADDR/healthz" >/dev/null && break; sleep 0.1; done

# The measuring streamlat needs its own upstream port; it talks to the served one.
"$WORK/streamlat" -upstream 127.0.0.1:0 -targets "direct=http://$UP,floor=http://$FLOOR,gateway=http://$GWADDR" \
  -header 'Authorization: Bearer sk-bench' -streams "${STREAMS:-20}" -events "${EVENTS:-100}" -interval "${INTERVAL:-5ms}"
"$WORK/streamlat" -upstream 127.0.0.1:0 -targets "gateway=http://$GWADDR" -header 'Authorization: Bearer sk-bench' \
  -open "${OPEN:-1000}" -rss-pid "$GW"
