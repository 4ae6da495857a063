package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/tokens"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable clock for the rate limits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// answer is an HTTP answer read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// send sends a request through s's in-process transport with a plain http.Client.
func send(ctx context.Context, s *Server, method, path, body string, header ...string) answer {
	req, err := http.NewRequestWithContext(ctx, method, "http://sim.test"+path, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(&http.Client{Transport: s.Transport()}, req)
}

func do(c *http.Client, req *http.Request) answer {
	resp, err := c.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

func post(t *testing.T, s *Server, path, body string, header ...string) answer {
	t.Helper()
	a := send(context.Background(), s, http.MethodPost, path, body, header...)
	if a.err != nil {
		t.Fatalf("POST %s: %v", path, a.err)
	}
	return a
}

func chatBody(content string, extra string) string {
	c, _ := json.Marshal(content)
	return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":` + string(c) + `}]` + extra + `}`
}

// chatCompletion is the shape of a chat completion, as a client decodes it.
type chatCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

type usage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens *int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("answer %d is not the JSON expected: %v\n%s", a.status, err, a.body)
	}
	return v
}

// checkError checks a is an error answer of OpenAI's shape with status and code.
func checkError(t *testing.T, a answer, status int, typ, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// Every key of OpenAI's shape must be there, param and code possibly null.
	e := decode[map[string]map[string]json.RawMessage](t, a)["error"]
	if len(e) != 4 || e["message"] == nil || e["type"] == nil || e["param"] == nil || e["code"] == nil || string(e["message"]) == `""` {
		t.Fatalf("not OpenAI's error shape: %s", a.body)
	}
	wantCode := "null"
	if code != "" {
		wantCode = `"` + code + `"`
	}
	if string(e["type"]) != `"`+typ+`"` || string(e["code"]) != wantCode {
		t.Fatalf("type %s code %s, want %q %s: %s", e["type"], e["code"], typ, wantCode, a.body)
	}
}

func TestChatCompletion(t *testing.T) {
	s := New(Config{})
	clk := newClock()
	s.now = clk.now
	a := post(t, s, "/v1/chat/completions", chatBody("ask r00001", `,"max_tokens":20`))
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if id := a.header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") || len(id) != 28 {
		t.Errorf("x-request-id %q", id)
	}
	c := decode[chatCompletion](t, a)
	if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Created != clk.now().Unix() || c.Model != "gpt-4o-mini" {
		t.Errorf("head: %+v", c)
	}
	if len(c.Choices) != 1 {
		t.Fatalf("%d choices", len(c.Choices))
	}
	ch := c.Choices[0]
	if ch.Index != 0 || ch.Message.Role != "assistant" || !strings.HasPrefix(ch.Message.Content, "ask r00001") {
		t.Errorf("choice %+v does not echo the message", ch)
	}
	// "ask r00001" is 4 tokens: 3 (message) + 1 (role) + 4 + 3 (reply) = 11.
	n := int64(tokens.ForModel("gpt-4o-mini").Count(ch.Message.Content))
	want := usage{PromptTokens: 11, CompletionTokens: n, TotalTokens: 11 + n}
	got := c.Usage
	if got.PromptTokensDetails == nil || got.PromptTokensDetails.CachedTokens == nil || *got.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("prompt_tokens_details.cached_tokens missing: %s", a.body)
	}
	got.PromptTokensDetails = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	if n < minAnswerTokens || n > 20 {
		t.Errorf("%d completion tokens, want between %d and max_tokens 20", n, minAnswerTokens)
	}
	if st := s.Stats(); st.Requests != 1 || st.OK != 1 || st.PromptTokens != 11 || st.CompletionTokens != n {
		t.Errorf("stats %+v", st)
	}
}

