// Package testutil holds the helpers that the tests of several sluice packages share:
// request lines to write, output lines to read back, files, waiting on a condition, and a
// clock the test drives.
// It is for tests only, and makes no promise of a stable API.
package testutil

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-llm/sluice"
)

// ChatLine is an input line (the Batch API input format) for a chat request on model with
// one user message, content; maxTokens > 0 sets max_tokens.
func ChatLine(id, model, content string, maxTokens int) string {
	body := map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": content}}}
	if maxTokens > 0 {
		body["max_tokens"] = maxTokens
	}
	return RequestLine(id, sluice.EndpointChatCompletions, body)
}

// RequestLine is an input line for a POST of body to url, with custom_id id.
func RequestLine(id, url string, body map[string]any) string {
	b, err := json.Marshal(map[string]any{"custom_id": id, "method": "POST", "url": url, "body": body})
	if err != nil {
		panic(err) // a map of strings, numbers and maps always marshals
	}
	return string(b)
}

// WriteFile writes content to dir/name and returns the file's path; a failure ends the test.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
