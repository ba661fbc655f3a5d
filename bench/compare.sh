#!/usr/bin/env bash
# bench/compare.sh [RATES] [DURATION] — gateway profiles side by side, in one run.
#
# bench/overhead.sh measures one profile a run, against that run's direct
# and floor rows; comparing two profiles then divides one run's ratios by
# another's, and the floor's own figures move between runs on this shared
# machine. This script starts one mock upstream, the floor proxy and one
# gateway per profile, and interleaves every target's slices in one run:
#   1. open loop: vegeta at each fixed rate, slices of DURATION/ROUNDS
#      seconds in turn (direct, floor, each profile, direct, ...);
#   2. closed loop: wrk with CONNS connections, MAXTP_DURATION seconds per
#      target as 4 slices in turn.
# It prints each target's figures, each profile's ratio to the floor (as
# overhead.sh reports them) and to the first profile (profile / first).
#
#   bench/compare.sh                        # 500,2000 req/s, 32 s per target, core vs metering
#   PROFILES="core full" bench/compare.sh 2000 40
#
# Environment: PROFILES ["core metering"], ROUNDS [8], WARMUP [1] s per target
# and rate, MAXTP [1], MAXTP_DURATION [16], CONNS [64], NICE [-10 as root]
# (everything started here runs at it), MOCK_PORT [18080], FLOOR_PORT
# [18081], GATEWAY_PORT [8080] (the first profile; the next ones count up).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
RATES=${1:-500,2000}
DURATION=${2:-32}
read -r -a PROFS <<<"${PROFILES:-core metering}"
ROUNDS=${ROUNDS:-8} WARMUP=${WARMUP:-1} MAXTP=${MAXTP:-1} MAXTP_DURATION=${MAXTP_DURATION:-16} CONNS=${CONNS:-64}
MOCK_PORT=${MOCK_PORT:-18080} FLOOR_PORT=${FLOOR_PORT:-18081} PORT=${GATEWAY_PORT:-8080}
NICE=${NICE:-$([ "$(id -u)" = 0 ] && echo -10 || echo 0)}
VEGETA=${VEGETA:-$(command -v vegeta || echo "$HOME/go/bin/vegeta")}
for tool in "$VEGETA" jq curl; do command -v "$tool" >/dev/null || { echo "bench: $tool not found (see ../shared/bench/README.md)" >&2; exit 1; }; done
[ "$MAXTP" = 0 ] || command -v wrk >/dev/null || { echo "bench: wrk not found (or MAXTP=0)" >&2; exit 1; }
[ "${#PROFS[@]}" -ge 1 ] || { echo "bench: PROFILES is empty" >&2; exit 2; }

