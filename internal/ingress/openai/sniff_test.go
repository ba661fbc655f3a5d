package openai

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Sniffed
	}{
		{"plain", `{"model":"gpt-4o","messages":[]}`, Sniffed{Model: "gpt-4o", ModelStart: 9, ModelEnd: 17}},
		{"stream", `{"messages":[{"role":"user","content":"{\"model\":\"x\"}"}],"stream":true,"model":"m"}`,
			Sniffed{Model: "m", Stream: true, ModelStart: 82, ModelEnd: 85}},
		{"include usage", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
			Sniffed{Model: "m", Stream: true, IncludeUsage: true, ModelStart: 9, ModelEnd: 12, StreamOptionsAt: 44, IncludeUsageStart: 61, IncludeUsageEnd: 65}},
		{"include usage false", `{"model":"m","stream_options":{"include_usage":false},"stream":false}`,
			Sniffed{Model: "m", ModelStart: 9, ModelEnd: 12, StreamOptionsAt: 30, IncludeUsageStart: 47, IncludeUsageEnd: 52}},
		{"whitespace", " {\n \"model\" :\t\"m\" , \"stream\" : null }\n", Sniffed{Model: "m", ModelStart: 14, ModelEnd: 17}},
		{"escaped model", `{"model":"gpt\u002d4o"}`, Sniffed{Model: "gpt-4o", ModelStart: 9, ModelEnd: 22}},
		{"escaped key", `{"mod\u0065l":"m"}`, Sniffed{Model: "m", ModelStart: 14, ModelEnd: 17}},
		{"nested model ignored", `{"metadata":{"model":"no"},"model":"yes"}`, Sniffed{Model: "yes", ModelStart: 35, ModelEnd: 40}},
		{"last duplicate wins", `{"model":"a","model":"b"}`, Sniffed{Model: "b", ModelStart: 21, ModelEnd: 24}},
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
			if tok := tc.body[got.ModelStart:got.ModelEnd]; tok[0] != '"' || tok[len(tok)-1] != '"' {
				t.Errorf("model span %q is not a string token", tok)
			}
		})
	}
}

func TestSniffErrors(t *testing.T) {
	tests := []struct {
		name, body, param string
	}{
		{"not json", `{"model":`, ""},
		{"trailing garbage", `{"model":"m"} x`, ""},
		{"array", `[1,2]`, ""},
		{"string", `"model"`, ""},
		{"missing model", `{"messages":[]}`, "model"},
		{"empty model", `{"model":""}`, "model"},
		{"model not string", `{"model":42}`, "model"},
		{"stream not bool", `{"model":"m","stream":"yes"}`, "stream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Sniff([]byte(tc.body))
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("Sniff(%s) = %v, want *apierr.Error", tc.body, err)
			}
			if ae.Kind != apierr.BadRequest || ae.Param != tc.param {
				t.Errorf("Sniff(%s) = kind %v param %q, want bad_request param %q", tc.body, ae.Kind, ae.Param, tc.param)
			}
		})
	}
}

func TestBodyForRewritesOnlyTheModel(t *testing.T) {
	body := []byte(`{"messages":[{"role":"user","content":"model gpt-4o"}],"model":"gpt-4o","stream":true}`)
	sn, err := Sniff(body)
	if err != nil {
		t.Fatal(err)
	}
	raw := sn.Raw(llm.OpChat, body)
	if got := raw.BodyFor("gpt-4o"); &got[0] != &body[0] {
		t.Errorf("BodyFor(same model) copied the body; want the client's bytes")
	}
	got := raw.BodyFor(`llama "3"`)
	want := `{"messages":[{"role":"user","content":"model gpt-4o"}],"model":"llama \"3\"","stream":true}`
	if string(got) != want {
		t.Errorf("BodyFor = %s, want %s", got, want)
	}
}

func TestSniffAllocs(t *testing.T) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`)
	n := testing.AllocsPerRun(100, func() {
		if _, err := Sniff(body); err != nil {
			t.Fatal(err)
		}
	})
	// One allocation: the model string itself.
	limit := 1.0
	if raceEnabled {
		limit++
	}
	if n > limit {
		t.Errorf("Sniff allocates %v times per call, want at most %v", n, limit)
	}
}

func BenchmarkSniff(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about gateways."}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.7}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Sniff(body); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzSniff: no input may panic, and an accepted body's model span holds
// exactly the model Sniff reports.
func FuzzSniff(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o","messages":[]}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
		`{"mod\u0065l":"a\"b"}`, `[]`, `{}`, `{"model":1}`, ` {"a":[{"b":"}"}],"model":"x"} `,
	} {
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
		raw := sn.Raw(llm.OpChat, body)
		if !json.Valid(raw.BodyFor("other-model")) {
			t.Fatalf("BodyFor produced invalid JSON from %q", body)
		}
	})
}
