package gateway

import (
	"net/http"
	"runtime"
	"testing"
	"unsafe"
	"weak"
)

// TestKeyNotKept authenticates a key without keeping it: once the request is gone, the
// memory of the key it presented can be collected.
func TestKeyNotKept(t *testing.T) {
	const key = "sk-client-key-kept"
	g, err := New(Config{Upstreams: []Upstream{{Name: "u", BaseURL: "http://127.0.0.1:1"}},
		Keys: []Key{{Name: "alice", Hash: HashKey(key)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(t.Context())
	presented := func() weak.Pointer[byte] {
		buf := []byte("Bearer " + key) // the header's own memory, as a server reads it
		r, _ := http.NewRequest(http.MethodPost, "http://g/v1/chat/completions", nil)
		r.Header.Set("Authorization", unsafe.String(&buf[0], len(buf)))
		if k, ok := g.authenticate(r); !ok || k.Name != "alice" {
			t.Fatalf("authenticate: %v, %v", k, ok)
		}
		return weak.Make(&buf[0])
	}()
	for range 3 {
		runtime.GC()
	}
	if presented.Value() != nil {
		t.Fatal("the gateway still holds the key a client presented")
	}
}

// TestKeyHashInvalid refuses a key whose hash is not a hex SHA-256.
func TestKeyHashInvalid(t *testing.T) {
	for _, h := range []string{"", "abc", HashKey("k") + "00", HashKey("k")[:63] + "x"} {
		_, err := New(Config{Upstreams: []Upstream{{Name: "u", BaseURL: "http://127.0.0.1:1"}}, Keys: []Key{{Name: "a", Hash: h}}})
		if err == nil {
			t.Errorf("hash %q: no error", h)
		}
	}
}
