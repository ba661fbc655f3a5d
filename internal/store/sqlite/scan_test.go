package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

// TestScanOddText covers text that only SQLite stores: NULs and bytes
// that are not UTF-8, which json_array passes through unescaped.
func TestScanOddText(t *testing.T) {
	s := newStore(t).(*Store)
	ctx := context.Background()
	rec := ledger.Record{
		RequestID: "id\x00with nul", Attempt: 1, Time: epochForTest,
		Key: "\xff\xfe not utf-8", Team: "\x00", Workload: "\\\"\u0000\x7f", Model: "\ud7ff\U0010ffff",
		Provider: "p", UpstreamModel: "u", Outcome: "ok", Cost: pricing.MustMoney("1.5"),
		Agreements: []string{"a\x00b", "é"},
	}
	if err := s.Record(ctx, []ledger.Record{rec}); err != nil {
		t.Fatal(err)
	}
	var got []ledger.Record
	if err := s.Scan(ctx, ledger.ScanFilter{}, func(r *ledger.Record) error {
		got = append(got, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ledger.Record{rec}, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Scan mismatch (-want +got):\n%s", diff)
	}
}

var epochForTest = mustTime("2026-03-04T05:06:07.123456Z")

func TestJSONRowMalformed(t *testing.T) {
	var d rowDecoder
	var r ledger.Record
	for _, row := range []string{
		``, `[`, `[]`, `[1`, `[1,2]`,
		`[9223372036854775808,1,1,1,1,1,1,0,0,0,200,1,"r","k","t","w","m","p","u","ok","1","[]"]`,
		`[1,1,1,1,1,1,1,0,0,0,200,1,"r","k","t","w","m","p","u","ok","1","[]"] `,
		`[1,1,1,1,1,1,1,0,0,0,200,1,"r","k","t","w","m","p","u","ok","1.","[]"]`,
		`[1,1,1,1,1,1,1,0,0,0,200,1,"r","k","t","w","m","p","u","ok","1","[1]"]`,
		`[1,1,1,1,1,1,1,0,0,0,200,1,"r\x","k","t","w","m","p","u","ok","1","[]"]`,
		`[1,1,1,1,1,1,1,0,0,0,200,1,"r\u12","k","t","w","m","p","u","ok","1","[]"]`,
		`[1,1,1,1,1,1,1,0,0,0,200,1,"r","k","t","w","m","p","u","ok","1","[]"`,
	} {
		if err := d.decode(&r, []byte(row)); err == nil {
			t.Errorf("decode(%q) = nil, want an error", row)
		}
	}
	row := `[-9223372036854775808,1,9223372036854775807,0,0,0,0,1,0,1,-5,7,"r\"\\\/\b\f\n\r\t\u00e9\ud83d\udd11\ud800x","k","","w","m","p","u","ok","0.5","[\"x\"]"]`
	if err := d.decode(&r, []byte(row)); err != nil {
		t.Fatalf("decode(%q) = %v", row, err)
	}
	if r.Time.UnixMicro() != -1<<63 || r.Usage.InputTokens != 1<<63-1 || r.Status != -5 || !r.Estimated || r.Billable || !r.Stream ||
		r.RequestID != "r\"\\/\b\f\n\r\té🔑\ufffdx" || r.Team != "" || !r.Cost.Equal(pricing.MustMoney("0.5")) || len(r.Agreements) != 1 {
		t.Errorf("decode(%q) = %+v", row, r)
	}
}

func BenchmarkDecodeRow(b *testing.B) {
	row := []byte(`[1772603267121042,1,6059,1656,100,0,0,0,1,1,200,321,"req-7a6d47db3f1e2210-00999999","key-49","team-a","chat","gpt-4o","openai","gpt-4o-2024","ok","0.049022","[\"acme-commit\"]"]`)
	var d rowDecoder
	var r ledger.Record
	b.ReportAllocs()
	for b.Loop() {
		if err := d.decode(&r, row); err != nil {
			b.Fatal(err)
		}
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}
