#!/usr/bin/env bash
# bench/contracts.sh [RECORDS] — times settlement and simulation end to end.
#
# Builds multipolar and ledgergen, fills an SQLite ledger beside a copy of
# examples/multicloud.yaml with RECORDS synthetic served requests of
# November 2026 (default 10,000,000), then runs, each under /usr/bin/time:
#
#   multipolar settle   --period 2026-11 --format json   (the statement)
#   multipolar simulate --period 2026-11 --format json   (the month replayed through the same config)
#
# and prints wall time, records per second and peak RSS. Set KEEP=DIR to
# reuse (or keep) the ledger between runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-10000000}
WORK=${KEEP:-$(mktemp -d /tmp/multipolar-contracts.XXXXXX)}
mkdir -p "$WORK"
go build -C "$ROOT" -o "$WORK/multipolar" ./cmd/multipolar
go build -C "$ROOT" -o "$WORK/ledgergen" ./bench/ledgergen
cp "$ROOT/examples/multicloud.yaml" "$WORK/multicloud.yaml"
export MULTIPOLAR_ADMIN_TOKEN=bench AZURE_EAST_KEY=k1 AZURE_WEST_KEY=k2 AZURE_CLAUDE_KEY=k3 COREWEAVE_KEY=k4 ORACLE_KEY=k5 \
  APPS_CONSUMER_KEY=v1 APPS_ASSISTANT_KEY=v2 ENTERPRISE_KEY=v3 SAFETY_KEY=v4 OSS_KEY=v5 INTERNAL_KEY=v6 LEGACY_KEY=v7
if [ ! -s "$WORK/multicloud.db" ]; then
  "$WORK/ledgergen" -db "$WORK/multicloud.db" -n "$N" -month 2026-11
fi
run() { # name, command...
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time.$name" "$@" > "$WORK/out.$name"
  read -r secs kb < "$WORK/time.$name"
  awk -v n="$N" -v s="$secs" -v kb="$kb" -v name="$name" \
    'BEGIN { printf "%-9s %10d records  %7.1f s  %9.0f records/s  peak RSS %6.0f MB\n", name, n, s, n / s, kb / 1024 }'
}
run settle "$WORK/multipolar" settle --config "$WORK/multicloud.yaml" --period 2026-11 --format json
run simulate "$WORK/multipolar" simulate --config "$WORK/multicloud.yaml" --period 2026-11 --format json
echo "outputs in $WORK (out.settle, out.simulate)"
