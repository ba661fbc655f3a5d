# bench/profile.sh — sourced by overhead.sh and compare.sh.
#
# write_config PROFILE PORT FILE LEDGER_DB writes the gateway configuration
# of a benchmark profile, routed to the mock upstream on $MOCK_PORT (18080):
#   core      ledger off, no budgets, limits, agreements or policies
#   metering  + SQLite ledger (LEDGER_DB), prices, a budget and rate limits on the key
#   routing   + a first-refusal agreement, tiers and a workload policy
#   full      metering and routing
# The key is ${BENCH_KEY}; run the gateway with BENCH_KEY=sk-bench.
write_config() {
  local profile=$1 port=$2 file=$3 db=$4
  local mock=http://127.0.0.1:${MOCK_PORT:-18080}/v1 metering=false routing=false
  case "$profile" in
    core) ;;
    metering) metering=true ;;
    routing) routing=true ;;
    full) metering=true routing=true ;;
    *) echo "bench: profile must be core, metering, routing or full, not $profile" >&2; return 2 ;;
  esac
  {
    echo "listen: 127.0.0.1:$port"
    echo "log: {level: info, format: json}"
    echo "providers:"
    echo "  - {name: mock, type: openai-compatible, base_url: \"$mock\", region: us-east, capacity: {rpm: 100000000}}"
    echo "  - {name: spare, type: openai-compatible, base_url: \"$mock\", region: us-east}"
    echo "models:"
    if $routing; then
      echo "  - {name: gpt-4o-mini, family: openai, routes: [{strategy: weighted, members: [{provider: spare, weight: 1}]}, mock]}"
    else
      echo "  - {name: gpt-4o-mini, routes: [mock]}"
    fi
    echo "  - {name: gpt-4o, routes: [mock]}"
    if $routing; then
      echo "agreements:"
      echo "  - {name: primary, type: first_refusal, holder: mock, scope: {models: [\"gpt-*\"]}, until: 2030-12-31}"
      echo "policies:"
      echo "  - {workload: default, regions: [us-east], require: [json], allow_family_fallback: false}"
    fi
    if $metering; then
      echo "ledger: {driver: sqlite, path: \"$db\"}"
      echo "prices: [{provider: \"*\", model: gpt-4o-mini, input: \"0.15\", output: \"0.60\"}]"
      echo "keys: [{name: bench, key: \"\${BENCH_KEY}\", budgets: [{limit: \"1000000000\", period: monthly}], limits: {rpm: 100000000, tpm: 100000000000}}]"
    else
      echo "ledger: {driver: none}"
      echo "keys: [{name: bench, key: \"\${BENCH_KEY}\"}]"
    fi
  } > "$file"
}
