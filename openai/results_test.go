package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

// OpenAI's output line, as its Batch API guide shows it.
const (
	openAIBody = `{"id": "chatcmpl-123", "object": "chat.completion", "created": 1711652795, "model": "gpt-3.5-turbo-0125", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}, "logprobs": null, "finish_reason": "stop"}], "usage": {"prompt_tokens": 22, "completion_tokens": 2, "total_tokens": 24}, "system_fingerprint": "fp_123"}`
	openAILine = `{"id": "batch_req_123", "custom_id": "request-2", "response": {"status_code": 200, "request_id": "req_123", "body": ` + openAIBody + `}, "error": null}`
	expiredMsg = "This request could not be executed before the completion window expired."
	// expiredLine is a line of OpenAI's error file.
	expiredLine    = `{"id": "batch_req_456", "custom_id": "request-3", "response": null, "error": {"code": "batch_expired", "message": "` + expiredMsg + `"}}`
	badRequestBody = `{"error": {"message": "Invalid value for 'model'.", "type": "invalid_request_error", "param": "model", "code": null}}`
)

var openAIResult = sluice.BatchResult{
	Line: 1, CustomID: "request-2", StatusCode: 200, RequestID: "req_123",
	Body: json.RawMessage(openAIBody), Usage: sluice.Usage{PromptTokens: 22, CompletionTokens: 2},
}

// okLine is a small 200 line for custom_id id.
func okLine(id string) string {
	return `{"id":"batch_req_` + id + `","custom_id":"` + id + `","response":{"status_code":200,"request_id":"req_` + id + `","body":{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":1}}},"error":null}`
}

func okResult(line int64, id string) sluice.BatchResult {
	return sluice.BatchResult{Line: line, CustomID: id, StatusCode: 200, RequestID: "req_" + id,
		Body: json.RawMessage(`{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":1}}`), Usage: sluice.Usage{PromptTokens: 3, CompletionTokens: 1}}
}

type resultsCase struct {
	name    string
	in      string
	maxLine int // 0: the production limit
	want    []sluice.BatchResult
}

// bigContent is text longer than the line reader's buffer (64 KiB).
var bigContent = strings.Repeat("abcdefgh", 10<<10)