// TestPromptTokens checks the simulator's own count of prompts against numbers OpenAI
// publishes (the cookbook example: 129 tokens on gpt-4, 124 on gpt-4o-mini) and worked
// examples of the formula ("hello world" is 2 tokens, "You are concise." 4).
func TestPromptTokens(t *testing.T) {
	const cookbook = `[
 {"role":"system","content":"You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
 {"role":"system","name":"example_user","content":"New synergies will help drive top-line growth."},
 {"role":"system","name":"example_assistant","content":"Things working well together will increase revenue."},
 {"role":"system","name":"example_user","content":"Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
 {"role":"system","name":"example_assistant","content":"Let's talk later when we're less busy about how to do better."},
 {"role":"user","content":"This late pivot means we don't have time to boil the ocean for the client deliverable."}]`
	const tools = `[{"type":"function","function":{"name":"f","parameters":{}}}]`
	toolTokens := int64(tokens.ForModel("gpt-4o").Count(tools))
	tests := []struct {
		name, path, body string
		want             int64
	}{
		{"cookbook gpt-4", "/v1/chat/completions", `{"model":"gpt-4-turbo","messages":` + cookbook + `}`, 129},
		{"cookbook gpt-4o-mini", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":` + cookbook + `}`, 124},
		{"system and user", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"system","content":"You are concise."},{"role":"user","content":"hello world"}]}`, 17},
		{"name", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","name":"hello","content":"hello world"}]}`, 11},
		{"parts and image", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"hello world"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}},{"type":"image_url","image_url":{"url":"https://example.com/b.png","detail":"low"}}]}]}`, 9 + 765 + 85},
		{"tools", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}],"tools":` + tools + `}`, 9 + toolTokens},
		{"completions", "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":["hello world","You are concise."]}`, 6},
		{"completions token ids", "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":[1,2,3]}`, 3},
		{"embeddings", "/v1/embeddings", `{"model":"text-embedding-3-small","input":["hello world",[1,2,3]]}`, 5},
		{"responses", "/v1/responses", `{"model":"gpt-4.1","instructions":"You are concise.","input":"hello world"}`, 17},
		{"responses items", "/v1/responses", `{"model":"gpt-4.1","input":[{"role":"user","content":[{"type":"input_text","text":"hello world"}]},{"type":"function_call","name":"hello","arguments":"hello world"},{"type":"function_call_output","output":"hello world"}]}`, 9 + 6 + 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			a := post(t, s, tt.path, tt.body)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			type promptUsage struct {
				Usage struct {
					PromptTokens *int64 `json:"prompt_tokens"`
					InputTokens  *int64 `json:"input_tokens"`
				} `json:"usage"`
			}
			u := decode[promptUsage](t, a)
			got := u.Usage.PromptTokens
			if got == nil {
				got = u.Usage.InputTokens
			}
			if got == nil || *got != tt.want {
				t.Fatalf("prompt tokens %v, want %d: %s", got, tt.want, a.body)
			}
		})
	}
}

