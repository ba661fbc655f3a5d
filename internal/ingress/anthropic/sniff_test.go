package anthropic

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/apierr"
)

func TestSniff(t *testing.T) {
	tests := []struct {
		name, body string
		want       Sniffed
	}{
		{"plain", `{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[]}`, Sniffed{Model: "claude-sonnet-4-5", ModelStart: 9, ModelEnd: 28, MaxTokens: 1}},
		{"stream", `{"messages":[{"role":"user","content":"{\"model\":\"x\"}"}],"stream":true,"model":"m"}`, Sniffed{Model: "m", Stream: true, ModelStart: 82, ModelEnd: 85}},
		{"escaped", `{"mod\u0065l":"a\u002db"}`, Sniffed{Model: "a-b", ModelStart: 14, ModelEnd: 24}},
		{"nested ignored", `{"metadata":{"model":"no"},"model":"yes","stream":false}`, Sniffed{Model: "yes", ModelStart: 35, ModelEnd: 40}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sniff([]byte(tc.body))
			if err != nil {
				t.Fatalf("Sniff(%s) error: %v", tc.body, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Sniff(%s) mismatch (-want +got):\n%s", tc.body, diff)
			}
		})
	}
	for _, body := range []string{`{"model":`, `[]`, `{"messages":[]}`, `{"model":3}`, `{"model":"m","stream":"yes"}`} {
		_, err := Sniff([]byte(body))
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Kind != apierr.BadRequest {
			t.Errorf("Sniff(%s) = %v, want bad_request", body, err)
		}
	}
}

func TestSniffAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are unreliable under -race")
	}
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"hi"}],"stream":true}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = Sniff(body) }); n > 1 {
		t.Errorf("Sniff allocates %v times, want at most 1 (the model)", n)
	}
}

func FuzzSniff(f *testing.F) {
	for _, s := range []string{`{"model":"m","stream":true}`, `{"mod\u0065l":"a\"b"}`, `[]`, `{}`, `{"model":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sn, err := Sniff(body)
		if err != nil {
			return
		}
		var tok string
		if uerr := json.Unmarshal(body[sn.ModelStart:sn.ModelEnd], &tok); uerr != nil || tok != sn.Model {
			t.Fatalf("model span %q decodes to %q (%v), Sniff said %q", body[sn.ModelStart:sn.ModelEnd], tok, uerr, sn.Model)
		}
		raw := sn.Raw(body)
		if !json.Valid(raw.BodyFor("other")) {
			t.Fatalf("BodyFor produced invalid JSON from %q", body)
		}
	})
}

func FuzzDecodeMessages(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":5,"system":[{"type":"text","text":"s"}],"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"b","input":{"x":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}]}`,
		`{"model":"m","max_tokens":5,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeMessages(body)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Kind != apierr.BadRequest {
				t.Fatalf("DecodeMessages error %v is not a bad_request *apierr.Error", err)
			}
			return
		}
		if r.Model == "" || r.MaxTokens < 1 {
			t.Fatalf("accepted request without model or max_tokens: %s", body)
		}
	})
}
