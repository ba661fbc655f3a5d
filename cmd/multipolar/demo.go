package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

// demoKey is the virtual key the demo prints; it guards nothing real.
const demoKey = "sk-multipolar-demo"

const demoConfig = `listen: %s
admin:
  token: ${DEMO_ADMIN_TOKEN}
log: {level: info, format: text}
ledger: {driver: sqlite, path: %q}
prices:
  - {provider: "*", model: gpt-4o, input: "2.50", output: "10.00", cached_input: "1.25"}
  - {provider: "*", model: gpt-4o-mini, input: "0.15", output: "0.60", cached_input: "0.075"}
  - {provider: "*", model: text-embedding-3-small, input: "0.02", output: "0"}
providers:
  - name: fake-azure
    type: azure-openai
    base_url: %s
    api_key: ${DEMO_UPSTREAM_KEY}
    api_version: "2024-10-21"
    deployments: {gpt-4o: gpt4o-prod}
  - name: fake-cloud
    type: openai-compatible
    base_url: %s/v1
    api_key: ${DEMO_UPSTREAM_KEY}
models:
  - name: gpt-4o
    routes: [fake-azure, fake-cloud]
  - name: gpt-4o-mini
    routes: [fake-cloud]
  - name: text-embedding-3-small
    routes: [fake-cloud]
keys:
  - name: demo
    key: ${DEMO_KEY}
`

// demo starts the fake upstream and the gateway in front of it, so a person
// with no API keys can see a request go through.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "gateway listen address")
	ledgerPath := fs.String("ledger", "multipolar.db", "SQLite file for the usage ledger")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	const upstreamKey = "fake-upstream-key"
	_, base, shutdown, err := fakeupstream.Listen("127.0.0.1:0", fakeupstream.Options{APIKey: upstreamKey, Chunks: 8})
	if err != nil {
		return fmt.Errorf("start fake upstream: %w", err)
	}
	defer shutdown()
	env := map[string]string{"DEMO_KEY": demoKey, "DEMO_UPSTREAM_KEY": upstreamKey, "DEMO_ADMIN_TOKEN": "demo-admin"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.Parse(fmt.Appendf(nil, demoConfig, *listen, *ledgerPath, base, base), lookup)
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	fmt.Fprintf(stdout, `Multipolar demo: gateway on http://%[1]s, fake upstream on %[2]s
Try:
  curl -s http://%[1]s/v1/chat/completions \
    -H 'Authorization: Bearer %[3]s' -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}'
  curl -sN http://%[1]s/v1/chat/completions \
    -H 'Authorization: Bearer %[3]s' -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello"}]}'
  curl -s http://%[1]s/v1/models -H 'Authorization: Bearer %[3]s'
  curl -s http://%[1]s/metrics | grep multipolar_
  curl -s 'http://%[1]s/admin/usage?group_by=provider,model' -H 'Authorization: Bearer demo-admin'
Usage records go to %[4]s. Ctrl-C stops it.
`, *listen, base, demoKey, *ledgerPath)
	return serveConfig(ctx, cfg, nil, serveFlags{}, nil, stderr)
}
