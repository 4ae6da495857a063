package pipeline

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

func TestUnpackAnswers(t *testing.T) {
	ids := []string{"a", "b", "7"}
	tests := []struct {
		name string
		text string
		want map[string]string
	}{
		{"all", `[{"id":"a","answer":"x"},{"id":"b","answer":{"k":1}},{"id":"7","answer":"z"}]`,
			map[string]string{"a": `"x"`, "b": `{"k":1}`, "7": `"z"`}},
		{"partial", `[{"id":"b","answer":"y"}]`, map[string]string{"b": `"y"`}},
		{"in a fence after words", "Here you are:\n```json\n[{\"id\":\"a\",\"answer\":\"x\"}]\n```",
			map[string]string{"a": `"x"`}},
		{"trailing words", `[{"id":"a","answer":"x"}] and the model will answer`, map[string]string{"a": `"x"`}},
		{"numeric id", `[{"id":7,"answer":"z"}]`, map[string]string{"7": `"z"`}},
		{"unknown, null and missing answers left out", `[{"id":"c","answer":"x"},{"id":"a","answer":null},{"id":"b"},{"answer":"x"}]`,
			map[string]string{}},
		{"an id given twice is left out", `[{"id":"a","answer":"x"},{"id":"a","answer":"y"},{"id":"b","answer":"y"}]`,
			map[string]string{"b": `"y"`}},
		{"elements not objects are skipped", `["a",1,{"id":"a","answer":"x"}]`, map[string]string{"a": `"x"`}},
		{"truncated array", `[{"id":"a","answer":"x"},{"id":"b","ans`, map[string]string{}},
		{"not JSON", `I cannot do that.`, map[string]string{}},
		{"an object, not an array", `{"a":"x"}`, map[string]string{}},
		{"echo of the request", `[{"id":"a","input":"SUMMARY x"}]`, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			for k, v := range unpackAnswers(tt.text, ids) {
				got[k] = string(v)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("unpackAnswers(%q) (-want +got):\n%s", tt.text, diff)
			}
		})
	}
}

func TestShareUsage(t *testing.T) {
	u := sluice.Usage{PromptTokens: 10, CompletionTokens: 2}
	var got []int64
	var completion int64
	for i := range int64(3) {
		s := shareUsage(u, 3, i)
		got = append(got, s.PromptTokens)
		completion += s.CompletionTokens
	}
	if diff := cmp.Diff([]int64{4, 3, 3}, got); diff != "" || completion != 2 {
		t.Errorf("shares of %+v: prompt %v, completion %d", u, got, completion)
	}
}

func TestNewPool(t *testing.T) {
	cost := func(string, sluice.Usage) (float64, bool) { return 1, true }
	tests := []struct {
		name    string
		cfg     RunConfig
		pool    bool
		wantErr bool
	}{
		{"no cap", RunConfig{}, false, false},
		{"cost cap", RunConfig{Budget: sluice.Budget{MaxCost: 1}, Cost: cost}, true, false},
		{"token cap without prices", RunConfig{Budget: sluice.Budget{MaxTokens: 10}}, true, false},
		{"cost cap without prices", RunConfig{Budget: sluice.Budget{MaxCost: 1}}, false, true},
		{"negative", RunConfig{Budget: sluice.Budget{MaxTokens: -1}}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newPool(tt.cfg)
			if (err != nil) != tt.wantErr || (p != nil) != tt.pool {
				t.Errorf("newPool: pool %v, error %v; want pool %v, error %v", p != nil, err, tt.pool, tt.wantErr)
			}
		})
	}
}
