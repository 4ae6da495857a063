package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sim"
)

// simUpstream is a Client on a simulator's in-process transport.
func simUpstream(t *testing.T, cfg sim.Config) (*Client, *sim.Server) {
	t.Helper()
	s := sim.New(cfg)
	t.Cleanup(s.Close)
	c, err := New(Config{BaseURL: "http://sim.test/v1", HTTPClient: &http.Client{Transport: s.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func streamedChat(id string) *sluice.Request {
	return &sluice.Request{CustomID: id, Method: "POST", URL: sluice.EndpointChatCompletions,
		Body: json.RawMessage(`{"model":"gpt-4o-mini","stream":true,"max_tokens":40,"messages":[{"role":"user","content":"tell me about ` + id + `"}]}`)}
}

// A streamed request that does not ask for usage is sent asking for it, so its usage is
// the upstream's own.
func TestStreamIsAskedForUsage(t *testing.T) {
	c, s := simUpstream(t, sim.Config{Seed: 1})
	resp, err := c.Do(context.Background(), streamedChat("a"))
	if err != nil {
		t.Fatal(err)
	}
	ss := s.Stats()
	want := sluice.Usage{PromptTokens: ss.PromptTokens, CompletionTokens: ss.CompletionTokens}
	if resp.Usage != want || resp.UsageCounted {
		t.Errorf("usage %+v (counted by sluice: %v), want the upstream's %+v", resp.Usage, resp.UsageCounted, want)
	}
}

// An upstream that refuses stream_options gets the request again as it was, and is not
// asked again; the usage of its streams is then counted by sluice.
func TestStreamOptionsRefusedFallsBack(t *testing.T) {
	c, s := simUpstream(t, sim.Config{Seed: 1, Quirks: sim.Quirks{RejectStreamOptions: true}})
	for _, id := range []string{"a", "b", "c"} {
		resp, err := c.Do(context.Background(), streamedChat(id))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if resp.StatusCode != 200 || !resp.UsageCounted || resp.Usage.PromptTokens == 0 || resp.Usage.CompletionTokens == 0 {
			t.Errorf("%s: status %d usage %+v counted %v, want a 200 with usage counted by sluice", id, resp.StatusCode, resp.Usage, resp.UsageCounted)
		}
	}
	if n := s.Stats().BadRequests; n != 1 {
		t.Errorf("%d requests refused for stream_options, want 1 (then never asked again)", n)
	}
}

// A stream that ends without usage although asked for it has its usage counted by sluice:
// the completion exactly, the prompt as estimated.
func TestStreamWithoutUsageIsCounted(t *testing.T) {
	c, s := simUpstream(t, sim.Config{Seed: 1, Quirks: sim.Quirks{NoStreamUsage: true}})
	var got sluice.Usage
	for _, id := range []string{"a", "b", "c", "d"} {
		resp, err := c.Do(context.Background(), streamedChat(id))
		if err != nil {
			t.Fatal(err)
		}
		if !resp.UsageCounted {
			t.Fatalf("%s: usage not marked as counted by sluice", id)
		}
		got = got.Add(resp.Usage)
	}
	ss := s.Stats()
	if got.CompletionTokens != ss.CompletionTokens {
		t.Errorf("completion tokens counted %d, the upstream generated %d", got.CompletionTokens, ss.CompletionTokens)
	}
	if d := got.PromptTokens - ss.PromptTokens; d < -4 || d > 4 {
		t.Errorf("prompt tokens counted %d, the upstream's %d", got.PromptTokens, ss.PromptTokens)
	}
}

func TestWithStreamUsage(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"adds", `{"model":"m","stream":true}`, `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`},
		{"keeps spacing", "{ \"stream\" : true }\n", "{ \"stream\" : true ,\"stream_options\":{\"include_usage\":true}}\n"},
		{"not streamed", `{"model":"m","stream":false}`, ""},
		{"no stream key", `{"model":"m","streaming":true}`, ""},
		{"nested stream", `{"model":"m","metadata":{"stream":true}}`, ""},
		{"has options", `{"stream":true,"stream_options":{"include_usage":false}}`, ""},
		{"string true", `{"stream":"true"}`, ""},
		{"not an object", `[{"stream":true}]`, ""},
		{"trailing garbage", `{"stream":true} {}`, ""},
		{"invalid", `{"stream":true,}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, added := withStreamUsage([]byte(tc.in))
			if tc.want == "" {
				if added || string(out) != tc.in {
					t.Errorf("changed %s into %s", tc.in, out)
				}
				return
			}
			if !added || string(out) != tc.want {
				t.Errorf("got %s (added %v), want %s", out, added, tc.want)
			}
		})
	}
}

// FuzzWithStreamUsage checks that an added stream_options leaves a valid object whose
// other members are unchanged, and that anything else is left as it was.
func FuzzWithStreamUsage(f *testing.F) {
	for _, s := range []string{`{"stream":true}`, `{"model":"m","stream":true,"messages":[]}`, `{"stream":false}`,
		`{"stream":true,"stream_options":null}`, ` {"stream" :true } `, `{}`, `[]`, `{"a":"}","stream":true}`, `{"stream":tru`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in := bytes.Clone(body)
		out, added := withStreamUsage(body)
		if !bytes.Equal(body, in) {
			t.Fatal("input modified")
		}
		if !added {
			if !bytes.Equal(out, in) {
				t.Fatalf("not added but changed: %q -> %q", in, out)
			}
			return
		}
		var before, after map[string]json.RawMessage
		if err := json.Unmarshal(in, &before); err != nil {
			t.Fatalf("added to a body that is not an object: %q", in)
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("result is not valid JSON: %q: %v", out, err)
		}
		var opts struct {
			IncludeUsage bool `json:"include_usage"`
		}
		if err := json.Unmarshal(after["stream_options"], &opts); err != nil || !opts.IncludeUsage {
			t.Fatalf("no include_usage in %q", out)
		}
		delete(after, "stream_options")
		if len(after) != len(before) {
			t.Fatalf("members changed: %q -> %q", in, out)
		}
		for k, v := range before {
			if !bytes.Equal(after[k], v) {
				t.Fatalf("member %q changed: %q -> %q", k, v, after[k])
			}
		}
	})
}
