package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestAssembleStreamGolden assembles every testdata/stream/*.sse and compares the body
// and usage with the .golden file beside it (go test -run Golden -update rewrites them).
func TestAssembleStreamGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/stream/*.sse")
	if err != nil || len(files) == 0 {
		t.Fatalf("no stream fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			body, usage, err := assembleStream(in)
			if err != nil {
				t.Fatalf("assembleStream: %v", err)
			}
			if !json.Valid(body) {
				t.Fatalf("assembled body is not JSON: %s", body)
			}
			u, _ := json.Marshal(usage)
			var got bytes.Buffer
			if err := json.Indent(&got, body, "", "  "); err != nil {
				t.Fatal(err)
			}
			got.WriteString("\nusage: ")
			got.Write(u)
			got.WriteString("\n")
			golden := strings.TrimSuffix(file, ".sse") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("assembled %s:\n%s\nwant:\n%s", file, got.Bytes(), want)
			}
		})
	}
}

func TestAssembleStream(t *testing.T) {
	const chunk = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`
	tests := []struct {
		name    string
		in      string
		want    string // the assembled body
		wantErr string // a substring of the error
	}{
		{
			name: "minimal",
			in:   "data: " + chunk + "\n\ndata: [DONE]\n\n",
			want: `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"logprobs":null,"finish_reason":null}]}`,
		},
		{
			name: "no space after the colon, CR line ends, no final blank line",
			in:   "data:" + chunk + "\r\rdata:[DONE]",
			want: `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"logprobs":null,"finish_reason":null}]}`,
		},
		{
			name: "data split over lines",
			in:   "data: {\"choices\":[{\"index\":0,\ndata: \"delta\":{\"content\":\"a\\nb\"}}]}\n\ndata: [DONE]\n\n",
			want: `{"id":null,"object":"chat.completion","created":null,"model":null,"choices":[{"index":0,"message":{"role":"assistant","content":"a\nb","refusal":null},"logprobs":null,"finish_reason":null}]}`,
		},
		{
			name: "refusal",
			in:   `data: {"choices":[{"index":0,"delta":{"role":"assistant","refusal":"I can't"}}]}` + "\n\n" + `data: {"choices":[{"index":0,"delta":{"refusal":" help."},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n",
			want: `{"id":null,"object":"chat.completion","created":null,"model":null,"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help."},"logprobs":null,"finish_reason":"stop"}]}`,
		},
		{
			name: "events after DONE are ignored",
			in:   "data: " + chunk + "\n\ndata: [DONE]\n\ndata: garbage\n\n",
			want: `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"logprobs":null,"finish_reason":null}]}`,
		},
		{name: "cut before DONE", in: "data: " + chunk + "\n\n", wantErr: errStreamCut.Error()},
		{name: "cut inside an event", in: "data: " + chunk + "\n\ndata: {\"id\":\"c\",\"cho", wantErr: "event 2 is not JSON"},
		{name: "empty", in: "", wantErr: errStreamEmpty.Error()},
		{name: "only comments", in: ": ping\n\n: ping\n\n", wantErr: errStreamEmpty.Error()},
		{name: "only DONE", in: "data: [DONE]\n\n", wantErr: errStreamEmpty.Error()},
		{name: "garbage event", in: "data: hello\n\ndata: [DONE]\n\n", wantErr: "event 1 is not JSON"},
		{
			name:    "error event",
			in:      "data: " + chunk + "\n\n" + `data: {"error":{"message":"The server had an error","type":"server_error","code":"server_error"}}` + "\n\n",
			wantErr: "stream error: The server had an error",
		},
		{name: "named error event", in: "event: error\ndata: {\"message\":\"overloaded\"}\n\n", wantErr: "stream error: overloaded"},
		{name: "huge choice index", in: `data: {"choices":[{"index":100000000,"delta":{"content":"x"}}]}` + "\n\ndata: [DONE]\n\n", wantErr: "out of range"},
		{name: "negative tool index", in: `data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":-1}]}}]}` + "\n\ndata: [DONE]\n\n", wantErr: "out of range"},
		{
			name:    "responses cut before completed",
			in:      "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n",
			wantErr: errStreamCut.Error(),
		},
		{
			name:    "responses failed",
			in:      "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"r\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n",
			wantErr: "stream error: boom",
		},
		{
			name: "responses incomplete",
			in:   "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"id\":\"r\",\"status\":\"incomplete\"}}\n\n",
			want: `{"id":"r","status":"incomplete"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _, err := assembleStream([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("assembleStream error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("assembleStream: %v", err)
			}
			if string(body) != tt.want {
				t.Errorf("assembled\n got %s\nwant %s", body, tt.want)
			}
		})
	}
}

func TestDoStream(t *testing.T) {
	sse, err := os.ReadFile("testdata/stream/chat_tools.sse")
	if err != nil {
		t.Fatal(err)
	}
	cut := sse[:bytes.Index(sse, []byte("data: [DONE]"))]
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		wantErr  string // "" for success; else the UpstreamError's Code
		wantMsg  string
		wantBody string // a substring of the Response's body
	}{
		{"whole", answer(200, string(sse), "Content-Type", "text/event-stream; charset=utf-8"), "", "", `"finish_reason":"tool_calls"`},
		{"without its content type", answer(200, string(sse), "Content-Type", "application/json"), "", "", `"finish_reason":"tool_calls"`},
		{"cut before DONE", answer(200, string(cut), "Content-Type", "text/event-stream"), sluice.CodeInvalidResponse,
			"200 answer: stream ended before its end marker", `"code":"invalid_response"`},
		{"error inside", answer(200, "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":\"overloaded\"}}\n\n", "Content-Type", "text/event-stream"),
			"overloaded", "stream error: overloaded", `"message":"stream error: overloaded"`},
		{"error inside without a code", answer(200, "event: error\ndata: {\"message\":\"oops\"}\n\n", "Content-Type", "text/event-stream"),
			sluice.CodeInvalidResponse, "stream error: oops", `"code":"invalid_response"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := do(t, newClient(t, serve(t, tt.handler)))
			if resp == nil {
				t.Fatalf("Response is nil (error %v)", err)
			}
			if !bytes.Contains(resp.Body, []byte(tt.wantBody)) || !json.Valid(resp.Body) {
				t.Errorf("Body = %s, want valid JSON containing %s", resp.Body, tt.wantBody)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				if want := (sluice.Usage{PromptTokens: 81, CompletionTokens: 30}); resp.Usage != want {
					t.Errorf("Usage = %+v, want %+v", resp.Usage, want)
				}
				return
			}
			ue := upstreamError(t, err)
			if ue.StatusCode != 200 || ue.Code != tt.wantErr || ue.Message != tt.wantMsg || !ue.Retryable() {
				t.Errorf("error = %+v, want status 200, code %q, message %q, retryable", ue, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

func TestLooksLikeStream(t *testing.T) {
	for in, want := range map[string]bool{
		"data: {}":     true,
		"\n\nevent: x": true,
		": ping":       true,
		"{}":           false,
		"":             false,
		"hello":        false,
	} {
		if got := looksLikeStream([]byte(in)); got != want {
			t.Errorf("looksLikeStream(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzAssembleStream(f *testing.F) {
	files, _ := filepath.Glob("testdata/stream/*.sse")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("data: {\"choices\":[{\"index\":3,\"delta\":{\"tool_calls\":[{\"index\":2}]}}]}\ndata: x\n\n"))
	f.Add([]byte("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":null}\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		body, u, err := assembleStream(in)
		if err != nil {
			if body != nil {
				t.Fatalf("error %v with a body", err)
			}
			var se *streamError
			if errors.As(err, &se) && len(se.info.Message) > maxMessage {
				t.Fatalf("stream error message of %d bytes", len(se.info.Message))
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("assembled invalid JSON %q from %q", body, in)
		}
		if u.PromptTokens < 0 || u.CompletionTokens < 0 || u.CachedTokens < 0 {
			t.Fatalf("usage %+v", u)
		}
	})
}
