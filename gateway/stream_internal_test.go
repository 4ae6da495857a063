package gateway

import "testing"

// BenchmarkHasContent measures what a stream's first events cost the gateway now that
// each is read for content: OpenAI's role-only first chunk, then a content chunk.
func BenchmarkHasContent(b *testing.B) {
	role := []byte("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]}\n\n")
	content := []byte("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n")
	b.ReportAllocs()
	for b.Loop() {
		if hasContent(role) || !hasContent(content) {
			b.Fatal("wrong answer")
		}
	}
}

// TestHasContent tells the events a stream opens with from those that say something.
func TestHasContent(t *testing.T) {
	for _, tc := range []struct {
		ev   string
		want bool
	}{
		{": keep-alive\n\n", false},
		{"event: ping\n\n", false},
		{`data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}` + "\n\n", false},
		{`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[]},"finish_reason":null,"content_filter_results":{}}]}` + "\r\n\r\n", false},
		{`data: {"prompt_filter_results":[{"prompt_index":0}],"choices":[]}` + "\n\n", false},
		{`data: {"choices":[{"index":0,"text":"","finish_reason":null}]}` + "\n\n", false},
		{"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{}}\n\n", false},
		{`data: {"choices":[{"index":0,"delta":{"content":"a"}}]}` + "\n\n", true},
		{`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]}` + "\n\n", true},
		{`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n", true},
		{`data: {"choices":[],"usage":{"prompt_tokens":1}}` + "\n\n", true},
		{`data: {"error":{"message":"no"}}` + "\n\n", true},
		{"data: [DONE]\n\n", true},
		{"data: {\"a\":\ndata: 1}\n\n", true},
		{"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\n", true},
	} {
		if got := hasContent([]byte(tc.ev)); got != tc.want {
			t.Errorf("hasContent(%q) = %v, want %v", tc.ev, got, tc.want)
		}
	}
}
