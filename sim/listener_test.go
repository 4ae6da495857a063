package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestListener serves the simulator on a loopback port: answers, streams, resets, and
// hangs released by Close.
func TestListener(t *testing.T) {
	l, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !strings.HasPrefix(l.URL, "http://127.0.0.1:") || !strings.HasSuffix(l.URL, "/v1") {
		t.Fatalf("URL %q", l.URL)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	postURL := func(body string) answer {
		req, _ := http.NewRequest(http.MethodPost, l.URL+"/chat/completions", strings.NewReader(body))
		return do(client, req)
	}
	a := postURL(chatBody("over the wire", ""))
	if a.err != nil || a.status != 200 || !strings.Contains(string(a.body), `"content":"over the wire`) || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%+v %s", a, a.body)
	}
	a = postURL(chatBody("streamed", `,"stream":true,"stream_options":{"include_usage":true}`))
	if ev := sse(t, a.body); a.err != nil || len(ev) < 4 || ev[len(ev)-1] != "[DONE]" {
		t.Fatalf("stream: %v %q", a.err, ev)
	}
	if st := l.Stats(); st.OK != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestListenerReset(t *testing.T) {
	l, err := Start(Config{Reset: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, l.URL+"/chat/completions", strings.NewReader(chatBody("x", "")))
	if a := do(client, req); a.err == nil {
		t.Fatalf("got an answer %d through a reset", a.status)
	}
	if st := l.Stats(); st.Resets != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestListenerHang(t *testing.T) {
	l, err := Start(Config{Hang: 1})
	if err != nil {
		t.Fatal(err)
	}
	hung := make(chan struct{}, 2)
	l.onHang = func() { hung <- struct{}{} }
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	// The client gives up.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan answer)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, l.URL+"/chat/completions", strings.NewReader(chatBody("x", "")))
		done <- do(client, req)
	}()
	<-hung
	cancel()
	if a := <-done; !errors.Is(a.err, context.Canceled) {
		t.Fatalf("abandoned: %v", a.err)
	}
	// Close releases the other.
	go func() {
		req, _ := http.NewRequest(http.MethodPost, l.URL+"/chat/completions", strings.NewReader(chatBody("x", "")))
		done <- do(client, req)
	}()
	<-hung
	l.Close()
	if a := <-done; a.err == nil {
		t.Fatalf("released hang answered %d", a.status)
	}
	l.Close() // idempotent
}

// TestTransportResponse checks the in-process transport makes well-formed responses.
func TestTransportResponse(t *testing.T) {
	s := New(Config{})
	req, _ := http.NewRequest(http.MethodPost, "http://sim.test/v1/chat/completions", strings.NewReader(chatBody("x", "")))
	resp, err := s.Transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Request != req || resp.Status != "200 OK" || resp.ProtoMajor != 1 || resp.ContentLength != int64(len(b)) ||
		resp.Header.Get("Content-Length") != fmt.Sprint(len(b)) {
		t.Errorf("response %+v", resp)
	}
	// A base URL with a trailing slash still works.
	if a := post(t, s, "//v1//chat/completions", chatBody("x", "")); a.status != 200 {
		t.Errorf("double slashes: %d", a.status)
	}
}
