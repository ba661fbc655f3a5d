#!/usr/bin/env bash
# bench/translate.sh [RATE] [SECONDS] — the translated path's added latency
# next to the passthrough path's, interleaved in one run.
#
# One mock upstream (../shared/bench/mockupstream) answers both OpenAI's
# /v1/chat/completions and Anthropic's /v1/messages. The gateway serves an
# OpenAI client twice: gpt-4o-mini by passthrough to the mock's OpenAI API,
# claude-3-5-sonnet-latest by translation to the mock's Anthropic API.
# vegeta runs direct-openai, passthrough, direct-anthropic, translated in
# ROUNDS interleaved slices; added p50 = gateway p50 - the matching direct.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
RATE=${1:-1000} SECS=${2:-20} ROUNDS=${ROUNDS:-4}
VEGETA=${VEGETA:-$(command -v vegeta || echo "$HOME/go/bin/vegeta")}
MOCK=127.0.0.1:18180 GW=127.0.0.1:18181
WORK=$(mktemp -d /tmp/multipolar-translate.XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
go build -C "$ROOT" -o "$WORK/multipolar" ./cmd/multipolar
go build -C "$SHARED/mockupstream" -o "$WORK/mock" .
"$WORK/mock" -port 18180 2>/dev/null & PIDS+=($!)
cat > "$WORK/multipolar.yaml" <<YAML
listen: $GW
log: {level: warn}
ledger: {driver: none}
providers:
  - {name: oa, type: openai-compatible, base_url: "http://$MOCK/v1"}
  - {name: an, type: anthropic, base_url: "http://$MOCK", api_key: "\${ANTH_KEY}"}
models:
  - {name: gpt-4o-mini, routes: [oa]}
  - {name: claude-3-5-sonnet-latest, routes: [an]}
keys:
  - {name: bench, key: "\${BENCH_KEY}"}
YAML
ANTH_KEY=unused BENCH_KEY=sk-bench "$WORK/multipolar" serve --config "$WORK/multipolar.yaml" & PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://$GW/healthz" >/dev/null && break; sleep 0.1; done
msg='"messages":[{"role":"user","content":"Say hello to the benchmark."}]'
echo "{\"model\":\"gpt-4o-mini\",$msg}" > "$WORK/oa.json"
echo "{\"model\":\"claude-3-5-sonnet-latest\",\"max_tokens\":64,$msg}" > "$WORK/an.json"
target() { # name url body extra-header
  printf 'POST %s\nContent-Type: application/json\n%s@%s\n' "$2" "${4:+$4
}" "$3" > "$WORK/$1.target"
}
target direct-openai "http://$MOCK/v1/chat/completions" "$WORK/oa.json"
target passthrough "http://$GW/v1/chat/completions" "$WORK/oa.json" "Authorization: Bearer sk-bench"
target direct-anthropic "http://$MOCK/v1/messages" "$WORK/an.json" "anthropic-version: 2023-06-01"
target translated "http://$GW/v1/chat/completions" "$WORK/an.json" "Authorization: Bearer sk-bench"
slice=$((SECS / ROUNDS))
for name in direct-openai passthrough direct-anthropic translated; do # warm-up
  "$VEGETA" attack -targets "$WORK/$name.target" -rate "$RATE" -duration 1s > /dev/null
done
for r in $(seq "$ROUNDS"); do
  for name in direct-openai passthrough direct-anthropic translated; do
    "$VEGETA" attack -targets "$WORK/$name.target" -rate "$RATE" -duration "${slice}s" > "$WORK/$name.$r.bin"
  done
done
p50() { "$VEGETA" report -type=json "$WORK/$1".*.bin | jq '.latencies["50th"] / 1000 | floor'; }
ok() { "$VEGETA" report -type=json "$WORK/$1".*.bin | jq '.success * 100'; }
do_=$(p50 direct-openai) pt=$(p50 passthrough) da=$(p50 direct-anthropic) tr=$(p50 translated)
printf '%-18s %8s %8s %8s\n' target p50_us added ok%
printf '%-18s %8s %8s %8s\n' direct-openai "$do_" - "$(ok direct-openai)"
printf '%-18s %8s %8s %8s\n' passthrough "$pt" "$((pt - do_))" "$(ok passthrough)"
printf '%-18s %8s %8s %8s\n' direct-anthropic "$da" - "$(ok direct-anthropic)"
printf '%-18s %8s %8s %8s\n' translated "$tr" "$((tr - da))" "$(ok translated)"
echo "translated added p50 / passthrough added p50 = $(echo "scale=2; ($tr - $da) / ($pt - $do_)" | bc)"