WORK=$(mktemp -d /tmp/multipolar-compare.XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
NICEP=()
[ "$NICE" = 0 ] || NICEP=(nice -n "$NICE") # nice execs the command: $! is its pid
up() { for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "bench: $1 did not answer" >&2; exit 1; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }

go build -C "$ROOT" -o "$WORK/multipolar" ./cmd/multipolar
go build -C "$SHARED/mockupstream" -o "$WORK/mock" .
go build -C "$SHARED/floorproxy" -o "$WORK/floorproxy" .
. "$ROOT/bench/profile.sh"

declare -A URL PID HDR
TARGETS=(direct floor)
"${NICEP[@]}" "$WORK/mock" -port "$MOCK_PORT" >"$WORK/mock.log" 2>&1 & PID[direct]=$!; PIDS+=($!)
up "http://127.0.0.1:$MOCK_PORT/healthz"
"${NICEP[@]}" "$WORK/floorproxy" -listen "127.0.0.1:$FLOOR_PORT" -upstream "http://127.0.0.1:$MOCK_PORT" >"$WORK/floor.log" 2>&1 & PID[floor]=$!; PIDS+=($!)
up "http://127.0.0.1:$FLOOR_PORT/healthz"
URL[direct]=http://127.0.0.1:$MOCK_PORT/v1/chat/completions
URL[floor]=http://127.0.0.1:$FLOOR_PORT/v1/chat/completions
p=$PORT
for prof in "${PROFS[@]}"; do
  write_config "$prof" "$p" "$WORK/$prof.yaml" "$WORK/$prof.db"
  BENCH_KEY=sk-bench "${NICEP[@]}" "$WORK/multipolar" serve --config "$WORK/$prof.yaml" 2>"$WORK/$prof.log" & PID[$prof]=$!; PIDS+=($!)
  up "http://127.0.0.1:$p/healthz"
  URL[$prof]=http://127.0.0.1:$p/v1/chat/completions HDR[$prof]='Authorization: Bearer sk-bench'
  TARGETS+=("$prof")
  p=$((p + 1))
done

cat >"$WORK/body.json" <<'EOF'
{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about the latency of reverse proxies."}],"max_tokens":64,"temperature":0.7}
EOF
for t in "${TARGETS[@]}"; do
  { echo "POST ${URL[$t]}"; echo "Content-Type: application/json"; [ -z "${HDR[$t]:-}" ] || echo "${HDR[$t]}"; echo "@$WORK/body.json"; } >"$WORK/targets.$t"
  { echo 'wrk.method = "POST"'; echo 'wrk.headers["Content-Type"] = "application/json"'
    [ -z "${HDR[$t]:-}" ] || echo "wrk.headers[\"Authorization\"] = \"Bearer sk-bench\""
    echo "wrk.body = [==[$(cat "$WORK/body.json")]==]"; } >"$WORK/wrk.$t.lua"
done
attack() { # target rate duration(ms) out
  "${NICEP[@]}" "$VEGETA" attack -targets="$WORK/targets.$1" -rate="$2/1s" -duration="$3ms" -timeout=10s \
    -workers=32 -max-workers=2000 -keepalive=true -max-body=0 >"$4"
}

echo "bench: $(nproc) cores shared by the load generator, the mock, the floor and ${#PROFS[@]} gateways; nice $NICE"
echo "latency in µs as vegeta sees it; +x = minus direct; p99med = median of the slices' p99; cpu/req in µs (the mock's for direct)"
SLICE_MS=$((DURATION * 1000 / ROUNDS))
declare -A CPU REQ FILES SL P50 P99M CPR TP
IFS=, read -r -a RLIST <<<"$RATES"
for rate in "${RLIST[@]}"; do
  for t in "${TARGETS[@]}"; do
    [ "$WARMUP" = 0 ] || attack "$t" "$rate" $((WARMUP * 1000)) /dev/null
    CPU[$t]=0 REQ[$t]=0 FILES[$t]="" SL[$t]=""
  done
  for r in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
      f="$WORK/r${rate}_${t}_$r.bin"
      c0=$(cpu_ns "${PID[$t]}"); attack "$t" "$rate" "$SLICE_MS" "$f"; c1=$(cpu_ns "${PID[$t]}")
      read -r n q < <("$VEGETA" report -type=json "$f" | jq -r '"\(.requests) \(.latencies["99th"]/1000|floor)"')
      CPU[$t]=$((CPU[$t] + c1 - c0)) REQ[$t]=$((REQ[$t] + n)) FILES[$t]="${FILES[$t]} $f" SL[$t]="${SL[$t]} $q"
    done
  done
  echo
  echo "-- $rate req/s, $ROUNDS slices of $SLICE_MS ms per target"
  printf '%-9s %6s %6s %6s %7s %6s %7s %7s %8s  %s\n' target ok% p50 p99 p99med +p50 +p99med cpu/req vs-floor "(+p50 +p99med cpu)"
  for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    read -r ok p50 p99 < <("$VEGETA" report -type=json ${FILES[$t]} | jq -r '"\(.success*100) \(.latencies["50th"]/1000|floor) \(.latencies["99th"]/1000|floor)"')
    med=$(echo ${SL[$t]} | tr ' ' '\n' | sort -n | awk '{v[NR] = $1} END { print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) }')
    [ "$t" != direct ] || { b50=$p50 bmed=$med; }
    P50[$t]=$((p50 - b50)) P99M[$t]=$((med - bmed)) CPR[$t]=$(awk -v c="${CPU[$t]}" -v n="${REQ[$t]}" 'BEGIN { printf "%.1f", c / n / 1000 }')
    vs=""
    if [ "$t" != direct ] && [ "$t" != floor ]; then
      vs=$(awk -v a="${P50[$t]}" -v b="${P99M[$t]}" -v c="${CPR[$t]}" -v fa="${P50[floor]}" -v fb="${P99M[floor]}" -v fc="${CPR[floor]}" \
        'BEGIN { printf "%.2f %.2f %.2f", a / fa, b / fb, c / fc }')
    fi
    printf '%-9s %6.2f %6d %6d %7d %6s %7s %7s  %s\n' "$t" "$ok" "$p50" "$p99" "$med" \
      "$([ "$t" = direct ] && echo - || echo "+${P50[$t]}")" "$([ "$t" = direct ] && echo - || echo "+${P99M[$t]}")" "${CPR[$t]}" "$vs"
  done
  if [ "${#PROFS[@]}" -gt 1 ]; then
    first=${PROFS[0]}
    for prof in "${PROFS[@]:1}"; do
      awk -v p="$prof" -v f="$first" -v a="${P50[$prof]}" -v b="${P99M[$prof]}" -v c="${CPR[$prof]}" -v fa="${P50[$first]}" -v fb="${P99M[$first]}" -v fc="${CPR[$first]}" \
        'BEGIN { printf "%s / %s: +p50 %.2f  +p99med %.2f  cpu/req %.2f\n", p, f, a / fa, b / fb, c / fc }'
    done
  fi
done

if [ "$MAXTP" != 0 ]; then
  SL_S=$((MAXTP_DURATION / 4))
  for t in "${TARGETS[@]}"; do TP[$t]=0; done
  for r in 1 2 3 4; do
    for t in "${TARGETS[@]}"; do
      "${NICEP[@]}" wrk -t2 -c"$CONNS" -d"${SL_S}s" -s "$WORK/wrk.$t.lua" "${URL[$t]}" >"$WORK/wrk_${t}_$r.txt"
      n=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$WORK/wrk_${t}_$r.txt")
      TP[$t]=$((TP[$t] + n))
    done
  done
  echo
  echo "-- closed loop: wrk, $CONNS connections, 4 slices of $SL_S s per target"
  printf '%-9s %8s %9s\n' target req/s vs-floor
  for t in "${TARGETS[@]}"; do
    TP[$t]=$((TP[$t] / 4))
    printf '%-9s %8d %9s\n' "$t" "${TP[$t]}" "$(awk -v a="${TP[$t]}" -v b="${TP[floor]}" 'BEGIN { printf "%.3f", a / b }')"
  done
  if [ "${#PROFS[@]}" -gt 1 ]; then
    for prof in "${PROFS[@]:1}"; do
      awk -v p="$prof" -v f="${PROFS[0]}" -v a="${TP[$prof]}" -v b="${TP[${PROFS[0]}]}" 'BEGIN { printf "%s / %s: req/s %.3f\n", p, f, a / b }'
    done
  fi
fi
for prof in "${PROFS[@]}"; do # 499: wrk closing its connections at the end of a slice
  n=$(grep -c '"status":5' "$WORK/$prof.log" || true)
  [ "$n" = 0 ] || echo "bench: $prof answered $n requests with a 5xx; see $WORK/$prof.log"
done
echo "raw results and logs: $WORK"