// TestAnswerLength checks answers: they echo the message, count the tokens of their text,
// stop at the request's cap with finish_reason "length", and are the same for the same
// request and seed.
func TestAnswerLength(t *testing.T) {
	messages := []string{
		"ask r00001", "", "ends with a space ", "ends with newline\n", "数字123 and 日本語。",
		"tabs\tand  double  spaces", "punctuation!?", "It's what we'd do", "x",
		strings.Repeat("A long message with many words. ", 20),
	}
	codec := tokens.ForModel("gpt-4o-mini")
	for _, msg := range messages {
		for _, max := range []int{0, 1, 3, 17, 40, 1000} {
			extra := ""
			if max > 0 {
				extra = fmt.Sprintf(`,"max_tokens":%d`, max)
			}
			s := New(Config{Seed: 3})
			c := decode[chatCompletion](t, post(t, s, "/v1/chat/completions", chatBody(msg, extra)))
			again := decode[chatCompletion](t, post(t, s, "/v1/chat/completions", chatBody(msg, extra)))
			ch := c.Choices[0]
			got := c.Usage.CompletionTokens
			switch {
			case ch.Message.Content != again.Choices[0].Message.Content:
				t.Errorf("%q max %d: two answers to the same request differ", msg, max)
			case int64(codec.Count(ch.Message.Content)) != got:
				t.Errorf("%q max %d: completion_tokens %d, but the content %q has %d", msg, max, got, ch.Message.Content, codec.Count(ch.Message.Content))
			case max > 0 && got > int64(max):
				t.Errorf("%q max %d: %d tokens", msg, max, got)
			case max > 0 && got == int64(max) != (ch.FinishReason == "length"):
				t.Errorf("%q max %d: %d tokens and finish_reason %q", msg, max, got, ch.FinishReason)
			case max == 0 && (ch.FinishReason != "stop" || got < minAnswerTokens):
				t.Errorf("%q: %d tokens and finish_reason %q", msg, got, ch.FinishReason)
			}
			full := codec.Count(msg)
			if max == 0 || full <= max {
				if !strings.HasPrefix(ch.Message.Content, msg) {
					t.Errorf("%q max %d: %q does not echo the message", msg, max, ch.Message.Content)
				}
			} else if !strings.HasPrefix(msg, ch.Message.Content) {
				t.Errorf("%q max %d: %q is not the message cut short", msg, max, ch.Message.Content)
			}
		}
	}
}

func TestFillerWordsAreOneToken(t *testing.T) {
	for _, model := range []string{"gpt-4o", "gpt-4"} {
		for _, w := range fillerWords {
			if n := tokens.ForModel(model).Count(w); n != 1 {
				t.Errorf("%s: %q is %d tokens", model, w, n)
			}
		}
	}
}

// sse reads a text/event-stream body into its data payloads.
func sse(t *testing.T, body []byte) []string {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	blank := true
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			blank = true
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || !blank {
			t.Fatalf("malformed event stream at %q:\n%s", line, body)
		}
		blank = false
		events = append(events, data)
	}
	return events
}

type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

func TestChatStream(t *testing.T) {
	s := New(Config{Seed: 5})
	plain := decode[chatCompletion](t, post(t, s, "/v1/chat/completions", chatBody("ask r00002", `,"max_tokens":30`)))
	a := post(t, s, "/v1/chat/completions", chatBody("ask r00002", `,"max_tokens":30,"stream":true,"stream_options":{"include_usage":true}`))
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, Content-Type %q", a.status, a.header.Get("Content-Type"))
	}
	events := sse(t, a.body)
	if len(events) < 4 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", events)
	}
	var content strings.Builder
	var finish string
	var u *usage
	ids := map[string]bool{}
	for i, e := range events[:len(events)-1] {
		var c chunk
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("event %d is not JSON: %v: %s", i, err, e)
		}
		ids[c.ID] = true
		if c.Object != "chat.completion.chunk" || c.Model != "gpt-4o-mini" {
			t.Fatalf("event %d: %s", i, e)
		}
		if i == 0 && (len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant") {
			t.Fatalf("first chunk has no role: %s", e)
		}
		if c.Usage != nil {
			if len(c.Choices) != 0 || i != len(events)-2 {
				t.Fatalf("usage chunk with choices or not last: %s", e)
			}
			u = c.Usage
			continue
		}
		if !strings.Contains(e, `"usage":null`) {
			t.Errorf("chunk %d has no usage:null although include_usage is set", i)
		}
		content.WriteString(c.Choices[0].Delta.Content)
		if f := c.Choices[0].FinishReason; f != nil {
			finish = *f
		}
	}
	if len(ids) != 1 {
		t.Errorf("chunks have %d ids", len(ids))
	}
	want := plain.Choices[0]
	if content.String() != want.Message.Content || finish != want.FinishReason {
		t.Errorf("streamed %q (%s), want %q (%s)", content.String(), finish, want.Message.Content, want.FinishReason)
	}
	if u == nil || u.PromptTokens != plain.Usage.PromptTokens || u.CompletionTokens != plain.Usage.CompletionTokens || u.TotalTokens != plain.Usage.TotalTokens {
		t.Errorf("stream usage %+v, want %+v", u, plain.Usage)
	}

	// Without include_usage: no usage anywhere.
	a = post(t, s, "/v1/chat/completions", chatBody("ask r00002", `,"stream":true`))
	if strings.Contains(string(a.body), "usage") {
		t.Errorf("usage in a stream that did not ask for it")
	}
	// stream_options without stream is refused.
	checkError(t, post(t, s, "/v1/chat/completions", chatBody("x", `,"stream_options":{"include_usage":true}`)), 400, "invalid_request_error", "invalid_value")
}

