package jsonl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-llm/sluice"
)

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want sluice.Request
	}{
		{
			name: "chat",
			in:   `{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":` + chatBody + `}`,
			want: sluice.Request{CustomID: "r1", Method: "POST", URL: "/v1/chat/completions", Body: json.RawMessage(chatBody)},
		},
		{
			name: "embeddings",
			in:   `{"custom_id":"e","method":"POST","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":"x"}}`,
			want: sluice.Request{CustomID: "e", Method: "POST", URL: "/v1/embeddings", Body: json.RawMessage(`{"model":"text-embedding-3-small","input":"x"}`)},
		},
		{
			name: "completions",
			in:   `{"custom_id":"c","method":"POST","url":"/v1/completions","body":{"model":"m","prompt":"x"}}`,
			want: sluice.Request{CustomID: "c", Method: "POST", URL: "/v1/completions", Body: json.RawMessage(`{"model":"m","prompt":"x"}`)},
		},
		{
			name: "responses",
			in:   `{"custom_id":"s","method":"POST","url":"/v1/responses","body":{"model":"m","input":"x"}}`,
			want: sluice.Request{CustomID: "s", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"model":"m","input":"x"}`)},
		},
		{
			name: "whitespace everywhere, members in any order, unknown members ignored",
			in:   " \t{ \"body\" :\n{ \"x\": [1, {\"model\": 2}], \"model\" : \"m\" } , \"extra\": {\"a\": [null]}, \"url\":\"/v1/responses\",\"method\":\"POST\", \"custom_id\" : \"id\" } ",
			want: sluice.Request{CustomID: "id", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{ "x": [1, {"model": 2}], "model" : "m" }`)},
		},
		{
			name: "escapes in names and values",
			in:   `{"custom\u005fid":"a\"b\\\u00e9","method":"P\u004fST","url":"\/v1\/responses","body":{"mod\u0065l":"m"}}`,
			want: sluice.Request{CustomID: "a\"b\\é", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"mod\u0065l":"m"}`)},
		},
		{
			name: "the same name in nested objects is no repeat",
			in:   `{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":"m","x":{"model":1},"y":[{"model":2}]},"z":{"custom_id":3}}`,
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"model":"m","x":{"model":1},"y":[{"model":2}]}`)},
		},
		{
			name: "non-ASCII custom_id",
			in:   `{"custom_id":"日本語-🚀","method":"POST","url":"/v1/responses","body":{"model":"m"}}`,
			want: sluice.Request{CustomID: "日本語-🚀", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"model":"m"}`)},
		},
		{
			name: "custom_id of the longest length",
			in:   `{"custom_id":"` + strings.Repeat("x", MaxCustomID) + `","method":"POST","url":"/v1/responses","body":{"model":"m"}}`,
			want: sluice.Request{CustomID: strings.Repeat("x", MaxCustomID), Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"model":"m"}`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseRequest(3, []byte(tt.in))
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, req); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRequestErrors(t *testing.T) {
	const (
		good = `"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}`
		body = `{"model":"m"}`
	)
	tests := []struct {
		name  string
		in    string
		err   string
		field string
		want  sluice.Request // what could be read despite the error
	}{
		{name: "not UTF-8", in: "{\"custom_id\":\"a\xff\"}", err: "line 17: not valid UTF-8 (at byte 15)"},
		{name: "not JSON", in: `not json at all`, err: "line 17: not valid JSON at byte 2: invalid character 'o' in literal null (expecting 'u')"},
		{name: "truncated JSON", in: `{"custom_id":"a",`, err: "line 17: not valid JSON at byte 17: unexpected end of JSON input"},
		{name: "two values", in: `{} {}`, err: "line 17: not valid JSON at byte 4: invalid character '{' after top-level value"},
		{name: "NUL byte", in: "{\"custom_id\":\"a\x00\"}", err: "line 17: not valid JSON at byte 16: invalid character '\\x00' in string literal"},
		{name: "empty", in: ``, err: "line 17: not valid JSON at byte 0: unexpected end of JSON input"},
		{name: "array", in: `[1,2]`, err: "line 17: must be a JSON object, got array"},
		{name: "string", in: ` "x" `, err: "line 17: must be a JSON object, got string"},
		{name: "null", in: `null`, err: "line 17: must be a JSON object, got null"},
		{name: "custom_id missing", in: `{` + good + `}`, field: "custom_id", err: "line 17: custom_id: missing",
			want: sluice.Request{Method: "POST", URL: "/v1/chat/completions", Body: json.RawMessage(body)}},
		{name: "custom_id in the wrong case", in: `{"Custom_ID":"a",` + good + `}`, field: "custom_id", err: "line 17: custom_id: missing",
			want: sluice.Request{Method: "POST", URL: "/v1/chat/completions", Body: json.RawMessage(body)}},
		{name: "custom_id a number", in: `{"custom_id":17,` + good + `}`, field: "custom_id", err: "line 17: custom_id: must be a string, got number",
			want: sluice.Request{Method: "POST", URL: "/v1/chat/completions", Body: json.RawMessage(body)}},
		{name: "custom_id null", in: `{"custom_id":null,` + good + `}`, field: "custom_id", err: "line 17: custom_id: must be a string, got null",
			want: sluice.Request{Method: "POST", URL: "/v1/chat/completions", Body: json.RawMessage(body)}},
		{name: "custom_id empty", in: `{"custom_id":"",` + good + `}`, field: "custom_id", err: "line 17: custom_id: must not be empty",
			want: sluice.Request{Method: "POST", URL: "/v1/chat/completions", Body: json.RawMessage(body)}},
		{name: "custom_id too long", in: `{"custom_id":"` + strings.Repeat("é", 300) + `",` + good + `}`, field: "custom_id",
			err:  "line 17: custom_id: must be at most 512 bytes, got 600",
			want: sluice.Request{CustomID: strings.Repeat("é", 300), Method: "POST", URL: "/v1/chat/completions", Body: json.RawMessage(body)}},
		{name: "method missing", in: `{"custom_id":"a","url":"/v1/responses","body":{"model":"m"}}`, field: "method", err: "line 17: method: missing",
			want: sluice.Request{CustomID: "a", URL: "/v1/responses", Body: json.RawMessage(body)}},
		{name: "method GET", in: `{"custom_id":"a","method":"GET","url":"/v1/responses","body":{"model":"m"}}`, field: "method", err: `line 17: method: must be "POST", got "GET"`,
			want: sluice.Request{CustomID: "a", Method: "GET", URL: "/v1/responses", Body: json.RawMessage(body)}},
		{name: "method in lower case", in: `{"custom_id":"a","method":"post","url":"/v1/responses","body":{"model":"m"}}`, field: "method", err: `line 17: method: must be "POST", got "post"`,
			want: sluice.Request{CustomID: "a", Method: "post", URL: "/v1/responses", Body: json.RawMessage(body)}},
		{name: "method an array", in: `{"custom_id":"a","method":["POST"],"url":"/v1/responses","body":{"model":"m"}}`, field: "method", err: `line 17: method: must be a string, got array`,
			want: sluice.Request{CustomID: "a", URL: "/v1/responses", Body: json.RawMessage(body)}},
		{name: "url missing", in: `{"custom_id":"a","method":"POST","body":{"model":"m"}}`, field: "url", err: "line 17: url: missing",
			want: sluice.Request{CustomID: "a", Method: "POST", Body: json.RawMessage(body)}},
		{name: "url unknown", in: `{"custom_id":"a","method":"POST","url":"/v1/nope","body":{"model":"m"}}`, field: "url",
			err:  `line 17: url: must be one of /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses; got "/v1/nope"`,
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/nope", Body: json.RawMessage(body)}},
		{name: "url a full URL", in: `{"custom_id":"a","method":"POST","url":"https://api.openai.com/v1/chat/completions","body":{"model":"m"}}`, field: "url",
			err:  `line 17: url: must be one of /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses; got "https://api.openai.com/v1/chat/completions"`,
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "https://api.openai.com/v1/chat/completions", Body: json.RawMessage(body)}},
		{name: "url long value is cut in the message", in: `{"custom_id":"a","method":"POST","url":"/` + strings.Repeat("é", 40) + `","body":{"model":"m"}}`, field: "url",
			err:  `line 17: url: must be one of /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses; got "/` + strings.Repeat("é", 31) + `"...`,
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/" + strings.Repeat("é", 40), Body: json.RawMessage(body)}},
		{name: "url a boolean", in: `{"custom_id":"a","method":"POST","url":true,"body":{"model":"m"}}`, field: "url", err: "line 17: url: must be a string, got boolean",
			want: sluice.Request{CustomID: "a", Method: "POST", Body: json.RawMessage(body)}},
		{name: "body missing", in: `{"custom_id":"a","method":"POST","url":"/v1/responses"}`, field: "body", err: "line 17: body: missing",
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses"}},
		{name: "body a string", in: `{"custom_id":"a","method":"POST","url":"/v1/responses","body":"{\"model\":\"m\"}"}`, field: "body", err: "line 17: body: must be a JSON object, got string",
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses"}},
		{name: "body null", in: `{"custom_id":"a","method":"POST","url":"/v1/responses","body":null}`, field: "body", err: "line 17: body: must be a JSON object, got null",
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses"}},
		{name: "body.model missing", in: `{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"input":{"model":"m"}}}`, field: "body.model", err: "line 17: body.model: missing",
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"input":{"model":"m"}}`)}},
		{name: "body.model a number", in: `{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":4}}`, field: "body.model", err: "line 17: body.model: must be a string, got number",
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"model":4}`)}},
		{name: "body.model empty", in: `{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":""}}`, field: "body.model", err: "line 17: body.model: must not be empty",
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"model":""}`)}},
		{name: "empty body", in: `{"custom_id":"a","method":"POST","url":"/v1/responses","body":{}}`, field: "body.model", err: "line 17: body.model: missing",
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{}`)}},
		{name: "custom_id twice", in: `{"custom_id":"first","custom_id":"second",` + good + `}`, field: "custom_id",
			err:  "line 17: custom_id: " + dupMsg,
			want: sluice.Request{CustomID: "second", Method: "POST", URL: "/v1/chat/completions", Body: json.RawMessage(body)}},
		{name: "an unknown member twice", in: `{"custom_id":"a","meta":1,` + good + `,"meta":2}`, field: "meta", err: "line 17: meta: " + dupMsg,
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/chat/completions", Body: json.RawMessage(body)}},
		{name: "a repeat spelled with an escape", in: `{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":"m","temperature":0,"temp\u0065rature":2}}`,
			field: "body.temperature", err: "line 17: body.temperature: " + dupMsg,
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"model":"m","temperature":0,"temp\u0065rature":2}`)}},
		{name: "body.model twice", in: `{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":2,"model":"m"}}`, field: "body.model",
			err:  "line 17: body.model: " + dupMsg,
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"model":2,"model":"m"}`)}},
		{name: "a repeat in an object of many members", in: `{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":"m"` + manyKeys(40) + `,"k7":0}}`,
			field: "body.k7", err: "line 17: body.k7: " + dupMsg,
			want: sluice.Request{CustomID: "a", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"model":"m"` + manyKeys(40) + `,"k7":0}`)}},
		{name: "first problem wins", in: `{"custom_id":"","method":"GET","url":"/x"}`, field: "custom_id", err: "line 17: custom_id: must not be empty",
			want: sluice.Request{Method: "GET", URL: "/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseRequest(17, []byte(tt.in))
			if err == nil {
				t.Fatalf("no error, want %q", tt.err)
			}
			if err.Error() != tt.err || err.Field != tt.field || err.Line != 17 {
				t.Errorf("error = %q (field %q, line %d), want %q (field %q, line 17)", err, err.Field, err.Line, tt.err, tt.field)
			}
			if diff := cmp.Diff(tt.want, req); diff != "" {
				t.Errorf("request read despite the error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRequestCopiesBody(t *testing.T) {
	data := []byte(`{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":` + chatBody + `}`)
	req, err := ParseRequest(1, data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'X'
	}
	if string(req.Body) != chatBody || req.CustomID != "r1" {
		t.Errorf("request changed with the line's buffer: %+v", req)
	}
}

// referenceParse is ParseRequest written the slow, obvious way with encoding/json: the
// fuzz test checks that both agree on every input. It returns the request and the field
// of the first error ("-" for none).
func referenceParse(data []byte) (sluice.Request, string) {
	var req sluice.Request
	if !utf8.Valid(data) || !json.Valid(data) {
		return req, ""
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil || top == nil {
		return req, ""
	}
	str := func(name string) (string, bool) {
		var s string
		raw, ok := top[name]
		return s, ok && bytes.HasPrefix(raw, []byte(`"`)) && json.Unmarshal(raw, &s) == nil
	}
	id, idOK := str("custom_id")
	method, methodOK := str("method")
	url, urlOK := str("url")
	req.CustomID, req.Method, req.URL = id, method, url
	var body map[string]json.RawMessage
	if raw := top["body"]; bytes.HasPrefix(raw, []byte("{")) {
		req.Body = raw
		if err := json.Unmarshal(raw, &body); err != nil {
			panic(err)
		}
	}
	var model string
	modelRaw, modelOK := body["model"]
	modelOK = modelOK && bytes.HasPrefix(modelRaw, []byte(`"`)) && json.Unmarshal(modelRaw, &model) == nil
	dup, hasDup := referenceDuplicate(data, 0)
	switch {
	case hasDup:
		return req, dup
	case !idOK || id == "" || len(id) > MaxCustomID:
		return req, "custom_id"
	case !methodOK || method != "POST":
		return req, "method"
	case !urlOK || !isEndpoint(url):
		return req, "url"
	case body == nil:
		return req, "body"
	case !modelOK || model == "":
		return req, "body.model"
	}
	return req, "-"
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":` + chatBody + `}`))
	f.Add([]byte(`{"custom\u005fid":"a\"b","method":"P\u004fST","url":"/v1/embeddings","body":{"model":"m","model":3}}`))
	f.Add([]byte(` {"custom_id" : "x" , "body" : {"a":[1,{"model":"m"}], "model": "m" }, "url":"/v1/responses", "method": "POST"} `))
	f.Add([]byte(`[{"custom_id":"r1"}]`))
	f.Add([]byte("{\"custom_id\":\"\xff\"}"))
	f.Add([]byte(`{"custom_id":"\\\"","method":"POST","url":"/v1/completions","body":{"model":"\\"}}`))
	for _, seed := range []string{
		`{"custom_id":"a","method":"GET","url":"/v1/responses","body":{"model":"m"}}`,
		`{"custom_id":"a","method":"POST","url":"/v1/nope","body":{"model":"m"}}`,
		`{"custom_id":"a","method":"POST","url":"/v1/responses","body":null}`,
		`{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":4}}`,
		`{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":""}}`,
		`{"custom_id":"","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":[1,2,3]}}`,
		`{"Custom_ID":"a","custom_id":null,"method":true,"url":[],"body":{}}`,
		`null`, `"x"`, `[{}]`, `{} {}`, `{"custom_id":"a",`,
		`{"custom_id":"a","custom_id":"b","method":"POST","url":"/v1/responses","body":{"model":"m"}}`,
		`{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":"m","n":1,"n":2}}`,
		`{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":"m","body":{"x":1,"x":2}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wantReq, wantField := referenceParse(data)
		orig := bytes.Clone(data)
		req, err := ParseRequest(9, data)
		if !bytes.Equal(data, orig) {
			t.Fatal("ParseRequest changed its input")
		}
		switch {
		case wantField == "-" && err != nil:
			t.Fatalf("rejected %q: %v", data, err)
		case wantField != "-" && err == nil:
			t.Fatalf("accepted %q; the reference finds a problem with %q", data, wantField)
		case err != nil && (err.Field != wantField || err.Line != 9):
			t.Fatalf("error %q names field %q on line %d; want field %q on line 9", err, err.Field, err.Line, wantField)
		}
		// The request must not alias the line: the Reader reuses its buffer.
		for i := range data {
			data[i] = 0
		}
		if diff := cmp.Diff(wantReq, req); diff != "" {
			t.Fatalf("request of %q (-reference +got):\n%s", orig, diff)
		}
	})
}

// manyKeys is n members "k0":0 ... of an object, each after a comma.
func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i)
	}
	return b.String()
}

// referenceDuplicate finds the first member name that repeats in the object data, or
// else in its body object, with encoding/json's token reader; it returns the field an
// error must name.
func referenceDuplicate(data []byte, depth int) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		panic(err)
	}
	seen := map[string]bool{}
	dup, found := "", false
	var body json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			panic(err)
		}
		key := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			panic(err)
		}
		if seen[key] && !found {
			dup, found = key, true
		}
		seen[key] = true
		if key == "body" {
			body = val
		}
	}
	if found {
		return cutName(dup), true
	}
	if depth > 0 || !bytes.HasPrefix(body, []byte("{")) {
		return "", false
	}
	if dup, ok := referenceDuplicate(body, 1); ok {
		return "body." + dup, true
	}
	return "", false
}

func FuzzDuplicateKey(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":1,"b":{"a":2}}`, `{"a":1,"\u0061":2}`,
		`{"\ud800":1,"\udc00":2}`, `{"a\\":1,"a\\\\":2,"a\\":3}`, `{"k":[{"k":1}],"k2":{"k":{}}}`,
		`{"model":"m"` + manyKeys(20) + `,"k19":0}`, `{"model":"m"` + manyKeys(20) + `,"k\u0031":0}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		i := skipSpace(data, 0)
		if !utf8.Valid(data) || !json.Valid(data) || data[i] != '{' {
			return
		}
		want, wantDup := referenceDuplicate(data[i:], 1)
		got := duplicateKey(data[i:])
		switch {
		case wantDup && got == nil:
			t.Fatalf("no repeat found in %q; the reference finds %q", data, want)
		case !wantDup && got != nil:
			t.Fatalf("repeat %q found in %q; the reference finds none", got, data)
		case wantDup && fieldName("", got) != want:
			t.Fatalf("repeat %q found in %q; the reference finds %q", fieldName("", got), data, want)
		}
	})
}
