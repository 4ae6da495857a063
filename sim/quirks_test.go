package sim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

func TestTransientNotFound(t *testing.T) {
	s := New(Config{Quirks: Quirks{TransientNotFound: 2, NotFoundAfter: 3}})
	var got []int
	for range 8 {
		got = append(got, send(context.Background(), s, http.MethodPost, "/v1/chat/completions", chatBody("hi", "")).status)
	}
	want := []int{200, 200, 200, 404, 404, 200, 200, 200}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
	if a := send(context.Background(), s, http.MethodGet, "/v1/models", ""); !bytes.Contains(a.body, []byte("gpt-4o-mini")) {
		t.Errorf("the model list lost the model: %s", a.body)
	}
}

func TestStreamQuirks(t *testing.T) {
	withOpts := chatBody("hi", `,"stream":true,"stream_options":{"include_usage":true}`)
	a := send(context.Background(), New(Config{Quirks: Quirks{NoStreamUsage: true}}), http.MethodPost, "/v1/chat/completions", withOpts)
	if a.status != 200 || bytes.Contains(a.body, []byte(`"usage"`)) || !bytes.Contains(a.body, []byte("[DONE]")) {
		t.Errorf("NoStreamUsage: %d %s, want a whole stream without usage", a.status, a.body)
	}
	s := New(Config{Quirks: Quirks{RejectStreamOptions: true}})
	if a := send(context.Background(), s, http.MethodPost, "/v1/chat/completions", withOpts); a.status != 400 || !bytes.Contains(a.body, []byte("stream_options")) {
		t.Errorf("RejectStreamOptions: %d %s, want a 400 naming stream_options", a.status, a.body)
	}
	if a := send(context.Background(), s, http.MethodPost, "/v1/chat/completions", chatBody("hi", `,"stream":true`)); a.status != 200 {
		t.Errorf("RejectStreamOptions without stream_options: %d, want 200", a.status)
	}
}

func TestDrop(t *testing.T) {
	for _, extra := range []string{"", `,"stream":true`} {
		s := New(Config{Quirks: Quirks{Drop: 1}})
		a := send(context.Background(), s, http.MethodPost, "/v1/chat/completions", chatBody("hi", extra))
		if !errors.Is(a.err, syscall.ECONNRESET) {
			t.Errorf("in-process %q: %v, want a reset midway", extra, a.err)
		}
		ln, err := Start(Config{Quirks: Quirks{Drop: 1}})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, ln.URL+"/chat/completions", strings.NewReader(chatBody("hi", extra)))
		tr := &http.Transport{}
		a = do(&http.Client{Transport: tr}, req)
		if a.err == nil {
			t.Errorf("over a socket %q: %d %s, want the body cut off", extra, a.status, a.body)
		}
		if ln.Dropped() != 1 {
			t.Errorf("Dropped() = %d, want 1", ln.Dropped())
		}
		tr.CloseIdleConnections()
		ln.Close()
	}
}

func TestRefuse(t *testing.T) {
	ln, err := Start(Config{Quirks: Quirks{Refuse: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if resp, err := http.Get(ln.URL + "/models"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Refuse: %v, want connection refused", err)
		if err == nil {
			resp.Body.Close()
		}
	}
	up, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	resp, err := c.Get(up.URL + "/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	up.Refuse()
	if resp, err := c.Get(up.URL + "/models"); err == nil {
		resp.Body.Close()
		t.Error("Listener.Refuse: still answered")
	}
}

func TestErrorIn200(t *testing.T) {
	s := New(Config{Seed: 1, Quirks: Quirks{ErrorIn200: 0.5}})
	var errs int
	for range 40 {
		a := send(context.Background(), s, http.MethodPost, "/v1/chat/completions", chatBody("hi", ""))
		if a.status != 200 {
			t.Fatalf("status %d, want 200", a.status)
		}
		if strings.HasPrefix(string(a.body), `{"error":`) {
			errs++
		} else if !strings.Contains(string(a.body), `"choices"`) {
			t.Fatalf("body %s, want an answer or an error object", a.body)
		}
	}
	if errs == 0 || errs == 40 || int64(errs) != s.ErrorsIn200() {
		t.Errorf("%d errors in 40 answers, ErrorsIn200() = %d; want about half, counted", errs, s.ErrorsIn200())
	}
}

// TestCloseAfterAnswer closes a keep-alive connection once its answer was written whole,
// the answer not saying so.
func TestCloseAfterAnswer(t *testing.T) {
	l, err := Start(Config{Seed: 1, Quirks: Quirks{CloseAfterAnswer: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(l.URL, "/v1"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := chatBody("hi", "")
	if _, err := fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("status %d, close %v, %v: want a 200 kept alive", resp.StatusCode, resp.Close, err)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the answer: %v, want the connection closed", err)
	}
	if n := l.ClosedAfterAnswer(); n != 1 {
		t.Fatalf("ClosedAfterAnswer() = %d, want 1", n)
	}
}