func TestCompletionsStream(t *testing.T) {
	s := New(Config{})
	a := post(t, s, "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":"say this","max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}`)
	events := sse(t, a.body)
	var text strings.Builder
	for _, e := range events[:len(events)-1] {
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Usage *usage `json:"usage"`
		}
		if err := json.Unmarshal([]byte(e), &c); err != nil || c.Object != "text_completion" {
			t.Fatalf("bad chunk %v: %s", err, e)
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Text)
		}
		if c.Usage != nil && c.Usage.CompletionTokens != 5 {
			t.Errorf("usage %+v", c.Usage)
		}
	}
	if !strings.HasPrefix(text.String(), "say this") || events[len(events)-1] != "[DONE]" {
		t.Errorf("streamed %q, events %q", text.String(), events)
	}
}

func TestCompletions(t *testing.T) {
	s := New(Config{})
	a := post(t, s, "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":["first prompt","second prompt"],"n":2}`)
	type completion struct {
		Object  string `json:"object"`
		Choices []struct {
			Text         string `json:"text"`
			Index        int    `json:"index"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage usage `json:"usage"`
	}
	c := decode[completion](t, a)
	if c.Object != "text_completion" || len(c.Choices) != 4 {
		t.Fatalf("%s", a.body)
	}
	var sum int64
	for i, ch := range c.Choices {
		want := []string{"first prompt", "second prompt"}[i/2]
		// No max_tokens: OpenAI's default of 16 applies.
		if ch.Index != i || !strings.HasPrefix(ch.Text, want) || ch.FinishReason != "length" {
			t.Errorf("choice %d: %+v", i, ch)
		}
		sum += int64(tokens.ForModel("gpt-3.5-turbo-instruct").Count(ch.Text))
	}
	if c.Usage.PromptTokens != 4 || c.Usage.CompletionTokens != sum || sum != 4*16 {
		t.Errorf("usage %+v, counted %d", c.Usage, sum)
	}
}

type embeddingList struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int64 `json:"prompt_tokens"`
		TotalTokens  int64 `json:"total_tokens"`
	} `json:"usage"`
}

