package llm

import (
	"encoding/json"
	"strings"
	"testing"
)

// raw builds a RawRequest with the spans a sniffer would find.
func raw(body string, stream, includeUsage bool) *RawRequest {
	r := &RawRequest{Body: []byte(body), Model: "m", Stream: stream, IncludeUsage: includeUsage}
	r.ModelStart = strings.Index(body, `"m"`)
	r.ModelEnd = r.ModelStart + 3
	if i := strings.Index(body, `"stream_options":`); i >= 0 {
		r.StreamOptionsAt = i + len(`"stream_options":`)
		for body[r.StreamOptionsAt] == ' ' {
			r.StreamOptionsAt++
		}
	}
	if i := strings.Index(body, `"include_usage":`); i >= 0 {
		r.IncludeUsageStart = i + len(`"include_usage":`)
		r.IncludeUsageEnd = r.IncludeUsageStart + strings.IndexAny(body[r.IncludeUsageStart:], ",}")
	}
	return r
}

func TestUsageEdit(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		stream, incl bool
		wantEdit     bool
	}{
		{"no stream_options", `{"model":"m","stream":true}`, true, false, true},
		{"empty stream_options", `{"model":"m","stream":true,"stream_options":{ }}`, true, false, true},
		{"other member", `{"model":"m","stream":true,"stream_options":{"include_obfuscation":false}}`, true, false, true},
		{"include_usage false", `{"model":"m","stream":true,"stream_options":{"include_usage":false}}`, true, false, true},
		{"include_usage null", `{"model":"m","stream":true,"stream_options":{"include_usage":null,"x":1}}`, true, false, true},
		{"client asked", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, true, true, false},
		{"not streamed", `{"model":"m"}`, false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := raw(tc.body, tc.stream, tc.incl)
			e, ok := r.UsageEdit()
			if ok != tc.wantEdit {
				t.Fatalf("UsageEdit() ok = %v, want %v", ok, tc.wantEdit)
			}
			if !ok {
				return
			}
			me, _ := r.ModelEdit("upstream-model")
			out := Apply(r.Body, me, e)
			var got struct {
				Model         string `json:"model"`
				StreamOptions struct {
					IncludeUsage *bool `json:"include_usage"`
				} `json:"stream_options"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("edited body %s is not JSON: %v", out, err)
			}
			if got.Model != "upstream-model" || got.StreamOptions.IncludeUsage == nil || !*got.StreamOptions.IncludeUsage {
				t.Errorf("edited body %s: model %q include_usage %v", out, got.Model, got.StreamOptions.IncludeUsage)
			}
			if strings.Count(string(out), "include_usage") != 1 {
				t.Errorf("edited body %s names include_usage more than once", out)
			}
		})
	}
}

func TestApplyWithoutEditsKeepsBytes(t *testing.T) {
	body := []byte(`{"model":"m"}`)
	if out := Apply(body); &out[0] != &body[0] {
		t.Error("Apply() with no edits copied the body")
	}
}

func TestAppendJSONStringIsAlwaysValidJSON(t *testing.T) {
	for _, s := range []string{"plain", "quote\" back\\slash", "\x00\x1f ctl", "caf\u00e9 \U0001F600", "bad \xff\xfe utf8", "\xed\xa0\x80"} {
		out := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Errorf("AppendJSONString(%q) = %s: not JSON: %v", s, out, err)
			continue
		}
		// encoding/json is the reference: it too replaces each bad byte.
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if back != want {
			t.Errorf("AppendJSONString(%q) decodes to %q, want %q (as encoding/json)", s, back, want)
		}
	}
}
