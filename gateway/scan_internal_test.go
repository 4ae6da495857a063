package gateway

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// answerUsage reads the same usage as parsing the whole answer would, whether or not the
// top-level usage comes last.
func TestAnswerUsage(t *testing.T) {
	for name, answer := range map[string]string{
		"last":                  `{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2}}`,
		"last with spaces":      "{\"id\":\"x\",\n \"usage\" : {\"prompt_tokens\":12, \"completion_tokens\":2}\n}\n",
		"not last":              `{"usage":{"prompt_tokens":12,"completion_tokens":2},"id":"x"}`,
		"openai order":          `{"choices":[],"usage":{"prompt_tokens":12,"prompt_tokens_details":{"cached_tokens":4}},"service_tier":"default","system_fingerprint":"fp"}`,
		"nested object after":   `{"usage":{"prompt_tokens":12},"meta":{"a":[1,{"b":"}"}]}}`,
		"nested after":          `{"usage":{"prompt_tokens":12},"meta":{"usage":{"prompt_tokens":99}}}`,
		"nested inside":         `{"usage":{"prompt_tokens":12,"detail":{"usage":{"prompt_tokens":99}}}}`,
		"in a string":           `{"content":"say \"usage\":{\"prompt_tokens\":99}}","usage":{"prompt_tokens":12}}`,
		"string with brace":     `{"usage":{"prompt_tokens":12,"note":"a } and \" and {"}}`,
		"none":                  `{"id":"x"}`,
		"not an object":         `{"usage":null}`,
		"responses API details": `{"output":[],"usage":{"input_tokens":5,"output_tokens":7,"input_tokens_details":{"cached_tokens":3}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			got, want := answerUsage([]byte(answer)), gjson.Get(answer, "usage")
			gp, gc, gk := readUsage(got)
			wp, wc, wk := readUsage(want)
			if gp != wp || gc != wc || gk != wk {
				t.Errorf("usage %d/%d/%d, want %d/%d/%d (parsed whole: %s)", gp, gc, gk, wp, wc, wk, want.Raw)
			}
		})
	}
}

func FuzzAnswerUsage(f *testing.F) {
	f.Add(`{"id":"x","usage":{"prompt_tokens":12,"completion_tokens":2}}`)
	f.Add(`{"usage":{"prompt_tokens":12},"meta":{"usage":{"prompt_tokens":99}}}`)
	f.Add(`{"a":"\"usage\":{}}","usage":{"input_tokens":1}}`)
	f.Fuzz(func(t *testing.T, answer string) {
		if !json.Valid([]byte(answer)) || topLevel(answer, "usage") > 1 {
			return // a repeated member: which one counts is not defined
		}
		gp, gc, gk := readUsage(answerUsage([]byte(answer)))
		wp, wc, wk := readUsage(gjson.Get(answer, "usage"))
		if gp != wp || gc != wc || gk != wk {
			t.Errorf("%s: usage %d/%d/%d, want %d/%d/%d", answer, gp, gc, gk, wp, wc, wk)
		}
	})
}

// topLevel counts the top-level members of answer named key.
func topLevel(answer, key string) int {
	n := 0
	gjson.Parse(answer).ForEach(func(k, _ gjson.Result) bool {
		if k.Str == key {
			n++
		}
		return true
	})
	return n
}

// withModel writes the upstream's model name as a JSON string: strconv's Go quoting
// wrote a control character as \x01 and invalid UTF-8 as \xff, which are not JSON.
func TestWithModelIsJSON(t *testing.T) {
	body := []byte(`{"model":"alias","messages":[]}`)
	for _, model := range []string{"gpt-4o-mini", "org/model:tag", "a\x01b", "bad\xffutf8", `q"uote<&>`} {
		out := withModel(nil, body, gjson.GetBytes(body, "model"), model)
		var v struct {
			Model string `json:"model"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Errorf("model %q: %s is not JSON: %v", model, out, err)
			continue
		}
		if want := string([]rune(model)); v.Model != want { // invalid UTF-8 reads back as U+FFFD
			t.Errorf("model %q: read back %q", model, v.Model)
		}
	}
}
