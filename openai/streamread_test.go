package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sim"
)

func TestWithStream(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"added", `{"model":"m","messages":[]}`, `{"model":"m","messages":[],"stream":true}`},
		{"empty object", `{ }`, `{ "stream":true}`},
		{"stream false kept", `{"model":"m","stream":false}`, `{"model":"m","stream":false}`},
		{"stream true kept", `{"stream":true,"model":"m"}`, `{"stream":true,"model":"m"}`},
		{"the word in a prompt", `{"model":"m","messages":[{"content":"\"stream\": no"}]}`, `{"model":"m","messages":[{"content":"\"stream\": no"}],"stream":true}`},
		{"not an object", `[1]`, `[1]`},
		{"not JSON", `{"model":`, `{"model":`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(withStream([]byte(tc.in))); got != tc.want {
				t.Errorf("withStream(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func simClient(t *testing.T, s *sim.Server, cfg Config) *Client {
	t.Helper()
	cfg.BaseURL, cfg.HTTPClient = "http://sim.test/v1", &http.Client{Transport: s.Transport()}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func chatBodyRequest(body string) *sluice.Request {
	return &sluice.Request{CustomID: "r1", Method: "POST", URL: sluice.EndpointChatCompletions, Body: json.RawMessage(body)}
}

// TestConfigStream sends a request that does not ask to stream with Config.Stream: it
// streams, with usage, and comes back in the shape of an answer that did not stream,
// with its time to first token.
func TestConfigStream(t *testing.T) {
	const ttft, perToken = 60 * time.Millisecond, 5 * time.Millisecond
	s := sim.New(sim.Config{Seed: 1, TTFT: ttft, PerToken: perToken})
	defer s.Close()
	body := `{"model":"gpt-4o-mini","max_tokens":12,"messages":[{"role":"user","content":"hello there"}]}`

	plain, err := simClient(t, s, Config{}).Do(t.Context(), chatBodyRequest(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := simClient(t, s, Config{Stream: true}).Do(t.Context(), chatBodyRequest(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain.TTFT != 0 {
		t.Errorf("an answer that did not stream has a TTFT: %v", plain.TTFT)
	}
	if resp.TTFT < ttft || resp.TTFT >= resp.Latency {
		t.Errorf("TTFT %v, latency %v: want TTFT at least %v and below the latency", resp.TTFT, resp.Latency, ttft)
	}
	if resp.Usage != plain.Usage || resp.Usage.CompletionTokens < 2 || resp.UsageCounted {
		t.Errorf("streamed usage %+v (counted %v), want the upstream's %+v", resp.Usage, resp.UsageCounted, plain.Usage)
	}
	if resp.Latency-resp.TTFT < time.Duration(resp.Usage.CompletionTokens-1)*perToken/2 {
		t.Errorf("latency %v after a TTFT of %v for %d tokens: the stream was not read as it came", resp.Latency, resp.TTFT, resp.Usage.CompletionTokens)
	}
	var a, b struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct{ Role, Content string } `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(resp.Body, &a) != nil || json.Unmarshal(plain.Body, &b) != nil {
		t.Fatalf("bodies: %s / %s", resp.Body, plain.Body)
	}
	if a.Object != "chat.completion" || len(a.Choices) != 1 || a.Choices[0].Message.Content != b.Choices[0].Message.Content {
		t.Errorf("streamed answer %s, want the shape and text of %s", resp.Body, plain.Body)
	}
}

// TestStreamIdleTimeout: a stream that stalls halfway is cut off after the idle timeout,
// as a timeout, long before the whole-request timeout; a long stream that keeps sending
// is not.
func TestStreamIdleTimeout(t *testing.T) {
	const idle = 150 * time.Millisecond
	body := `{"model":"gpt-4o-mini","max_tokens":30,"stream":true,"messages":[{"role":"user","content":"a long story"}]}`
	stalled := sim.New(sim.Config{Seed: 1, Stall: 1})
	defer stalled.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	resp, err := simClient(t, stalled, Config{StreamIdleTimeout: idle}).Do(ctx, chatBodyRequest(body))
	var ue *sluice.UpstreamError
	if !errors.As(err, &ue) || ue.Code != sluice.CodeTimeout || !errors.Is(err, errStreamIdle) || resp != nil {
		t.Fatalf("stalled stream: %v (%+v), want a stream idle timeout and no answer", err, resp)
	}
	if !ue.Retryable() {
		t.Errorf("an idle stream is not retryable: %+v", ue)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cut off after %v", d)
	}
	if st := stalled.Stats(); st.Stalled != 1 {
		t.Errorf("simulator stats %+v", st)
	}

	// 30 tokens at 20ms each: 600ms in all, never more than 20ms without a byte.
	slow := sim.New(sim.Config{Seed: 1, TTFT: 10 * time.Millisecond, PerToken: 20 * time.Millisecond})
	defer slow.Close()
	resp, err = simClient(t, slow, Config{StreamIdleTimeout: idle}).Do(ctx, chatBodyRequest(body))
	if err != nil {
		t.Fatalf("a slow stream that keeps sending: %v", err)
	}
	if resp.Latency < 2*idle {
		t.Errorf("the slow stream took %v: the test needs it longer than the idle timeout", resp.Latency)
	}
}

// TestStreamTTFTOverSocket measures the time to first token against a scripted server:
// the first content arrives after a pause, the end after another.
func TestStreamTTFTOverSocket(t *testing.T) {
	const pause = 80 * time.Millisecond
	chunk := func(delta string) string {
		return `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":` + delta + `,"finish_reason":null}]}` + "\n\n"
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		write := func(s string) {
			_, _ = w.Write([]byte(s))
			_ = rc.Flush()
		}
		write(chunk(`{"role":"assistant","content":""}`)) // no token yet
		time.Sleep(pause)                                 // the model thinks: the behaviour under test
		write(chunk(`{"content":"Hello"}`))
		time.Sleep(pause)
		write(chunk(`{"content":" world"}`) + `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}` + "\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL + "/v1", StreamIdleTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	resp, err := c.Do(t.Context(), chatBodyRequest(`{"model":"m","stream":true,"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	// The end comes pause after the first token; a loaded machine may read the first token
	// late, so the gap is only required to be more than half of it (a TTFT taken at the
	// end of the stream would leave none).
	if resp.TTFT < pause || resp.Latency-resp.TTFT < pause/2 {
		t.Errorf("TTFT %v, latency %v: want the first token after %v and the end about %v later", resp.TTFT, resp.Latency, pause, pause)
	}
	if !strings.Contains(string(resp.Body), `"content":"Hello world"`) || resp.Usage.CompletionTokens != 2 {
		t.Errorf("body %s, usage %+v", resp.Body, resp.Usage)
	}
}

// TestReceiveStreamInPieces reads every stream fixture as it would arrive in pieces (one
// byte at a time, and in odd-sized reads): the answer is the one assembled from the
// whole stream.
func TestReceiveStreamInPieces(t *testing.T) {
	files, err := filepath.Glob("testdata/stream/*.sse")
	if err != nil || len(files) == 0 {
		t.Fatalf("no stream fixtures: %v", err)
	}
	c, err := New(Config{BaseURL: "http://up.test/v1"})
	if err != nil {
		t.Fatal(err)
	}
	type fixture struct {
		name string
		data []byte
	}
	var fixtures []fixture
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(file)
		fixtures = append(fixtures, fixture{base, data},
			fixture{base + " CRLF", bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))},
			fixture{base + " CR", bytes.ReplaceAll(data, []byte("\n"), []byte("\r"))})
	}
	for _, fx := range fixtures {
		file, data := fx.name, fx.data
		wantBody, wantUsage, err := assembleStream(data)
		if err != nil {
			t.Fatal(err)
		}
		for name, r := range map[string]func() io.Reader{
			"bytes": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
			"odd":   func() io.Reader { return &oddReader{data: data} },
			"whole": func() io.Reader { return bytes.NewReader(data) },
		} {
			hresp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(r())}
			resp, err := c.receiveStream(t.Context(), endpoint{display: "up"}, hresp, time.Now(), nil)
			if err != nil {
				t.Errorf("%s in %s: %v", file, name, err)
				continue
			}
			if !bytes.Equal(resp.Body, wantBody) || resp.Usage != wantUsage || resp.TTFT <= 0 || resp.TTFT > resp.Latency {
				t.Errorf("%s in %s: body %s usage %+v ttft %v latency %v, want %s %+v", file, name,
					resp.Body, resp.Usage, resp.TTFT, resp.Latency, wantBody, wantUsage)
			}
		}
	}
}

// oddReader returns its data in reads of 1, 2, 3… 17 bytes, over and over.
type oddReader struct {
	data []byte
	n    int
}

func (r *oddReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	r.n = r.n%17 + 1
	k := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[k:]
	return k, nil
}