func TestEmbeddings(t *testing.T) {
	s := New(Config{})
	vectors := func(body string) ([][]float64, embeddingList) {
		t.Helper()
		l := decode[embeddingList](t, post(t, s, "/v1/embeddings", body))
		var out [][]float64
		for i, d := range l.Data {
			if d.Object != "embedding" || d.Index != i {
				t.Fatalf("data[%d] = %+v", i, d)
			}
			var v []float64
			if err := json.Unmarshal(d.Embedding, &v); err != nil {
				var s string
				if err := json.Unmarshal(d.Embedding, &s); err != nil {
					t.Fatal(err)
				}
				raw, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i+4 <= len(raw); i += 4 {
					v = append(v, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[i:]))))
				}
			}
			out = append(out, v)
		}
		return out, l
	}
	v, l := vectors(`{"model":"text-embedding-3-small","input":["hello world","other text","hello world"]}`)
	if l.Object != "list" || l.Model != "text-embedding-3-small" || l.Usage.PromptTokens != 6 || l.Usage.TotalTokens != 6 || len(v) != 3 {
		t.Fatalf("list %s, usage %+v, %d vectors", l.Object, l.Usage, len(v))
	}
	dot := func(a, b []float64) (d float64) {
		for i := range a {
			d += a[i] * b[i]
		}
		return d
	}
	if len(v[0]) != 1536 || math.Abs(dot(v[0], v[0])-1) > 1e-6 {
		t.Errorf("%d dimensions, norm² %f", len(v[0]), dot(v[0], v[0]))
	}
	if !cmp.Equal(v[0], v[2]) || math.Abs(dot(v[0], v[1])) > 0.2 {
		t.Errorf("same input, different vectors, or different inputs alike (cosine %f)", dot(v[0], v[1]))
	}
	large, _ := vectors(`{"model":"text-embedding-3-large","input":"hello world"}`)
	small, _ := vectors(`{"model":"text-embedding-3-small","input":"hello world","dimensions":256}`)
	b64, _ := vectors(`{"model":"text-embedding-3-small","input":"hello world","dimensions":256,"encoding_format":"base64"}`)
	if len(large[0]) != 3072 || len(small[0]) != 256 || len(b64[0]) != 256 {
		t.Fatalf("dimensions %d, %d, %d", len(large[0]), len(small[0]), len(b64[0]))
	}
	for i := range small[0] {
		if math.Abs(small[0][i]-b64[0][i]) > 1e-8 {
			t.Fatalf("base64 and float encodings differ at %d: %f, %f", i, small[0][i], b64[0][i])
		}
	}
	checkError(t, post(t, s, "/v1/embeddings", `{"model":"text-embedding-3-small","input":"x","dimensions":5000}`), 400, "invalid_request_error", "invalid_value")
	checkError(t, post(t, s, "/v1/embeddings", `{"model":"text-embedding-3-small","input":[]}`), 400, "invalid_request_error", "empty_array")
}

func TestResponses(t *testing.T) {
	s := New(Config{})
	type response struct {
		ID     string `json:"id"`
		Object string `json:"object"`
		Status string `json:"status"`
		Output []struct {
			Type    string `json:"type"`
			Role    string `json:"role"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		} `json:"output"`
		Usage struct {
			InputTokens  int64 `json:"input_tokens"`
			OutputTokens int64 `json:"output_tokens"`
			TotalTokens  int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	r := decode[response](t, post(t, s, "/v1/responses", `{"model":"gpt-4.1","input":"hello world"}`))
	if !strings.HasPrefix(r.ID, "resp_") || r.Object != "response" || r.Status != "completed" || len(r.Output) != 1 ||
		r.Output[0].Type != "message" || r.Output[0].Role != "assistant" || len(r.Output[0].Content) != 1 ||
		r.Output[0].Content[0].Type != "output_text" || !strings.HasPrefix(r.Output[0].Content[0].Text, "hello world") {
		t.Fatalf("response %+v", r)
	}
	if n := int64(tokens.ForModel("gpt-4.1").Count(r.Output[0].Content[0].Text)); r.Usage.InputTokens != 9 || r.Usage.OutputTokens != n || r.Usage.TotalTokens != 9+n {
		t.Errorf("usage %+v, text has %d tokens", r.Usage, n)
	}
	r = decode[response](t, post(t, s, "/v1/responses", `{"model":"gpt-4.1","input":"hello world","max_output_tokens":3}`))
	if r.Status != "incomplete" || r.Usage.OutputTokens != 3 {
		t.Errorf("capped response %+v", r)
	}
}

func TestModels(t *testing.T) {
	s := New(Config{})
	a := send(context.Background(), s, http.MethodGet, "/v1/models", "")
	type modelList struct {
		Object string `json:"object"`
		Data   []struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		} `json:"data"`
	}
	l := decode[modelList](t, a)
	var ids []string
	for _, m := range l.Data {
		if m.Object != "model" {
			t.Errorf("model %+v", m)
		}
		ids = append(ids, m.ID)
	}
	if l.Object != "list" || !cmp.Equal(ids, DefaultModels()) {
		t.Errorf("models %v", ids)
	}
	if a := send(context.Background(), s, http.MethodGet, "/v1/models/gpt-4o-mini", ""); a.status != 200 || !strings.Contains(string(a.body), `"id":"gpt-4o-mini"`) {
		t.Errorf("GET model: %d %s", a.status, a.body)
	}
	checkError(t, send(context.Background(), s, http.MethodGet, "/v1/models/gpt-9", ""), 404, "invalid_request_error", "model_not_found")

	// Dated snapshots of served models are served; configured lists replace the default.
	if a := post(t, s, "/v1/chat/completions", `{"model":"gpt-4o-mini-2024-07-18","messages":[{"role":"user","content":"x"}]}`); a.status != 200 {
		t.Errorf("snapshot: %d %s", a.status, a.body)
	}
	only := New(Config{Models: []string{"my-model"}})
	if a := post(t, only, "/v1/chat/completions", `{"model":"my-model","messages":[{"role":"user","content":"x"}]}`); a.status != 200 {
		t.Errorf("configured model: %d %s", a.status, a.body)
	}
	checkError(t, post(t, only, "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`), 404, "invalid_request_error", "model_not_found")
}

