package sqlite

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

// plainArgs is the insert arguments of r without box reuse.
func plainArgs(r *ledger.Record) []any {
	ag := "[]"
	if len(r.Agreements) > 0 {
		b, _ := json.Marshal(r.Agreements)
		ag = string(b)
	}
	p := &r.UnitPrices
	return []any{
		r.RequestID, int64(r.Attempt), r.Time.UnixMicro(), r.Key, r.Team, r.Workload, r.Model, r.Provider, r.UpstreamModel,
		r.Usage.InputTokens, r.Usage.OutputTokens, r.Usage.CachedTokens, r.Usage.CacheWriteTokens, r.Usage.ReasoningTokens, r.Estimated,
		p.Input.String(), p.Output.String(), p.CachedInput.String(), p.CacheWrite.String(), p.From.UnixMicro(), r.Cost.String(),
		int64(r.Status), r.Outcome, r.Billable, r.LatencyMs, r.Stream, r.Route, ag,
	}
}

// TestRowArgs checks that reusing the previous record's boxes gives the
// arguments of each record, whichever fields repeat.
func TestRowArgs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	money := func() pricing.Money { return pricing.MustMoney(pick("0", "0.15", "0.150", "2.5", "0.000001")) }
	recs := make([]ledger.Record, 2000)
	for i := range recs {
		u := pricing.Usage{InputTokens: rng.Int64N(3) * 1000, OutputTokens: rng.Int64N(2), CachedTokens: rng.Int64N(2),
			CacheWriteTokens: rng.Int64N(2), ReasoningTokens: rng.Int64N(2)}
		p := pricing.Price{Input: money(), Output: money(), CachedInput: money(), CacheWrite: money(),
			From: time.Unix(rng.Int64N(2), 0)}
		var ag []string
		switch rng.IntN(3) {
		case 1:
			ag = []string{"a"}
		case 2:
			ag = []string{"a", "b"}
		}
		recs[i] = ledger.Record{
			RequestID: fmt.Sprint("r", rng.IntN(3)), Attempt: rng.IntN(2), Time: time.UnixMicro(rng.Int64N(2) * 300),
			Key: pick("k", "k2"), Team: pick("", "t"), Workload: pick("w", ""), Model: pick("m", "n"),
			Provider: pick("p", "q"), UpstreamModel: pick("m", "u"), Usage: u, Estimated: rng.IntN(2) == 0,
			UnitPrices: p, Cost: pricing.Cost(p, u), Status: pick200(rng), Outcome: pick("ok", "refused"),
			Billable: rng.IntN(2) == 0, LatencyMs: rng.Int64N(2) * 1000, Stream: rng.IntN(2) == 0,
			Route: pick(`{"decision":"a"}`, `{"decision":"b"}`), Agreements: ag,
		}
	}
	var rows rowArgs
	var args []any
	for i := range recs {
		args = rows.append(args, &recs[i])
	}
	for i := range recs {
		got := args[i*numColumns : (i+1)*numColumns]
		if diff := cmp.Diff(plainArgs(&recs[i]), got); diff != "" {
			t.Fatalf("args of record %d mismatch (-want +got):\n%s", i, diff)
		}
	}
}

func pick200(rng *rand.Rand) int {
	if rng.IntN(2) == 0 {
		return 200
	}
	return 502
}