var resultsCases = []resultsCase{
	{
		name: "OpenAI output line",
		in:   openAILine + "\n",
		want: []sluice.BatchResult{openAIResult},
	},
	{
		name: "OpenAI error file line, batch expired",
		in:   expiredLine + "\n",
		want: []sluice.BatchResult{{Line: 1, CustomID: "request-3", ErrorCode: "batch_expired", ErrorMessage: expiredMsg}},
	},
	{
		name: "400 with an error body",
		in:   `{"id":"batch_req_1","custom_id":"r1","response":{"status_code":400,"request_id":"req_1","body":` + badRequestBody + `},"error":null}`,
		want: []sluice.BatchResult{{Line: 1, CustomID: "r1", StatusCode: 400, RequestID: "req_1", Body: json.RawMessage(badRequestBody)}},
	},
	{
		name: "usage of an error answer is not counted",
		in:   `{"custom_id":"r1","response":{"status_code":500,"body":{"usage":{"prompt_tokens":9}}}}`,
		want: []sluice.BatchResult{{Line: 1, CustomID: "r1", StatusCode: 500, Body: json.RawMessage(`{"usage":{"prompt_tokens":9}}`)}},
	},
	{
		name: "numeric error codes",
		in: `{"custom_id":"r1","response":null,"error":{"code":429,"message":"Too many"}}
{"custom_id":"r2","response":null,"error":{"code":4.0e2,"message":null}}
{"custom_id":"r3","error":{"code":-1.5,"message":7}}`,
		want: []sluice.BatchResult{
			{Line: 1, CustomID: "r1", ErrorCode: "429", ErrorMessage: "Too many"},
			{Line: 2, CustomID: "r2", ErrorCode: "400"},
			{Line: 3, CustomID: "r3", ErrorCode: "-1.5", ErrorMessage: "7"},
		},
	},
	{
		name: "error that is a string or another value",
		in: `{"custom_id":"r1","response":null,"error":"upstream went away"}
{"custom_id":"r2","response":null,"error":[1,2]}`,
		want: []sluice.BatchResult{
			{Line: 1, CustomID: "r1", ErrorMessage: "upstream went away"},
			{Line: 2, CustomID: "r2", ErrorMessage: "[1,2]"},
		},
	},
	{
		name: "status_code as a string",
		in:   `{"custom_id":"r1","response":{"status_code":" 201 ","body":{"usage":{"input_tokens":5,"output_tokens":6}}}}`,
		want: []sluice.BatchResult{{Line: 1, CustomID: "r1", StatusCode: 201,
			Body: json.RawMessage(`{"usage":{"input_tokens":5,"output_tokens":6}}`), Usage: sluice.Usage{PromptTokens: 5, CompletionTokens: 6}}},
	},
	{
		name: "body as a JSON string holding JSON",
		in:   `{"custom_id":"r1","response":{"status_code":200,"body":" {\"id\":\"x\",\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n"},"error":null}`,
		want: []sluice.BatchResult{{Line: 1, CustomID: "r1", StatusCode: 200,
			Body: json.RawMessage(`{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":4}}`), Usage: sluice.Usage{PromptTokens: 3, CompletionTokens: 4}}},
	},
	{
		name: "body as plain text",
		in: `{"custom_id":"r1","response":{"status_code":502,"body":"<html>Bad Gateway</html>"}}
{"custom_id":"r2","response":{"status_code":200,"body":"{not json"}}`,
		want: []sluice.BatchResult{
			{Line: 1, CustomID: "r1", StatusCode: 502, Body: json.RawMessage(`"<html>Bad Gateway</html>"`)},
			{Line: 2, CustomID: "r2", StatusCode: 200, Body: json.RawMessage(`"{not json"`)},
		},
	},
	{
		name: "2xx with no body",
		in: `{"custom_id":"r1","response":{"status_code":200,"request_id":"req_1"},"error":null}
{"custom_id":"r2","response":{"status_code":204,"body":null}}`,
		want: []sluice.BatchResult{
			{Line: 1, CustomID: "r1", StatusCode: 200, RequestID: "req_1"},
			{Line: 2, CustomID: "r2", StatusCode: 204},
		},
	},
	{
		name: "CRLF line endings",
		in:   okLine("a") + "\r\n" + okLine("b") + "\r\n",
		want: []sluice.BatchResult{okResult(1, "a"), okResult(2, "b")},
	},
	{
		name: "blank lines",
		in:   "\n\n" + okLine("a") + "\n \t\r\n\n" + okLine("b") + "\n\n",
		want: []sluice.BatchResult{okResult(3, "a"), okResult(6, "b")},
	},
	{
		name: "truncated last line",
		in:   okLine("a") + "\n" + `{"id":"batch_req_2","custom_id":"request-2","response":{"status_code":200,"body":{"id":"chatcmpl`,
		want: []sluice.BatchResult{okResult(1, "a"), {Line: 2, CustomID: "request-2", Invalid: "line is cut off after 96 bytes"}},
	},
	{
		name: "truncated before custom_id",
		in:   `{"id":"batch_req_2","cust`,
		want: []sluice.BatchResult{{Line: 1, Invalid: "line is cut off after 25 bytes"}},
	},
	{
		name: "not JSON",
		in:   `{"custom_id":"r1","response":oops}` + "\n" + okLine("b"),
		want: []sluice.BatchResult{
			{Line: 1, CustomID: "r1", Invalid: "line is not valid JSON: invalid character 'o' looking for beginning of value"},
			okResult(2, "b"),
		},
	},
	{
		name: "line that is an array",
		in:   `[{"custom_id":"r1"}]` + "\n" + okLine("b"),
		want: []sluice.BatchResult{{Line: 1, Invalid: "line is a JSON array, not an object"}, okResult(2, "b")},
	},
	{
		name: "missing custom_id",
		in: `{"id":"batch_req_1","response":{"status_code":200,"body":{}},"error":null}
{"custom_id":null,"response":{"status_code":200}}
{"custom_id":"","response":{"status_code":200}}
{"custom_id":17,"response":{"status_code":200}}`,
		want: []sluice.BatchResult{
			{Line: 1, Invalid: "custom_id: missing"},
			{Line: 2, Invalid: "custom_id: missing"},
			{Line: 3, Invalid: "custom_id: empty"},
			{Line: 4, Invalid: "custom_id: must be a string, got number"},
		},
	},
	{
		name: "response that cannot be read",
		in: `{"custom_id":"r1","response":"ok","error":null}
{"custom_id":"r2","response":{"body":{}}}
{"custom_id":"r3","response":{"status_code":"OK","body":{}}}
{"custom_id":"r4","response":{"status_code":200.5}}
{"custom_id":"r5","response":{"status_code":42}}
{"custom_id":"r6","response":null,"error":null}
{"custom_id":"r7"}`,
		want: []sluice.BatchResult{
			{Line: 1, CustomID: "r1", Invalid: "response: must be an object or null, got string"},
			{Line: 2, CustomID: "r2", Invalid: "response.status_code: missing"},
			{Line: 3, CustomID: "r3", Invalid: `response.status_code: must be an HTTP status, got "OK"`},
			{Line: 4, CustomID: "r4", Invalid: "response.status_code: must be an HTTP status, got 200.5"},
			{Line: 5, CustomID: "r5", Invalid: "response.status_code: must be an HTTP status, got 42"},
			{Line: 6, CustomID: "r6", Invalid: "neither a response nor an error"},
			{Line: 7, CustomID: "r7", Invalid: "neither a response nor an error"},
		},
	},
	{
		name:    "line over the limit",
		in:      okLine("a") + "\n" + `{"custom_id":"long","body":"` + strings.Repeat("x", 300) + `"}` + "\n" + okLine("c") + "\n",
		maxLine: 250,
		want:    []sluice.BatchResult{okResult(1, "a"), {Line: 2, Invalid: "line is longer than 250 bytes"}, okResult(3, "c")},
	},
	{
		name: "line longer than the read buffer",
		in:   `{"custom_id":"big","response":{"status_code":200,"body":{"content":"` + bigContent + `"}}}` + "\n" + okLine("b"),
		want: []sluice.BatchResult{
			{Line: 1, CustomID: "big", StatusCode: 200, Body: json.RawMessage(`{"content":"` + bigContent + `"}`)},
			okResult(2, "b"),
		},
	},
	{
		name: "2xx with an error beside it",
		in:   `{"custom_id":"r1","response":{"status_code":200,"body":{}},"error":{"code":"odd","message":"both"}}`,
		want: []sluice.BatchResult{{Line: 1, CustomID: "r1", StatusCode: 200, Body: json.RawMessage(`{}`), ErrorCode: "odd", ErrorMessage: "both"}},
	},
	{
		name: "escaped keys and a byte order mark",
		in:   "\xEF\xBB\xBF" + `{"custom\u005fid":"r1","response":{"status_code":200,"body":{"usage":{"prompt_tokens":1}}}}`,
		want: []sluice.BatchResult{{Line: 1, CustomID: "r1", StatusCode: 200, Body: json.RawMessage(`{"usage":{"prompt_tokens":1}}`), Usage: sluice.Usage{PromptTokens: 1}}},
	},
}

