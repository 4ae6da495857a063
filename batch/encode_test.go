package batch

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/sluice-llm/sluice"
)

// FuzzEncodeLine checks that a part's input line is valid JSON that reads back as the
// request it was made from, whatever its custom_id and body.
func FuzzEncodeLine(f *testing.F) {
	f.Add("req-1", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	f.Add("quote\"back\\slash\nnewline\u2028", "/v1/embeddings", `{"model":"m","input":["a","b"]}`)
	f.Add("", "/v1/responses", `{}`)
	f.Fuzz(func(t *testing.T, id, url, body string) {
		if !json.Valid([]byte(body)) {
			t.Skip() // bodies in the ledger are valid JSON: ingest checked them
		}
		it := &sluice.Item{Line: 1, Request: sluice.Request{CustomID: id, Method: "POST", URL: url, Body: json.RawMessage(body)}}
		line := encodeLine(nil, it)
		if len(line) == 0 || line[len(line)-1] != '\n' {
			t.Fatalf("line %q does not end with a newline", line)
		}
		var got struct {
			CustomID string          `json:"custom_id"`
			Method   string          `json:"method"`
			URL      string          `json:"url"`
			Body     json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if got.CustomID != toValidUTF8(id) || got.Method != "POST" || got.URL != toValidUTF8(url) || compact(got.Body) != compact([]byte(body)) {
			t.Fatalf("line %q read back as %+v", line, got)
		}
	})
}

func compact(b []byte) string {
	var buf bytes.Buffer
	_ = json.Compact(&buf, b)
	return buf.String()
}

// toValidUTF8 is s as encoding/json writes it: invalid bytes replaced.
func toValidUTF8(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}
