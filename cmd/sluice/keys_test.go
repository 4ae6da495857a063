package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/service"
)

func TestParseKeyEntry(t *testing.T) {
	tests := []struct {
		name, entry, wantName, wantKey string
		wantErr                        bool
	}{
		{"bare key", "sk-plain", "", "sk-plain", false},
		{"named key", "alice=sk-alice", "alice", "sk-alice", false},
		{"base64 padding", "c2stc2VjcmV0LWtleTEyMw==", "", "c2stc2VjcmV0LWtleTEyMw==", false},
		{"named base64 key", "alice=c2stc2VjcmV0LWtleTEyMw==", "alice", "c2stc2VjcmV0LWtleTEyMw==", false},
		{"named key with one pad", "bob=YWJjZGU=", "bob", "YWJjZGU=", false},
		{"escaped key with =", "=abc=def", "", "abc=def", false},
		{"escaped one pad", "=YWJjZGU=", "", "YWJjZGU=", false},
		{"text before = is no name", "sk+x/y=abc", "", "sk+x/y=abc", false},
		{"name too long", strings.Repeat("a", 65) + "=k", "", strings.Repeat("a", 65) + "=k", false},
		{"spaces around", "carol = sk-c", "carol", "sk-c", false},
		{"named empty key", "alice=", "", "", true},
		{"one pad is ambiguous", "YWJjZGU=", "", "", true},
		{"only =", "=", "", "", true},
	}
	for _, tt := range tests {
		name, key, err := parseKeyEntry(tt.entry)
		if (err != nil) != tt.wantErr || name != tt.wantName || key != tt.wantKey {
			t.Errorf("%s: parseKeyEntry(%q) = %q, %q, %v; want %q, %q, error %v", tt.name, tt.entry, name, key, err, tt.wantName, tt.wantKey, tt.wantErr)
		}
	}
}

func FuzzParseKeyEntry(f *testing.F) {
	for _, s := range []string{"sk-a", "alice=sk-a", "c2stc2VjcmV0LWtleTEyMw==", "=a=b", "a=", "=", "a==", "x y=z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return
		}
		name, key, err := parseKeyEntry(entry)
		switch {
		case err != nil:
			if name != "" || key != "" || len(entry) > 3 && strings.Contains(err.Error(), entry[:len(entry)-1]) {
				t.Fatalf("%q: %q, %q, %v", entry, name, key, err)
			}
			return
		case key == "":
			t.Fatalf("%q: an empty key", entry)
		case name == "" && key != entry && key != strings.TrimSpace(strings.TrimPrefix(entry, "=")):
			t.Fatalf("%q: unnamed key %q is not the entry", entry, key)
		case name != "" && (!isKeyName(name) || strings.HasPrefix(key, "=") || !strings.HasSuffix(entry, key) || !strings.HasPrefix(entry, name)):
			t.Fatalf("%q: name %q, key %q", entry, name, key)
		}
		// Every key can be written unnamed with a leading '='.
		if n, k, err := parseKeyEntry("=" + key); err != nil || n != "" || k != strings.TrimSpace(key) {
			t.Fatalf("=%q: %q, %q, %v", key, n, k, err)
		}
	})
}

// TestServeKeyWithBase64Padding: a key ending in "==" is the key, not a name and the key
// "=", and its text is shown nowhere.
func TestServeKeyWithBase64Padding(t *testing.T) {
	const secret = "c2stc2VjcmV0LWtleTEyMw=="
	s := startServe(t, secret+",bob=sk-bob", "--store", filepath.Join(t.TempDir(), "s.db"))
	get := func(key, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("=", "/v1/files"); code != http.StatusUnauthorized {
		t.Errorf("Bearer = : status %d, want 401", code)
	}
	if code, body := get(secret, "/v1/files"); code != http.StatusOK {
		t.Errorf("the whole key: status %d: %s", code, body)
	}
	code, body := get(secret, "/v1/usage")
	if code != http.StatusOK || strings.Contains(body, secret[:8]) || !strings.Contains(body, "key-"+service.HashKey(secret)[:8]) {
		t.Errorf("usage: status %d: %s", code, body)
	}
	if strings.Contains(s.log.String(), secret[:8]) {
		t.Errorf("the log shows the key: %s", s.log.String())
	}
}