// sameBody compares bodies as bytes (cmp would compare them byte by byte by reflection),
// telling a nil body from an empty one.
var sameBody = cmp.Comparer(func(a, b json.RawMessage) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) })

// collect reads in with the line limit maxLine (0: the production limit) and returns the
// results, which stay valid after reading (their bodies are not the reader's buffer).
func collect(t *testing.T, in io.Reader, maxLine int) ([]sluice.BatchResult, error) {
	t.Helper()
	if maxLine == 0 {
		maxLine = maxResultLine
	}
	var got []sluice.BatchResult
	err := readBatchResults(in, maxLine, func(r *sluice.BatchResult) error {
		got = append(got, *r)
		return nil
	})
	return got, err
}

func TestReadBatchResults(t *testing.T) {
	for _, tc := range resultsCases {
		t.Run(tc.name, func(t *testing.T) {
			// Read one byte at a time, the reader's buffer is reused for each line: a body
			// that aliased it would be overwritten by the lines after it.
			for _, in := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				got, err := collect(t, in, tc.maxLine)
				if err != nil {
					t.Fatalf("error = %v", err)
				}
				if diff := cmp.Diff(tc.want, got, sameBody); diff != "" {
					t.Errorf("results (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestReadBatchResultsStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop here")
	var calls int
	err := ReadBatchResults(strings.NewReader(okLine("a")+"\n"+okLine("b")+"\n"+okLine("c")+"\n"), func(r *sluice.BatchResult) error {
		calls++
		if r.CustomID == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("error = %v after %d calls, want %v after 2", err, calls, stop)
	}
}

func TestReadBatchResultsReaderFails(t *testing.T) {
	boom := errors.New("connection reset")
	in := io.MultiReader(strings.NewReader(okLine("a")+"\n\n"+`{"custom_id":"b","resp`), failing{boom})
	got, err := collect(t, in, 0)
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want it to wrap %v", err, boom)
	}
	if want := "read batch results: line 3: connection reset"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if diff := cmp.Diff([]sluice.BatchResult{okResult(1, "a")}, got, sameBody); diff != "" {
		t.Errorf("results before the failure (-want +got):\n%s", diff)
	}
}

// FuzzReadBatchResults checks that no input makes the parser panic, that line numbers
// only grow, and that every result it does not call invalid is a well-formed outcome.
func FuzzReadBatchResults(f *testing.F) {
	for _, tc := range resultsCases {
		if len(tc.in) < 4096 {
			f.Add(tc.in)
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		var last int64
		err := readBatchResults(strings.NewReader(in), 1024, func(r *sluice.BatchResult) error {
			if r.Line <= last {
				t.Fatalf("line %d after line %d", r.Line, last)
			}
			last = r.Line
			if r.Invalid != "" {
				if r.StatusCode != 0 || r.Body != nil || r.ErrorCode != "" || r.ErrorMessage != "" || r.Usage != (sluice.Usage{}) {
					t.Fatalf("invalid result carries more than its line: %+v", r)
				}
				return nil
			}
			if r.CustomID == "" {
				t.Fatalf("line %d: result without a custom_id: %+v", r.Line, r)
			}
			if r.StatusCode != 0 && (r.StatusCode < 100 || r.StatusCode > 599) {
				t.Fatalf("line %d: status %d", r.Line, r.StatusCode)
			}
			if r.Body != nil && !json.Valid(r.Body) {
				t.Fatalf("line %d: body is not JSON: %q", r.Line, r.Body)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("error = %v", err)
		}
	})
}
