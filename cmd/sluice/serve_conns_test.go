package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sluicehttp "github.com/sluice-llm/sluice/http"
)

// TestServeCapsConnectionsPerAddress: by default, serve answers 503 to a client address
// past its share of connections, instead of running out of descriptors for everyone.
func TestServeCapsConnectionsPerAddress(t *testing.T) {
	s := startServe(t, "sk-one", "--store", filepath.Join(t.TempDir(), "s.db"))
	addr := strings.TrimPrefix(s.base, "http://")
	status := func(c net.Conn) int {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range sluicehttp.DefaultMaxConnsPerIP + 1 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		code := status(c)
		if i < sluicehttp.DefaultMaxConnsPerIP && code != http.StatusOK {
			t.Fatalf("connection %d: status %d", i+1, code)
		}
		if i == sluicehttp.DefaultMaxConnsPerIP && code != http.StatusServiceUnavailable {
			t.Errorf("connection %d from one address: status %d, want 503", i+1, code)
		}
	}
}
