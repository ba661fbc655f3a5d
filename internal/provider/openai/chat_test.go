package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

// TestFakeUpstream runs the translating path against the fake OpenAI and
// Azure servers: NewChatRequest, a real HTTP round trip, then DecodeChat or
// the stream decoder, DecodeError for scripted failures.
func TestFakeUpstream(t *testing.T) {
	spec := oapispec.OpenAI(t)
	r := llm.Request{
		Model:         "claude-sonnet-4",
		UpstreamModel: "gpt-4o",
		System:        []llm.Part{{Type: llm.PartText, Text: "Be brief."}},
		Messages:      []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "Say hello to me"}}}},
		MaxTokens:     100,
	}
	// Fake token accounting: 4 per message plus words: system 4+2, user 4+4.
	const promptTokens, cached = 14, 6
	for _, tc := range []struct {
		name   string
		flavor string
		o      Options
	}{
		{"openai", fakeupstream.FlavorOpenAI, Options{APIKey: "sk-test"}},
		{"azure v1", fakeupstream.FlavorAzure, Options{Flavor: FlavorAzure, APIKey: "sk-test", Deployments: map[string]string{"gpt-4o": "dep-4o"}}},
		{"azure classic", fakeupstream.FlavorAzure, Options{Flavor: FlavorAzure, APIKey: "sk-test", APIVersion: "2024-10-21"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakeupstream.New(fakeupstream.Options{APIKey: "sk-test", Flavor: tc.flavor, CachedTokens: cached,
				Now: func() time.Time { return time.Unix(1735689600, 0) }})
			srv := httptest.NewServer(fake)
			defer srv.Close()
			base, _ := url.Parse(srv.URL)
			if tc.flavor == fakeupstream.FlavorOpenAI {
				base.Path = "/v1"
			}
			tc.o.Name, tc.o.BaseURL = "fake", base
			p := newProvider(t, tc.o)
			ctx := context.Background()

			// Non-streamed.
			resp, body := roundTrip(t, p, ctx, r)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got, err := p.DecodeChat(resp, body)
			if err != nil {
				t.Fatal(err)
			}
			if text := got.Content[0].Text; text != fakeupstream.DefaultContent || got.StopReason != llm.StopEndTurn {
				t.Errorf("DecodeChat = %q stop %d, want %q end_turn", text, got.StopReason, fakeupstream.DefaultContent)
			}
			want := llm.Usage{InputTokens: promptTokens, OutputTokens: 5, CachedTokens: cached}
			if got.Usage != want {
				t.Errorf("DecodeChat usage = %+v, want %+v", got.Usage, want)
			}

			// Streamed: include_usage goes upstream, usage comes back.
			rs := r
			rs.Stream = true
			resp, body = roundTrip(t, p, ctx, rs)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("stream status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			_, events := drain(t, p, strings.NewReader(string(body)))
			checkWellFormed(t, events)
			var text strings.Builder
			var usage llm.Usage
			for _, ev := range events {
				switch ev.Type {
				case llm.EventTextDelta:
					text.WriteString(ev.Text)
				case llm.EventUsage:
					usage = ev.Usage
				}
			}
			if text.String() != fakeupstream.DefaultContent || usage != want {
				t.Errorf("stream = %q usage %+v, want %q %+v", text.String(), usage, fakeupstream.DefaultContent, want)
			}
			if last := events[len(events)-1]; last.Type != llm.EventStop || last.StopReason != llm.StopEndTurn {
				t.Errorf("last event = %s, want stop end_turn", eventJSON(&last))
			}

			reqs := fake.Requests()
			if len(reqs) != 2 {
				t.Fatalf("fake saw %d requests, want 2", len(reqs))
			}
			for i, rq := range reqs {
				spec.ValidateRequest(t, "POST", "/v1/chat/completions", rq.Header, rq.Body)
				var sent struct {
					Model         string
					StreamOptions *struct {
						IncludeUsage bool `json:"include_usage"`
					} `json:"stream_options"`
				}
				_ = json.Unmarshal(rq.Body, &sent)
				if i == 1 && (sent.StreamOptions == nil || !sent.StreamOptions.IncludeUsage) {
					t.Errorf("streamed request %s lacks stream_options.include_usage", rq.Body)
				}
				if tc.name == "azure v1" && sent.Model != "dep-4o" {
					t.Errorf("azure v1 request model %q, want the deployment dep-4o", sent.Model)
				}
			}

			// Scripted failure: 429 with Retry-After.
			fake.Enqueue(fakeupstream.Behavior{Status: 429, RetryAfter: "7"})
			resp, body = roundTrip(t, p, ctx, r)
			e := p.DecodeError(resp, body)
			if e.Kind != apierr.RateLimited || e.RetryAfter != "7" || !strings.HasPrefix(e.Message, `provider "fake": `) {
				t.Errorf("DecodeError(429) = %v retry %q, want rate_limited retry 7", e, e.RetryAfter)
			}
		})
	}
}

func TestFakeUpstreamBadKey(t *testing.T) {
	fake := fakeupstream.New(fakeupstream.Options{APIKey: "sk-right"})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	base, _ := url.Parse(srv.URL + "/v1")
	p := newProvider(t, Options{Name: "fake", BaseURL: base, APIKey: "sk-wrong-key-123456"})
	r := llm.Request{UpstreamModel: "gpt-4o", Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}}}
	resp, body := roundTrip(t, p, context.Background(), r)
	e := p.DecodeError(resp, body)
	if e.Kind != apierr.UpstreamUnavailable || strings.Contains(e.Error(), "3456") {
		t.Errorf("DecodeError(401) = %v, want upstream_unavailable that quotes no key", e)
	}
}

func TestFakeUpstreamCutStream(t *testing.T) {
	fake := fakeupstream.New(fakeupstream.Options{})
	fake.Enqueue(fakeupstream.Behavior{CutAfter: 2})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	base, _ := url.Parse(srv.URL + "/v1")
	p := newProvider(t, Options{Name: "fake", BaseURL: base})
	r := llm.Request{UpstreamModel: "gpt-4o", Stream: true, Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}}}
	req, err := p.NewChatRequest(context.Background(), &r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	d := p.NewStreamDecoder(resp.Body)
	var ev llm.Event
	for {
		err = d.Next(&ev)
		if err != nil {
			break
		}
		if ev.Type == llm.EventStop {
			t.Fatal("a cut stream ended with Stop")
		}
	}
	if errors.Is(err, io.EOF) {
		t.Errorf("a cut stream ended with io.EOF, want an error")
	}
}

func roundTrip(t *testing.T, p *Provider, ctx context.Context, r llm.Request) (*http.Response, []byte) {
	t.Helper()
	req, err := p.NewChatRequest(ctx, &r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
