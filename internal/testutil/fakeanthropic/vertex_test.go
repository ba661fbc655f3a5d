package fakeanthropic

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/anthropics/anthropic-sdk-go/vertex"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

const (
	vertexToken   = "ya29.fake-vertex-token"
	vertexProject = "my-project"
	vertexRegion  = "us-east5"
)

// vertexClient is the SDK's Vertex client with a static OAuth token,
// pointed at the fake. The HTTP client goes before vertex.WithCredentials so
// that the option wraps it with the token; the base URL goes after, since
// WithCredentials sets Google's.
func vertexClient(t *testing.T, ts *httptest.Server, token string) anthropic.Client {
	t.Helper()
	creds := &google.Credentials{TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})}
	return anthropic.NewClient(
		option.WithHTTPClient(ts.Client()),
		vertex.WithCredentials(t.Context(), vertexRegion, vertexProject, creds),
		option.WithBaseURL(ts.URL),
		option.WithMaxRetries(0),
	)
}

func TestVertex(t *testing.T) {
	fake, rec, ts := start(t, Options{VertexToken: vertexToken, CacheReadTokens: 2})
	client := vertexClient(t, ts, vertexToken)
	plain, err := client.Messages.New(t.Context(), textParams())
	if err != nil {
		t.Fatalf("Messages.New: %v", err)
	}
	streamed, _, err := accumulate(t, client.Messages.NewStreaming(t.Context(), textParams()))
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	for what, m := range map[string]anthropic.Message{"New": *plain, "stream": streamed} {
		if m.Content[0].Text != DefaultContent || m.Model != testModel || m.Usage.InputTokens != wantInputTokens ||
			m.Usage.OutputTokens != 5 || m.Usage.CacheReadInputTokens != 2 || len(m.ID) < 9 || m.ID[:9] != "msg_vrtx_" {
			t.Errorf("%s = %s", what, m.RawJSON())
		}
	}

	base := "/v1/projects/" + vertexProject + "/locations/" + vertexRegion + "/publishers/anthropic/models/" + testModel
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("len(Requests()) = %d, want 2", len(reqs))
	}
	for i, wantPath := range []string{base + ":rawPredict", base + ":streamRawPredict"} {
		r := reqs[i]
		if r.Path != wantPath {
			t.Errorf("request %d path = %q, want %q", i, r.Path, wantPath)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+vertexToken {
			t.Errorf("request %d Authorization = %q", i, got)
		}
		if r.Header.Get("x-api-key") != "" {
			t.Errorf("request %d sent x-api-key", i)
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		if string(body["anthropic_version"]) != `"`+VertexVersion+`"` {
			t.Errorf("request %d anthropic_version = %s", i, body["anthropic_version"])
		}
		if _, has := body["model"]; has {
			t.Errorf("request %d body has model", i)
		}
	}
	validateAll(t, fake, rec)
}

func TestVertexCountTokens(t *testing.T) {
	fake, rec, ts := start(t, Options{VertexToken: vertexToken})
	client := vertexClient(t, ts, vertexToken)
	got, err := client.Messages.CountTokens(t.Context(), anthropic.MessageCountTokensParams{
		Model:    testModel,
		System:   anthropic.MessageCountTokensParamsSystemUnion{OfString: anthropic.String("You are terse.")},
		Messages: textParams().Messages,
	})
	if err != nil {
		t.Fatalf("CountTokens: %v", err)
	}
	if got.InputTokens != wantInputTokens {
		t.Errorf("input_tokens = %d, want %d", got.InputTokens, wantInputTokens)
	}
	validateAll(t, fake, rec)
}
