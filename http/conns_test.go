package http_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	sluicehttp "github.com/sluice-llm/sluice/http"
	"github.com/sluice-llm/sluice/sim"
)

// serveLimited serves h under l on a loopback listener until the test ends, and returns
// its address.
func serveLimited(t *testing.T, h http.Handler, l sluicehttp.Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := sluicehttp.NewHTTPServer(h, l, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(sluicehttp.Listen(ln, l))
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return ln.Addr().String()
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

// dialFrom connects to addr from the loopback address from (127.0.0.x).
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// get sends a GET on c and returns the response's status code.
func get(t *testing.T, c net.Conn, br *bufio.Reader) int {
	t.Helper()
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestListenCapsConnections: past the caps, overall and per address, a connection is
// answered 503; a closed connection frees its place.
func TestListenCapsConnections(t *testing.T) {
	addr := serveLimited(t, okHandler, sluicehttp.Limits{MaxConns: 3, MaxConnsPerIP: 2})
	var held []net.Conn
	for range 2 {
		c := dialFrom(t, "127.0.0.1", addr)
		if code := get(t, c, bufio.NewReader(c)); code != http.StatusOK {
			t.Fatalf("connection within the caps: %d", code)
		}
		held = append(held, c)
	}
	c := dialFrom(t, "127.0.0.1", addr)
	if code := get(t, c, bufio.NewReader(c)); code != http.StatusServiceUnavailable {
		t.Errorf("a third connection from one address: %d, want 503", code)
	}
	other := dialFrom(t, "127.0.0.2", addr)
	if code := get(t, other, bufio.NewReader(other)); code != http.StatusOK {
		t.Errorf("a connection from another address: %d, want 200", code)
	}
	c = dialFrom(t, "127.0.0.3", addr)
	if code := get(t, c, bufio.NewReader(c)); code != http.StatusServiceUnavailable {
		t.Errorf("a fourth connection in all: %d, want 503", code)
	}
	// The server frees the place once it sees the connection closed: try until then.
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dialFrom(t, "127.0.0.1", addr)
		code := get(t, c, bufio.NewReader(c))
		c.Close()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection never freed its place")
		}
	}
}

// TestIdleConnectionsAreClosed: a connection that sends nothing, or nothing more after a
// request, is closed.
func TestIdleConnectionsAreClosed(t *testing.T) {
	addr := serveLimited(t, okHandler, sluicehttp.Limits{ReadHeaderTimeout: 50 * time.Millisecond, IdleTimeout: 50 * time.Millisecond})
	silent := dialFrom(t, "127.0.0.1", addr)
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("a silent connection: read %v, want EOF (closed by the server)", err)
	}
	idle := dialFrom(t, "127.0.0.1", addr)
	br := bufio.NewReader(idle)
	if code := get(t, idle, br); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("an idle kept-alive connection: read %v, want EOF", err)
	}
}

// TestSlowUploadIsCut: an upload that stalls (slowloris with a key) is answered 408 and
// its connection closed, once the grace is over.
func TestSlowUploadIsCut(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.start()
	addr := serveLimited(t, h.srv.Handler(), sluicehttp.Limits{MinRate: 1 << 20, RateGrace: 50 * time.Millisecond})
	c := dialFrom(t, "127.0.0.1", addr)
	fmt.Fprintf(c, "POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 10000000\r\n\r\n"+
		"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\r\n{", keyA)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "request_timeout") {
		t.Errorf("stalled upload: %d %s", resp.StatusCode, body)
	}
}

// TestSlowDownloadIsCut: a client that stops reading a response is cut off once the
// grace is over.
func TestSlowDownloadIsCut(t *testing.T) {
	writeErr := make(chan error, 1)
	big := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		chunk := make([]byte, 1<<20)
		for range 1024 {
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	})
	addr := serveLimited(t, big, sluicehttp.Limits{MinRate: 64 << 20, RateGrace: 50 * time.Millisecond})
	c := dialFrom(t, "127.0.0.1", addr)
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-writeErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("writing to a client that reads nothing: %v, want a deadline error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a client that reads nothing holds the response")
	}
}

// TestTricklingUploadIsCut: an upload that trickles a byte at a time, far below the
// minimum rate (slowloris), is cut off soon after the grace, though each read makes
// progress.
func TestTricklingUploadIsCut(t *testing.T) {
	readErr := make(chan error, 1)
	h := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		readErr <- err
	})
	addr := serveLimited(t, h, sluicehttp.Limits{MinRate: 1 << 20, RateGrace: 50 * time.Millisecond})
	c := dialFrom(t, "127.0.0.1", addr)
	if _, err := io.WriteString(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := io.WriteString(c, "x"); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("reading a trickling upload: %v, want a deadline error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a trickling upload is never cut")
	}
}
