package tokens_test

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/tokens"
)

// validBodies are bodies of every endpoint and of unusual shapes, on which EstimateValid
// must agree with Estimate.
var validBodies = []struct{ url, body string }{
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say \"hi\"\n"}],"max_tokens":200,"temperature":0.2}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","name":"ann","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"https://e.x/a.png","detail":"low"}},{"type":"image_url","image_url":"https://e.x/b.png"}]}],"n":3,"max_completion_tokens":50}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"functions":null}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":"héllo wörld, 日本語のテキスト 🙂"},null,{"role":"us\u0065r","content":"\u00e9\ud83d\ude42"}]}`},
	{sluice.EndpointChatCompletions, ` { "model" : "gpt-4o" , "messages" : [ { "role" : "user" , "content" : "spaced" } ] , "max_tokens" : -5 } `},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":null}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o"}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":{}}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":1,"content":"x"}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":7}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":5}]}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":["x"]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","Role":"system","content":"x"}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":"a","content":"bbbb bbbb"}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":"a"}],"messages":[{"role":"system"}]}`},
	{sluice.EndpointChatCompletions, `{"Model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`},
	{sluice.EndpointChatCompletions, `{"mod\u0065l":"gpt-4o","messages":[{"role":"user","content":"x"}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":1.5}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":1e3}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":99999999999999999999}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":"10"}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":null,"n":null}`},
	{sluice.EndpointChatCompletions, `{"model":null,"messages":[{"role":"user","content":"x"}]}`},
	{sluice.EndpointChatCompletions, `{"model":42}`},
	{sluice.EndpointChatCompletions, `[]`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":"Once upon a time","best_of":3,"n":2}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":["a b c","d e"],"max_tokens":20}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":[[1,2,3],[4]]}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":[1,2,3]}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct"}`},
	{sluice.EndpointEmbeddings, `{"model":"text-embedding-3-small","input":["first","second, longer"]}`},
	{sluice.EndpointEmbeddings, `{"model":"text-embedding-3-small","input":"ünïcödé ✓"}`},
	{sluice.EndpointEmbeddings, `{"model":"text-embedding-3-small","input":{}}`},
	{sluice.EndpointResponses, `{"model":"gpt-4o-mini","instructions":"Be brief.","input":"Write a haiku.","max_output_tokens":100}`},
	{sluice.EndpointResponses, `{"model":"gpt-4o-mini","instructions":null,"input":[{"role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"https://e.x/a.png","detail":"low"}]},{"type":"function_call","name":"f","arguments":"{\"a\":1}"},{"type":"function_call_output","output":"ok"}],"tools":[{"type":"web_search"}]}`},
	{sluice.EndpointResponses, `{"model":"gpt-4o-mini","instructions":7,"input":"x"}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":[null,{"type":"text","text":"a\tb \u00e9"},{"type":"image_url","image_url":null},{"type":"image_url","image_url":{"detail":null,"url":"x"}}]}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"Detail":"low"}}]}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"detail":"high","detail":"low"}}]}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"detail":1}}]}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b c d"}]}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":[{"TYPE":"text","text":"a"}]}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":["text"]}]}`},
	{sluice.EndpointChatCompletions, `{"model":"gpt-4o","messages":[{"role":"user","content":[]}]}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":[1,null,3]}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":[1,2.5]}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":[1,"a"]}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":[[1,2],[3,true]]}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":[[1,2],"x y",[]]}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":["x",{}]}`},
	{sluice.EndpointCompletions, `{"model":"gpt-3.5-turbo-instruct","prompt":[]}`},
	{sluice.EndpointEmbeddings, `{"model":"text-embedding-3-small","input":[[1,2,3],[99999999999999999999]]}`},
	{sluice.EndpointResponses, `{"model":"gpt-4o-mini","input":[null,"x"]}`},
	{sluice.EndpointResponses, `{"model":"gpt-4o-mini","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"caf\u00e9"}]},{"type":"reasoning","summary":[]}]}`},
	{sluice.EndpointResponses, `{"model":"gpt-4o-mini","input":[{"type":"function_call_output","output":[{"type":"output_text","text":"done"}]}]}`},
	{"/v1/unknown", `{"model":"gpt-4o-mini"}`},
}

// TestEstimateValid checks that EstimateValid returns what Estimate does, estimate and
// error, on bodies of every endpoint and of unusual shapes.
func TestEstimateValid(t *testing.T) {
	for _, tc := range validBodies {
		checkEstimateValid(t, tc.url, []byte(tc.body))
	}
}

func checkEstimateValid(t *testing.T, url string, body []byte) {
	t.Helper()
	e := tokens.Default()
	req := sluice.Request{Method: "POST", URL: url, Body: body}
	want, wantErr := e.Estimate(&req)
	got, gotErr := e.EstimateValid(&req)
	if got != want || errString(gotErr) != errString(wantErr) {
		t.Errorf("%s %s:\nEstimateValid = %+v, %v\nEstimate      = %+v, %v", url, body, got, gotErr, want, wantErr)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzEstimateValid checks that EstimateValid agrees with Estimate on any valid JSON body.
func FuzzEstimateValid(f *testing.F) {
	for _, tc := range validBodies {
		f.Add(tc.url, tc.body)
	}
	f.Fuzz(func(t *testing.T, url, body string) {
		if !json.Valid([]byte(body)) || !utf8.ValidString(body) {
			return
		}
		checkEstimateValid(t, url, []byte(body))
	})
}
