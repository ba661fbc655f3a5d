// Command ledgergen fills an SQLite ledger with synthetic usage records for
// the settlement and simulation benchmarks (bench/contracts.sh).
//
// The records are the served requests of examples/multicloud.yaml's
// workloads, spread evenly over one month: eight kinds of request in turn
// (OpenAI models on the primary's two regions, Oracle, CoreWeave and AWS;
// Claude on the primary and Google Cloud; Llama on vLLM), with token counts
// and costs that vary from record to record. They are generated inside
// SQLite by one INSERT ... SELECT, so ten million take a minute or two
// rather than the ledger writer's path.
//
//	ledgergen -db multicloud.db -n 10000000 -month 2026-11
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"time"

	_ "modernc.org/sqlite"

	"github.com/multipolar/multipolar/internal/store/sqlite"
)

// kinds are the request kinds, one per record in turn: provider, upstream
// model, client model, key, team, workload.
var kinds = [8][6]string{
	{"azure-east", "gpt-4.1", "gpt-4.1", "apps-consumer", "apps", "consumer"},
	{"azure-west", "gpt-4.1", "gpt-4.1", "apps-assistant", "apps", "general"},
	{"oracle", "gpt-4.1", "gpt-4.1", "apps-consumer", "apps", "consumer"},
	{"coreweave", "gpt-4.1", "gpt-4.1", "apps-assistant", "apps", "general"},
	{"bedrock-us", "openai.gpt-4.1-v1:0", "gpt-4.1", "legacy-batch", "legacy", "general"},
	{"azure-claude", "claude-sonnet-4-5", "claude-sonnet-4-5", "enterprise-agents", "enterprise", "enterprise"},
	{"vertex-claude", "claude-sonnet-4-5@20250929", "claude-sonnet-4-5", "safety-review", "enterprise", "safety-critical"},
	{"vllm", "meta-llama/Llama-3.1-70B-Instruct", "llama-3.1-70b", "infra-tools", "infra", "internal"},
}

func main() {
	path := flag.String("db", "multicloud.db", "SQLite ledger file (created with its schema if missing)")
	n := flag.Int64("n", 1_000_000, "records to add")
	month := flag.String("month", "2026-11", "the month the records fall in (YYYY-MM, UTC)")
	flag.Parse()
	from, err := time.Parse("2006-01", *month)
	if err != nil {
		log.Fatalf("-month: %v", err)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: *path}) // applies the migrations
	if err != nil {
		log.Fatal(err)
	}
	if err := st.Close(); err != nil {
		log.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+*path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	col := func(j int) string {
		s := "CASE i % 8"
		for k, kind := range kinds {
			s += fmt.Sprintf(" WHEN %d THEN '%s'", k, kind[j])
		}
		return s + " END"
	}
	start := from.UnixMicro()
	step := from.AddDate(0, 1, 0).UnixMicro() - start
	q := fmt.Sprintf(`INSERT INTO usage_records (request_id, attempt, ts, api_key, team, workload, model, provider,
		upstream_model, input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, estimated,
		price_input, price_output, price_cached_input, price_cache_write, price_from, cost, status, outcome, billable,
		latency_ms, stream, route, agreements)
	WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ?1 - 1)
	SELECT printf('gen-%%s-%%010d', ?2, i), 0, ?3 + (i * ?4) / ?1, %s, %s, %s, %s, %s, %s,
		1000 + (i * 7919) %% 4000, 100 + (i * 104729) %% 900, (i * 31) %% 500, 0, 0, 0,
		'2', '8', '0.5', '0', ?3,
		printf('0.%%06d%%03d', (i * 7919) %% 1000000, (i * 104729) %% 1000), 200, 'ok', 1, 120, i %% 2, '{}', '[]'
	FROM seq`, col(3), col(4), col(5), col(2), col(0), col(1))
	began := time.Now()
	if _, err := db.ExecContext(ctx, q, *n, time.Now().Format("150405"), start, step); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ledgergen: %d records in %s added to %s in %.1fs\n", *n, *month, *path, time.Since(began).Seconds())
}
