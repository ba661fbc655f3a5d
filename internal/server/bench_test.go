package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/server"
)

// BenchmarkChatPassthrough measures the gateway's own work for one
// non-streamed passthrough request, in process: the upstream is a static
// answer over loopback HTTP, the client a ResponseRecorder. PROFILE picks
// what is configured, as bench/overhead.sh does.
func BenchmarkChatPassthrough(b *testing.B) {
	answer := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(answer)))
		_, _ = w.Write(answer)
	}))
	defer up.Close()
	for _, profile := range []struct{ name, yaml string }{
		{"core", `ledger: {driver: none}
keys: [{name: bench, key: "${KEY_ALL}"}]`},
		{"metering", `prices: [{provider: "*", model: gpt-4o-mini, input: "0.15", output: "0.60"}]
keys: [{name: bench, key: "${KEY_ALL}", budgets: [{limit: "1000000", period: monthly}], limits: {rpm: 1000000000, tpm: 1000000000000}}]`},
		{"routing", `ledger: {driver: none}
keys: [{name: bench, key: "${KEY_ALL}"}]
agreements: [{name: primary, type: first_refusal, holder: mock, scope: {models: ["gpt-*"]}}]
policies: [{workload: default, regions: [us-east], require: [json]}]`},
	} {
		b.Run(profile.name, func(b *testing.B) {
			cfg := parseConfig(b, fmt.Sprintf(`
log: {level: error}
providers:
  - {name: mock, type: openai-compatible, base_url: "%s/v1", region: us-east}
models:
  - {name: gpt-4o-mini, routes: [mock]}
%s`, up.URL, profile.yaml))
			cfg.Ledger.FlushInterval = config.DefaultLedgerFlush // as served, not as parseConfig sets it for tests
			srv, err := server.New(server.Options{Config: cfg})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to the benchmark."}]}`)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+keyAll)
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