func TestInvalidRequests(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"not JSON", "POST", "/v1/chat/completions", `{"model":`, 400, ""},
		{"not an object", "POST", "/v1/chat/completions", `[1]`, 400, ""},
		{"no model", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 400, ""},
		{"no messages", "POST", "/v1/chat/completions", `{"model":"gpt-4o"}`, 400, "missing_required_parameter"},
		{"empty messages", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, 400, "empty_array"},
		{"messages an object", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":{}}`, 400, "invalid_type"},
		{"bad role", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"robot","content":"x"}]}`, 400, "invalid_value"},
		{"content a number", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":1}]}`, 400, "invalid_type"},
		{"max_tokens 0", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":0}`, 400, "integer_below_min_value"},
		{"n 0", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"n":0}`, 400, "invalid_value"},
		{"no prompt", "POST", "/v1/completions", `{"model":"gpt-3.5-turbo-instruct"}`, 400, "missing_required_parameter"},
		{"prompt an object", "POST", "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":{}}`, 400, "invalid_type"},
		{"no input", "POST", "/v1/embeddings", `{"model":"text-embedding-3-small"}`, 400, "missing_required_parameter"},
		{"responses stream", "POST", "/v1/responses", `{"model":"gpt-4.1","input":"x","stream":true}`, 400, "unsupported_value"},
		{"unknown model", "POST", "/v1/chat/completions", `{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found"},
		{"unknown URL", "POST", "/v1/images/generations", `{}`, 404, ""},
		{"wrong method", "GET", "/v1/chat/completions", ``, 404, ""},
	}
	s := New(Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := send(context.Background(), s, tt.method, tt.path, tt.body)
			if a.err != nil {
				t.Fatal(a.err)
			}
			checkError(t, a, tt.status, "invalid_request_error", tt.code)
		})
	}
	if st := s.Stats(); st.BadRequests != 14 || st.NotFound != 3 || st.OK != 0 || st.Requests != int64(len(tests)) {
		t.Errorf("stats %+v", st)
	}
}

func TestAPIKey(t *testing.T) {
	const key = "sk-right-key"
	s := New(Config{APIKey: key})
	body := chatBody("x", "")
	checkError(t, post(t, s, "/v1/chat/completions", body), 401, "invalid_request_error", "invalid_api_key")
	wrong := post(t, s, "/v1/chat/completions", body, "Authorization", "Bearer sk-WRONG-secret-0123")
	checkError(t, wrong, 401, "invalid_request_error", "invalid_api_key")
	if strings.Contains(string(wrong.body), "WRONG") || strings.Contains(string(wrong.body), "0123") {
		t.Errorf("the wrong key is echoed: %s", wrong.body)
	}
	checkError(t, post(t, s, "/v1/chat/completions", body, "Authorization", key), 401, "invalid_request_error", "invalid_api_key")
	if a := post(t, s, "/v1/chat/completions", body, "Authorization", "Bearer "+key); a.status != 200 {
		t.Errorf("right key: %d %s", a.status, a.body)
	}
	if a := send(context.Background(), s, http.MethodGet, "/v1/models", ""); a.status != 401 {
		t.Errorf("models without a key: %d", a.status)
	}
	if st := s.Stats(); st.Unauthorized != 4 || st.OK != 1 {
		t.Errorf("stats %+v", st)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "\n\r\t\x00\x1f", "日本語", "\xff\xfe", "\u2028\u2029", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q → %s is not a JSON string: %v", s, b, err)
		}
		want, _ := json.Marshal(s)
		var wantS string
		_ = json.Unmarshal(want, &wantS)
		if got != wantS {
			t.Fatalf("%q → %q, want %q", s, got, wantS)
		}
	})
}

// TestEstimatorAgrees checks tokens.Estimator against the simulator's own, independent
// count: both follow OpenAI's formula, so the estimate of every request is exact here.
func TestEstimatorAgrees(t *testing.T) {
	bodies := []struct{ path, body string }{
		{"/v1/chat/completions", chatBody("ask r00001", `,"max_tokens":20`)},
		{"/v1/chat/completions", `{"model":"gpt-4","messages":[{"role":"system","content":"Be brief."},{"role":"user","name":"ann","content":"お誕生日おめでとう"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c","content":"42"}],"tools":[{"type":"function","function":{"name":"f"}}],"n":2,"max_completion_tokens":7}`},
		{"/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"https://example.com/x.png", "detail": "low"}},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`},
		{"/v1/responses", `{"model":"gpt-4.1","input":[{"role":"user","content":[{"type":"input_text","text":"and this?"},{"type":"input_image","image_url":"https://example.com/y.png","detail":"low"}]}]}`},
		{"/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":["one","two three"],"max_tokens":3,"n":2}`},
		{"/v1/embeddings", `{"model":"text-embedding-3-small","input":["hello world",[1,2,3]]}`},
		{"/v1/responses", `{"model":"gpt-4.1","instructions":"Be brief.","input":[{"role":"user","content":"hi"},{"type":"function_call","name":"f","arguments":"{}"},{"type":"function_call_output","output":"ok"}],"max_output_tokens":9}`},
	}
	for _, b := range bodies {
		est, err := tokens.Default().Estimate(&sluice.Request{URL: b.path, Body: json.RawMessage(b.body)})
		if err != nil {
			t.Fatal(err)
		}
		s := New(Config{TPM: 1_000_000})
		s.now = newClock().now
		a := post(t, s, b.path, b.body)
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", b.body, a.status, a.body)
		}
		type rawUsage struct {
			Usage map[string]json.RawMessage `json:"usage"`
		}
		u := decode[rawUsage](t, a).Usage
		prompt := u["prompt_tokens"]
		if prompt == nil {
			prompt = u["input_tokens"]
		}
		if string(prompt) != fmt.Sprint(est.PromptTokens) {
			t.Errorf("%s: the simulator counted %s prompt tokens, the estimator %d", b.body, prompt, est.PromptTokens)
		}
		// What the simulator took from its TPM bucket is the estimate's reserve.
		if used := 1_000_000 - mustInt(t, a.header.Get("X-Ratelimit-Remaining-Tokens")); used != est.Reserve() {
			t.Errorf("%s: the simulator counted %d tokens against TPM, the estimate reserves %d", b.body, used, est.Reserve())
		}
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}
