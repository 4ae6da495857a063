package openai

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

func TestDecodeUsage(t *testing.T) {
	tests := []struct {
		name, body string
		want       sluice.Usage
	}{
		{"chat", `{"id":"x","usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29}}`,
			sluice.Usage{PromptTokens: 19, CompletionTokens: 10}},
		{"chat with cache", `{"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":128}}}`,
			sluice.Usage{PromptTokens: 2006, CompletionTokens: 300, CachedTokens: 1920}},
		{"DeepSeek", `{"usage":{"prompt_tokens":64,"completion_tokens":9,"total_tokens":73,"prompt_cache_hit_tokens":48,"prompt_cache_miss_tokens":16}}`,
			sluice.Usage{PromptTokens: 64, CompletionTokens: 9, CachedTokens: 48}},
		{"DeepSeek with both cache fields", `{"usage":{"prompt_tokens":64,"completion_tokens":9,"prompt_cache_hit_tokens":48,"prompt_tokens_details":{"cached_tokens":48}}}`,
			sluice.Usage{PromptTokens: 64, CompletionTokens: 9, CachedTokens: 48}},
		{"embeddings", `{"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}`,
			sluice.Usage{PromptTokens: 8}},
		{"total only", `{"usage":{"total_tokens":8}}`, sluice.Usage{PromptTokens: 8}},
		{"responses", `{"object":"response","output":[{"type":"message","content":[{"type":"output_text","text":"{\"usage\":1}"}]}],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":12},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}`,
			sluice.Usage{PromptTokens: 36, CompletionTokens: 87, CachedTokens: 12}},
		{"floats", `{"usage":{"prompt_tokens":12.0,"completion_tokens":3.6}}`, sluice.Usage{PromptTokens: 12, CompletionTokens: 4}},
		{"negative", `{"usage":{"prompt_tokens":-5,"completion_tokens":2}}`, sluice.Usage{CompletionTokens: 2}},
		{"cached above prompt", `{"usage":{"prompt_tokens":5,"prompt_tokens_details":{"cached_tokens":9}}}`,
			sluice.Usage{PromptTokens: 5, CachedTokens: 5}},
		{"huge", `{"usage":{"prompt_tokens":1e300}}`, sluice.Usage{PromptTokens: maxTokens}},
		{"out of float range", `{"usage":{"prompt_tokens":1e400,"completion_tokens":1}}`, sluice.Usage{CompletionTokens: 1}},
		{"string counts", `{"usage":{"prompt_tokens":"12","completion_tokens":3}}`, sluice.Usage{CompletionTokens: 3}},
		{"usage null", `{"usage":null}`, sluice.Usage{}},
		{"usage wrong type", `{"usage":"lots"}`, sluice.Usage{}},
		{"details null", `{"usage":{"prompt_tokens":1,"prompt_tokens_details":null}}`, sluice.Usage{PromptTokens: 1}},
		{"no usage", `{"id":"x"}`, sluice.Usage{}},
		{"nested usage is not the answer's", `{"data":{"usage":{"prompt_tokens":5}}}`, sluice.Usage{}},
		{"array", `[1,2,3]`, sluice.Usage{}},
		{"string", `"ok"`, sluice.Usage{}},
	}
	for _, tt := range tests {
		got, err := decodeUsage([]byte(tt.body))
		if err != nil {
			t.Errorf("%s: decodeUsage: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: decodeUsage = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	for _, bad := range []string{"", " ", "{", `{"usage":{"prompt_tokens":1}`, "nope", `{"a":1}x`, "\xff"} {
		if _, err := decodeUsage([]byte(bad)); err == nil {
			t.Errorf("decodeUsage(%q) succeeded, want an error", bad)
		}
	}
}

func TestForEachMember(t *testing.T) {
	tests := []struct {
		in   string
		want []string // name=value
	}{
		{`{"usage":{"a":1}}`, []string{`usage={"a":1}`}},
		{` { "id" : "x" , "usage" : { "a" : [1,{"usage":2}] } , "z":null } `, []string{`id="x"`, `usage={ "a" : [1,{"usage":2}] }`, `z=null`}},
		{`{"usage":1,"usage":2}`, []string{`usage=1`, `usage=2`}},
		{`{"a":"\"usage\":3","b":"}{]["}`, []string{`a="\"usage\":3"`, `b="}{]["`}},
		{`{"a\\\\":"usage","b":5}`, []string{`a\\="usage"`, `b=5`}},
		{`{"us\u0061ge":6}`, []string{`usage=6`}},
		{`{"x":"\\"}`, []string{`x="\\"`}},
		{`{}`, nil},
		{`["a",1]`, nil},
		{`"a"`, nil},
		{`12`, nil},
	}
	for _, tt := range tests {
		var got []string
		forEachMember([]byte(tt.in), func(k, v []byte) { got = append(got, string(k)+"="+string(v)) })
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("forEachMember(%s) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// referenceUsage reads a body's usage the slow, obvious way, with the same rules as
// decodeUsage: names matched exactly, the last of repeated members wins, a member that
// is not a number (or not an object, for the details) counts as absent.
func referenceUsage(body []byte) usageFields {
	members := func(raw json.RawMessage) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		_ = json.Unmarshal(raw, &m)
		return m
	}
	num := func(raw json.RawMessage) float64 {
		var f float64
		if json.Unmarshal(raw, &f) != nil {
			return 0
		}
		return f
	}
	u := members(members(body)["usage"])
	return usageFields{
		PromptTokens:         num(u["prompt_tokens"]),
		CompletionTokens:     num(u["completion_tokens"]),
		TotalTokens:          num(u["total_tokens"]),
		PromptCachedTokens:   num(members(u["prompt_tokens_details"])["cached_tokens"]),
		PromptCacheHitTokens: num(u["prompt_cache_hit_tokens"]),
		InputTokens:          num(u["input_tokens"]),
		OutputTokens:         num(u["output_tokens"]),
		InputCachedTokens:    num(members(u["input_tokens_details"])["cached_tokens"]),
	}
}

// FuzzDecodeUsage checks decodeUsage against referenceUsage and json.Valid.
func FuzzDecodeUsage(f *testing.F) {
	for _, s := range []string{
		`{"usage":{"prompt_tokens":1,"completion_tokens":2}}`, `{"a":"\\\"","usage":{"input_tokens":3}}`,
		`[{"usage":1}]`, `{"usage":null}`, `{"usage":{"prompt_tokens":"x"},"usage":{"completion_tokens":2}}`,
		`{"x":[{"usage":{}}]}`, `{`, `{"usage":{"prompt_tokens_details":{"cached_tokens":3},"prompt_tokens":9}}`,
		`{"us\u0061ge":{"prompt_tokens":1e400,"total_tokens":5}}`,
		`{"error":{"code":502},"choices":[]}`, `{"error":"x","data":[1],"data":[]}`, `{"error":null,"output":[{}]}`,
		`{"\u0065rror":[ ]}`, `{"error":" "}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeUsage(body)
		if (err != nil) != !json.Valid(body) {
			t.Fatalf("decodeUsage(%q) error = %v, but json.Valid = %v", body, err, json.Valid(body))
		}
		if err != nil {
			return
		}
		ref := referenceUsage(body)
		if want := ref.usage(); got != want {
			t.Fatalf("decodeUsage(%q) = %+v, want %+v", body, got, want)
		}
		if _, errValue, _ := decodeAnswer(body); (errValue != nil) != referenceErrorAnswer(body) {
			t.Fatalf("decodeAnswer(%q) error member %q, want an error answer: %v", body, errValue, referenceErrorAnswer(body))
		}
	})
}

// referenceErrorAnswer is decodeAnswer's verdict on whether a valid JSON body is an error
// object, by encoding/json: a non-empty "error" member and no non-empty choices, data or
// output array.
func referenceErrorAnswer(body []byte) bool {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	nonEmpty := func(v any) bool {
		switch v := v.(type) {
		case map[string]any:
			return len(v) > 0
		case []any:
			return len(v) > 0
		case string:
			return v != ""
		}
		return false
	}
	for _, k := range []string{"choices", "data", "output"} {
		if a, ok := m[k].([]any); ok && len(a) > 0 {
			return false
		}
	}
	return nonEmpty(m["error"])
}
