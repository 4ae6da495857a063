package tokens_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/tokens"
)

func estimate(url, body string) (sluice.Estimate, error) {
	return tokens.Default().Estimate(&sluice.Request{Method: "POST", URL: url, Body: json.RawMessage(body)})
}

// cookbookMessages is the example of OpenAI's cookbook "How to count tokens with
// tiktoken", which the API bills 129 prompt tokens on gpt-3.5-turbo and gpt-4, 124 on
// gpt-4o and gpt-4o-mini.
const cookbookMessages = `[
 {"role":"system","content":"You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
 {"role":"system","name":"example_user","content":"New synergies will help drive top-line growth."},
 {"role":"system","name":"example_assistant","content":"Things working well together will increase revenue."},
 {"role":"system","name":"example_user","content":"Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
 {"role":"system","name":"example_assistant","content":"Let's talk later when we're less busy about how to do better."},
 {"role":"user","content":"This late pivot means we don't have time to boil the ocean for the client deliverable."}]`

const tools = `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`

func TestEstimate(t *testing.T) {
	t.Parallel()
	const (
		chat   = sluice.EndpointChatCompletions
		compl  = sluice.EndpointCompletions
		embed  = sluice.EndpointEmbeddings
		respns = sluice.EndpointResponses
	)
	// "hello world" is 2 tokens, "You are concise." 4, "user" and "system" 1 each; a
	// message costs 3 more and the reply 3: one user "hello world" message is 3+1+2+3 = 9.
	tests := []struct {
		name, url, body string
		prompt, output  int64
	}{
		{"chat one message", chat, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}]}`, 9, 0},
		{"chat two messages", chat, `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are concise."},{"role":"user","content":"hello world"}],"max_tokens":64}`, 17, 64},
		{"chat cl100k", chat, `{"model":"gpt-4","messages":[{"role":"user","content":"お誕生日おめでとう"}]}`, 3 + 1 + 9 + 3, 0},
		{"chat o200k", chat, `{"model":"gpt-4o","messages":[{"role":"user","content":"お誕生日おめでとう"}]}`, 3 + 1 + 8 + 3, 0},
		{"chat escaped", chat, `{"model":"gpt-4o","messages":[{"role":"user","content":"hello\u0020world"}]}`, 9, 0},
		{"chat name", chat, `{"model":"gpt-4o","messages":[{"role":"user","name":"hello","content":"hello world"}]}`, 9 + 1 + 1, 0},
		{"chat cookbook gpt-4", chat, `{"model":"gpt-4","messages":` + cookbookMessages + `}`, 129, 0},
		{"chat cookbook gpt-3.5-turbo", chat, `{"model":"gpt-3.5-turbo-0613","messages":` + cookbookMessages + `}`, 129, 0},
		{"chat cookbook gpt-4o-mini", chat, `{"model":"gpt-4o-mini","messages":` + cookbookMessages + `}`, 124, 0},
		{"chat text parts", chat, `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"hello"},{"type":"text","text":" world"}]}]}`, 3 + 1 + 1 + 1 + 3, 0},
		{"chat image", chat, `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"hello world"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`, 9 + tokens.ImageTokens, 0},
		{"chat low-detail image", chat, `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}}]}]}`, 3 + 1 + tokens.ImageTokensLow + 3, 0},
		{"chat audio counts nothing", chat, `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}`, 3 + 1 + 3, 0},
		{"chat null content", chat, `{"model":"gpt-4o","messages":[{"role":"user","content":null}]}`, 3 + 1 + 3, 0},
		{"chat empty messages", chat, `{"model":"gpt-4o","messages":[]}`, 3, 0},
		{"chat tools", chat, `{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}],"tools":` + tools + `}`, 9 + int64(o200k.Count(tools)), 0},
		{"chat tool call and result", chat, `{"model":"gpt-4o","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"hello world"}]}`,
			3 + 1 + int64(o200k.Count(`[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]`)) + 3 + 1 + int64(o200k.Count("c1")) + 2 + 3, 0},
		{"chat max_completion_tokens wins", chat, `{"model":"gpt-4o","messages":[],"max_tokens":20,"max_completion_tokens":50}`, 3, 50},
		{"chat n multiplies", chat, `{"model":"gpt-4o","messages":[],"max_tokens":20,"n":3}`, 3, 60},
		{"chat bound saturates", chat, `{"model":"gpt-4o","messages":[],"max_tokens":9223372036854775807,"n":2}`, 3, math.MaxInt64},
		{"chat unknown fields", chat, `{"model":"gpt-4o","temperature":0.2,"metadata":{"a":[1,{"b":null}]},"messages":[],"max_tokens":5}`, 3, 5},
		{"completions string", compl, `{"model":"gpt-3.5-turbo-instruct","prompt":"hello world","max_tokens":7}`, 2, 7},
		{"completions default bound", compl, `{"model":"gpt-3.5-turbo-instruct","prompt":"hello world"}`, 2, tokens.DefaultCompletionsMaxTokens},
		{"completions strings", compl, `{"model":"gpt-3.5-turbo-instruct","prompt":["hello world","2 + 2 = 4"],"max_tokens":10,"n":2}`, 9, 40},
		{"completions best_of", compl, `{"model":"gpt-3.5-turbo-instruct","prompt":"hello world","max_tokens":10,"best_of":3}`, 2, 30},
		{"completions token ids", compl, `{"model":"davinci-002","prompt":[15339,1917,0]}`, 3, 16},
		{"completions token arrays", compl, `{"model":"davinci-002","prompt":[[15339,1917],[0]],"max_tokens":1}`, 3, 2},
		{"embeddings string", embed, `{"model":"text-embedding-3-small","input":"hello world"}`, 2, 0},
		{"embeddings strings", embed, `{"model":"text-embedding-3-small","input":["hello world","tiktoken is great!"],"max_tokens":9}`, 8, 0},
		{"embeddings token ids", embed, `{"model":"text-embedding-3-small","input":[1,2,3]}`, 3, 0},
		{"embeddings token arrays", embed, `{"model":"text-embedding-3-small","input":[[1],[2,3],[]]}`, 3, 0},
		{"embeddings empty", embed, `{"model":"text-embedding-3-small","input":[]}`, 0, 0},
		{"responses string", respns, `{"model":"gpt-4.1","input":"hello world","max_output_tokens":100}`, 9, 100},
		{"responses instructions", respns, `{"model":"gpt-4.1","instructions":"You are concise.","input":"hello world"}`, 17, 0},
		{"responses items", respns, `{"model":"gpt-4.1","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hello world"},{"type":"input_image","image_url":"https://example.com/a.png","detail":"low"}]}]}`, 9 + tokens.ImageTokensLow, 0},
		{"responses function call", respns, `{"model":"gpt-4.1","input":[{"role":"user","content":"hello world"},{"type":"function_call","call_id":"c","name":"hello","arguments":"hello world"},{"type":"function_call_output","call_id":"c","output":"hello world"},{"type":"reasoning","id":"r"}]}`, 9 + 3 + 1 + 2 + 3 + 2, 0},
		{"responses no input", respns, `{"model":"gpt-4.1","previous_response_id":"resp_1"}`, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := estimate(tt.url, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			var b struct{ Model string }
			_ = json.Unmarshal([]byte(tt.body), &b)
			want := sluice.Estimate{Model: b.Model, PromptTokens: tt.prompt, MaxOutputTokens: tt.output}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("estimate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEstimateErrors(t *testing.T) {
	t.Parallel()
	const chat = sluice.EndpointChatCompletions
	tests := []struct {
		name, url, body, want string
	}{
		{"empty body", chat, ``, "missing"},
		{"not JSON", chat, `{"model":`, "invalid JSON"},
		{"not an object", chat, `[1,2]`, "want an object, got array"},
		{"no model", chat, `{"messages":[]}`, "model: missing"},
		{"empty model", chat, `{"model":"","messages":[]}`, "model: missing"},
		{"model not a string", chat, `{"model":4,"messages":[]}`, "model: want a string, got number"},
		{"no messages", chat, `{"model":"gpt-4o"}`, "messages: missing"},
		{"messages an object", chat, `{"model":"gpt-4o","messages":{"role":"user"}}`, "messages: want an array, got object"},
		{"message a string", chat, `{"model":"gpt-4o","messages":["hi"]}`, "messages: want an object, got string"},
		{"content a number", chat, `{"model":"gpt-4o","messages":[{"role":"user","content":"a"},{"role":"user","content":7}]}`, "messages[1].content: want a string or an array"},
		{"part not an object", chat, `{"model":"gpt-4o","messages":[{"role":"user","content":[7]}]}`, "messages[0].content: want an object, got number"},
		{"max_tokens a string", chat, `{"model":"gpt-4o","messages":[],"max_tokens":"20"}`, "max_tokens: want an integer, got string"},
		{"max_tokens a fraction", chat, `{"model":"gpt-4o","messages":[],"max_tokens":2.5}`, "max_tokens: want an integer"},
		{"n a string", chat, `{"model":"gpt-4o","messages":[],"n":"2"}`, "n: want an integer"},
		{"no prompt", sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct"}`, "prompt: missing"},
		{"prompt an object", sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":{}}`, "prompt: want a string or an array"},
		{"prompt mixed", sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":["a",1]}`, "prompt: [1]: want a string or an array of token ids"},
		{"prompt token not int", sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":[1,"a"]}`, "prompt: want an array of strings, of token ids"},
		{"no input", sluice.EndpointEmbeddings, `{"model":"text-embedding-3-small"}`, "input: missing"},
		{"input a number", sluice.EndpointEmbeddings, `{"model":"text-embedding-3-small","input":3}`, "input: want a string or an array"},
		{"input nested badly", sluice.EndpointEmbeddings, `{"model":"text-embedding-3-small","input":[[1,[2]]]}`, "input: [0]: want an array of token ids"},
		{"responses input a number", sluice.EndpointResponses, `{"model":"gpt-4.1","input":1}`, "input: want a string or an array"},
		{"responses item content", sluice.EndpointResponses, `{"model":"gpt-4.1","input":[{"role":"user","content":true}]}`, "input[0].content: want a string or an array"},
		{"responses instructions", sluice.EndpointResponses, `{"model":"gpt-4.1","instructions":[]}`, "instructions: want a string, got array"},
		{"unknown endpoint", "/v1/images/generations", `{"model":"dall-e-3"}`, `url: unsupported endpoint "/v1/images/generations"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := estimate(tt.url, tt.body)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestEstimateConcurrent estimates the same bodies from many goroutines (run it with
// -race) and checks every answer against a serial one.
func TestEstimateConcurrent(t *testing.T) {
	t.Parallel()
	var reqs []sluice.Request
	for i := range 20 {
		model := []string{"gpt-4o-mini", "gpt-4", "text-embedding-3-small"}[i%3]
		url := sluice.EndpointChatCompletions
		body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"system","content":%q},{"role":"user","content":"question %d"}],"max_tokens":%d}`,
			model, strings.Repeat("Be brief. ", 10*i), i, i)
		if i%3 == 2 {
			url = sluice.EndpointEmbeddings
			body = fmt.Sprintf(`{"model":%q,"input":["question %d", %q]}`, model, i, strings.Repeat("long text ", 50))
		}
		reqs = append(reqs, sluice.Request{URL: url, Body: json.RawMessage(body)})
	}
	want := make([]sluice.Estimate, len(reqs))
	for i := range reqs {
		var err error
		if want[i], err = tokens.Default().Estimate(&reqs[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			var est tokens.Estimator // the zero Estimator works as well as Default
			for i := range 100 {
				k := (g*7 + i) % len(reqs)
				got, err := est.Estimate(&reqs[k])
				if err != nil || got != want[k] {
					t.Errorf("request %d: %+v, %v; want %+v", k, got, err, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkEstimate measures ingest's per-line cost: short chat requests (the target is
// more than 100,000 per second per core), one with a long system prompt repeated on every
// line, and an embeddings request.
func BenchmarkEstimate(b *testing.B) {
	long := strings.Repeat("You are a careful assistant that answers in one short paragraph and cites the key facts. ", 20)
	benches := []struct{ name, url, body string }{
		{"chat-short", sluice.EndpointChatCompletions, `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are concise."},{"role":"user","content":"ask b0000001 Please answer briefly."}],"max_tokens":64}`},
		{"chat-long-system", sluice.EndpointChatCompletions, `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"` + long + `"},{"role":"user","content":"ask b0000001 Please answer briefly."}],"max_tokens":64}`},
		{"embeddings", sluice.EndpointEmbeddings, `{"model":"text-embedding-3-small","input":"Summarise the plot of Hamlet in one sentence."}`},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			req := &sluice.Request{URL: bb.url, Body: json.RawMessage(bb.body)}
			est := tokens.Default()
			if _, err := est.Estimate(req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := est.Estimate(req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// FuzzEstimate checks that no body, however malformed, panics the estimator, and that an
// estimate is never negative.
func FuzzEstimate(f *testing.F) {
	seeds := []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}],"max_tokens":5}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"detail":"low"}}]}]}`,
		`{"model":"gpt-4","prompt":[[1,2],[3]],"n":2}`,
		`{"model":"text-embedding-3-small","input":["a","\ud83d\ude00"]}`,
		`{"model":"gpt-4.1","input":[{"type":"function_call_output","output":[{"type":"input_text","text":"x"}]}],"instructions":"be"}`,
		`{"model":"x","messages":[{"content":"\xff\xfe"}],"max_tokens":-3}`,
		`{"model":"x","prompt":""}`, `null`, `[]`, `"`, ``,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, endpoint uint8, body []byte) {
		req := &sluice.Request{URL: sluice.Endpoints[int(endpoint)%len(sluice.Endpoints)], Body: body}
		est, err := tokens.Default().Estimate(req)
		if err != nil {
			return
		}
		if est.PromptTokens < 0 || est.MaxOutputTokens < 0 {
			t.Fatalf("negative estimate %+v for %q", est, body)
		}
	})
}
