package http_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/sim"
)

// contract is the OpenAPI document of the Files and Batch APIs.
type contract struct {
	Components struct {
		Schemas map[string]*schema `json:"schemas"`
	} `json:"components"`
}

type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Properties map[string]*schema `json:"properties"`
	Required   []string           `json:"required"`
	AnyOf      []*schema          `json:"anyOf"`
	Items      *schema            `json:"items"`
	Enum       []any              `json:"enum"`
}

// check reports where v does not fit s: required members present, types right, enums
// respected. A member that is not required may be null, as OpenAI sends them.
func (c *contract) check(t *testing.T, path string, s *schema, v any, nullable bool) {
	t.Helper()
	if s.Ref != "" {
		s = c.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	if v == nil && nullable {
		return
	}
	if len(s.AnyOf) > 0 {
		for _, alt := range s.AnyOf {
			if (alt.Type == "null" && v == nil) || (alt.Type != "null" && v != nil) {
				c.check(t, path, alt, v, false)
				return
			}
		}
		t.Errorf("%s: %v matches none of anyOf", path, v)
		return
	}
	ok := true
	switch s.Type {
	case "string":
		_, ok = v.(string)
	case "integer":
		f, isNum := v.(float64)
		ok = isNum && f == float64(int64(f))
	case "boolean":
		_, ok = v.(bool)
	case "array":
		arr, isArr := v.([]any)
		ok = isArr
		for i, el := range arr {
			if s.Items != nil {
				c.check(t, path+"["+strconv.Itoa(i)+"]", s.Items, el, false)
			}
		}
	case "object", "":
		obj, isObj := v.(map[string]any)
		if s.Type == "object" || s.Properties != nil {
			ok = isObj
		}
		for _, r := range s.Required {
			if _, present := obj[r]; isObj && !present {
				t.Errorf("%s: required member %s missing", path, r)
			}
		}
		for name, ps := range s.Properties {
			if pv, present := obj[name]; present {
				c.check(t, path+"."+name, ps, pv, !contains(s.Required, name))
			}
		}
	}
	if !ok {
		t.Errorf("%s: %v is not of type %s", path, v, s.Type)
	}
	if len(s.Enum) > 0 && ok && !containsAny(s.Enum, v) {
		t.Errorf("%s: %v is not one of %v", path, v, s.Enum)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsAny(list []any, v any) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestServeAnswersMatchOpenAPIContract(t *testing.T) {
	data, err := os.ReadFile("../../shared/openai/openai-batch-api.json")
	if os.IsNotExist(err) {
		t.Skip("the OpenAPI contract is not here")
	}
	if err != nil {
		t.Fatal(err)
	}
	var c contract
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.start()
	cl := h.client(keyA)
	in := upload(t, cl, inputLines(3))
	b := createBatch(t, cl, in.ID, "24h")
	waitBatch(t, cl, b.ID, terminal)
	failed := createBatch(t, cl, upload(t, cl, []string{"not json"}).ID, "24h")
	waitBatch(t, cl, failed.ID, terminal)

	get := func(method, path, key string) (int, any) {
		t.Helper()
		req, _ := http.NewRequest(method, h.ts.URL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		body, _ := io.ReadAll(resp.Body)
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
		return resp.StatusCode, v
	}
	for _, tc := range []struct {
		name, method, path, key, schema string
		status                          int
	}{
		{"file", "GET", "/v1/files/" + in.ID, keyA, "OpenAIFile", 200},
		{"files", "GET", "/v1/files", keyA, "ListFilesResponse", 200},
		{"completed batch", "GET", "/v1/batches/" + b.ID, keyA, "Batch", 200},
		{"failed batch", "GET", "/v1/batches/" + failed.ID, keyA, "Batch", 200},
		{"batches", "GET", "/v1/batches?limit=1", keyA, "ListBatchesResponse", 200},
		{"files by purpose, paged", "GET", "/v1/files?purpose=batch&limit=1&order=asc", keyA, "ListFilesResponse", 200},
		{"batches oldest first", "GET", "/v1/batches?limit=1&order=asc", keyA, "ListBatchesResponse", 200},
		{"bad order", "GET", "/v1/files?order=sideways", keyA, "ErrorResponse", 400},
		{"not found", "GET", "/v1/batches/batch_nope", keyA, "ErrorResponse", 404},
		{"no key", "GET", "/v1/files", "", "ErrorResponse", 401},
		{"unknown url", "GET", "/v1/nope", keyA, "ErrorResponse", 404},
		{"bad limit", "GET", "/v1/batches?limit=0", keyA, "ErrorResponse", 400},
		{"delete", "DELETE", "/v1/files/" + in.ID, keyA, "DeleteFileResponse", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, v := get(tc.method, tc.path, tc.key)
			if status != tc.status {
				t.Errorf("status %d, want %d: %v", status, tc.status, v)
			}
			s := c.Components.Schemas[tc.schema]
			if s == nil {
				t.Fatalf("no schema %s", tc.schema)
			}
			c.check(t, tc.schema, s, v, false)
		})
	}
}
