package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/testutil/goldenfile"
	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

// cases returns the input files testdata/dir/*suffix.
func cases(t *testing.T, dir, suffix string) []string { return goldenfile.Files(t, dir+"/*"+suffix) }

func pretty(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func staticToken(context.Context) (string, error) { return "ya29.token", nil }

func newFirstParty(t *testing.T, base string) *Provider {
	t.Helper()
	p, err := New(Options{Name: "claude", BaseURL: mustURL(base), APIKey: "sk-ant-test"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newVertex(t *testing.T, base string) *Provider {
	t.Helper()
	p, err := New(Options{Name: "vertex-claude", BaseURL: mustURL(base), Vertex: true, Project: "proj", Region: "us-east5", TokenSource: staticToken})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readBody(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewChatRequestGolden(t *testing.T) {
	first := newFirstParty(t, "https://api.anthropic.com")
	vertex := newVertex(t, "https://us-east5-aiplatform.googleapis.com")
	for _, in := range cases(t, "request", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var r llm.Request
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			req, err := first.NewChatRequest(t.Context(), &r)
			if err != nil {
				t.Fatalf("NewChatRequest: %v", err)
			}
			body := readBody(t, req.Body)
			oapispec.Anthropic(t).ValidateRequest(t, "POST", "/v1/messages", req.Header, body)
			goldenfile.Check(t, strings.TrimSuffix(in, ".in.json")+".want.json", pretty(t, body))

			vreq, err := vertex.NewChatRequest(t.Context(), &r)
			if err != nil {
				t.Fatalf("NewChatRequest(vertex): %v", err)
			}
			goldenfile.Check(t, strings.TrimSuffix(in, ".in.json")+".vertex.want.json", pretty(t, readBody(t, vreq.Body)))
			verb := ":rawPredict"
			if r.Stream {
				verb = ":streamRawPredict"
			}
			if want := "https://us-east5-aiplatform.googleapis.com/v1/projects/proj/locations/us-east5/publishers/anthropic/models/" + r.UpstreamModel + verb; vreq.URL.String() != want {
				t.Errorf("vertex URL = %s, want %s", vreq.URL, want)
			}
		})
	}
}

func TestDecodeChatGolden(t *testing.T) {
	p := newFirstParty(t, "https://api.anthropic.com")
	for _, in := range cases(t, "response", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := p.DecodeChat(nil, b)
			if err != nil {
				t.Fatalf("DecodeChat: %v", err)
			}
			out, _ := json.MarshalIndent(resp, "", "  ")
			goldenfile.Check(t, strings.TrimSuffix(in, ".in.json")+".want.json", append(out, '\n'))
		})
	}
}

// jsonEvent is a readable form of llm.Event for golden files, the same as
// ingress/anthropic's.
type jsonEvent struct {
	Type         string     `json:"type"`
	Index        int        `json:"index,omitempty"`
	Block        string     `json:"block,omitempty"`
	Text         string     `json:"text,omitempty"`
	ID           string     `json:"id,omitempty"`
	Model        string     `json:"model,omitempty"`
	ToolCallID   string     `json:"tool_call_id,omitempty"`
	ToolName     string     `json:"tool_name,omitempty"`
	Signature    string     `json:"signature,omitempty"`
	Usage        *llm.Usage `json:"usage,omitempty"`
	StopReason   string     `json:"stop_reason,omitempty"`
	StopSequence string     `json:"stop_sequence,omitempty"`
	Kind         string     `json:"kind,omitempty"`
	Code         string     `json:"code,omitempty"`
	Message      string     `json:"message,omitempty"`
}

var (
	eventTypes  = []string{"start", "block_start", "text", "tool_args", "block_stop", "usage", "stop", "error"}
	blockTypes  = []string{"text", "image", "tool_call", "tool_result", "thinking"}
	stopReasons = []string{"", "end_turn", "max_tokens", "tool_use", "stop_sequence", "content_filter"}
)

func toJSON(ev *llm.Event) jsonEvent {
	j := jsonEvent{Type: eventTypes[ev.Type], Index: ev.Index, Text: ev.Text, ID: ev.ID, Model: ev.Model,
		ToolCallID: ev.ToolCallID, ToolName: ev.ToolName, Signature: ev.Signature,
		StopReason: stopReasons[ev.StopReason], StopSequence: ev.StopSequence}
	if ev.Type == llm.EventBlockStart {
		j.Block = blockTypes[ev.Block]
	}
	if ev.Usage != (llm.Usage{}) {
		u := ev.Usage
		j.Usage = &u
	}
	if ev.Err != nil {
		ae := apierr.From(ev.Err)
		j.Kind, j.Code, j.Message = ae.Kind.String(), ae.Code, ae.Message
	}
	return j
}

func TestStreamDecoderGolden(t *testing.T) {
	p := newFirstParty(t, "https://api.anthropic.com")
	for _, in := range cases(t, "stream", ".sse") {
		name := strings.TrimSuffix(filepath.Base(in), ".sse")
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d := p.NewStreamDecoder(f)
			var out bytes.Buffer
			var ev llm.Event
			for {
				err := d.Next(&ev)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				b, _ := json.Marshal(toJSON(&ev))
				out.Write(b)
				out.WriteByte('\n')
			}
			goldenfile.Check(t, strings.TrimSuffix(in, ".sse")+".want.jsonl", out.Bytes())
		})
	}
}
