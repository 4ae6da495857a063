package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/estimate"
	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/pricing"
	"github.com/sluice-llm/sluice/report"
	"github.com/sluice-llm/sluice/tokens"
)

// testPrices are round prices (USD per million tokens), so that costs can be checked by
// hand: 27 input and 300 output tokens of gpt-4o-mini cost (27×1000 + 300×2000)/1e6 =
// $0.627 online, half that in a batch.
const testPrices = `{"prices":[
 {"model":"gpt-4o-mini","input":1000,"output":2000,"batch_input":500,"batch_output":1000},
 {"model":"gpt-4","input":10000,"output":20000},
 {"model":"text-embedding-3-small","input":100}]}`

// chatLine and requestLine write request lines (internal/testutil).
var (
	chatLine    = testutil.ChatLine
	requestLine = testutil.RequestLine
)

// estimateJSON is the --json output, read back with the field names scripts use.
type estimateJSON struct {
	Requests             int64                  `json:"requests"`
	InvalidLines         int64                  `json:"invalid_lines"`
	FirstInvalid         []estimate.InvalidLine `json:"first_invalid"`
	InputTokens          int64                  `json:"input_tokens"`
	OutputTokensBound    int64                  `json:"output_tokens_bound"`
	UnboundedRequests    int64                  `json:"unbounded_requests"`
	ExpectedOutputTokens *int64                 `json:"expected_output_tokens"`
	CostUSD              estimate.USD           `json:"cost_usd"`
	ExpectedCostUSD      *estimate.USD          `json:"expected_cost_usd"`
	CostComplete         bool                   `json:"cost_complete"`
	UnpricedModels       []string               `json:"unpriced_models"`
	ByModel              []struct {
		Model                string        `json:"model"`
		Requests             int64         `json:"requests"`
		InputTokens          int64         `json:"input_tokens"`
		OutputTokensBound    int64         `json:"output_tokens_bound"`
		UnboundedRequests    int64         `json:"unbounded_requests"`
		HistoryRequests      int64         `json:"history_requests"`
		ExpectedOutputTokens *int64        `json:"expected_output_tokens"`
		CostUSD              *estimate.USD `json:"cost_usd"`
	} `json:"by_model"`
	Compare []struct {
		Model       string       `json:"model"`
		Encoding    string       `json:"encoding"`
		InputTokens int64        `json:"input_tokens"`
		CostUSD     estimate.USD `json:"cost_usd"`
	} `json:"compare"`
}

// estimateCLI runs "sluice estimate" with --json and the test prices, and decodes its
// output. The store is dir/none.db unless args give one.
func estimateCLI(t *testing.T, dir, input string, args ...string) estimateJSON {
	t.Helper()
	prices := writeFile(t, dir, "prices.json", testPrices)
	all := append([]string{"estimate", input, "--json", "--prices", prices, "--store", filepath.Join(dir, "none.db")}, args...)
	res := runCLI(t, nil, all...)
	if res.code != exitOK {
		t.Fatalf("estimate: exit %d: %s", res.code, res.stderr)
	}
	var out estimateJSON
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("--json output: %v\n%s", err, res.stdout)
	}
	return out
}

// squash collapses runs of spaces, so that table rows can be checked without their
// column widths.
func squash(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// The workload of the table and JSON tests: 3 chats of "hello world" on gpt-4o-mini (9
// prompt tokens each: 3 per message, 1 for the role, 2 for the text, 3 for the reply),
// two with max_tokens 100 and one with none (256, the default), and one embedding of
// "hello world" (2 tokens, no output).
func basicInput(t *testing.T, dir string) string {
	return writeFile(t, dir, "requests.jsonl", strings.Join([]string{
		chatLine("a", "gpt-4o-mini", "hello world", 100),
		chatLine("b", "gpt-4o-mini", "hello world", 100),
		chatLine("c", "gpt-4o-mini", "hello world", 0),
		requestLine("d", sluice.EndpointEmbeddings, map[string]any{"model": "text-embedding-3-small", "input": "hello world"}),
	}, "\n")+"\n")
}

func TestEstimateJSON(t *testing.T) {
	dir := t.TempDir()
	out := estimateCLI(t, dir, basicInput(t, dir))
	if out.Requests != 4 || out.InvalidLines != 0 || out.InputTokens != 3*9+2 || out.OutputTokensBound != 100+100+estimate.DefaultUnboundedOutput ||
		out.UnboundedRequests != 1 || out.ExpectedOutputTokens != nil || out.ExpectedCostUSD != nil || !out.CostComplete {
		t.Errorf("totals: %+v", out)
	}
	// gpt-4o-mini: 27 in, 456 out; text-embedding-3-small: 2 in at $100/M, no batch price.
	online := (27*1000.0+456*2000)/1e6 + 2*100.0/1e6
	batch := (27*500.0+456*1000)/1e6 + 2*100.0/1e6
	if !near(out.CostUSD.Online, online) || !near(out.CostUSD.Batch, batch) {
		t.Errorf("cost_usd = %+v, want online %v, batch %v", out.CostUSD, online, batch)
	}
	if len(out.ByModel) != 2 || out.ByModel[0].Model != "gpt-4o-mini" || out.ByModel[0].Requests != 3 ||
		out.ByModel[0].InputTokens != 27 || out.ByModel[0].OutputTokensBound != 456 || out.ByModel[0].UnboundedRequests != 1 ||
		out.ByModel[1].Model != "text-embedding-3-small" || out.ByModel[1].OutputTokensBound != 0 || out.ByModel[1].UnboundedRequests != 0 {
		t.Errorf("by_model: %+v", out.ByModel)
	}

	// The field names are an interface: check them in the raw output too.
	res := runCLI(t, nil, "estimate", basicInput(t, dir), "--json", "--store", filepath.Join(dir, "none.db"), "--compare", "gpt-4.1")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(res.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"requests", "invalid_lines", "first_invalid", "input_tokens", "output_tokens_bound",
		"unbounded_requests", "default_output_tokens", "expected_output_tokens", "cost_usd", "expected_cost_usd",
		"cost_complete", "unpriced_models", "by_model", "compare"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("--json has no %q field:\n%s", f, res.stdout)
		}
	}
	if string(raw["expected_output_tokens"]) != "null" || string(raw["unpriced_models"]) != "[]" {
		t.Errorf("expected_output_tokens = %s, unpriced_models = %s", raw["expected_output_tokens"], raw["unpriced_models"])
	}
	var cost map[string]float64
	if err := json.Unmarshal(raw["cost_usd"], &cost); err != nil || len(cost) != 2 || cost["online"] == 0 || cost["batch"] == 0 {
		t.Errorf("cost_usd = %s (%v)", raw["cost_usd"], err)
	}
}

func TestEstimateTable(t *testing.T) {
	dir := t.TempDir()
	prices := writeFile(t, dir, "prices.json", testPrices)
	store := filepath.Join(dir, "none.db")
	res := runCLI(t, nil, "estimate", basicInput(t, dir), "--prices", prices, "--store", store)
	if res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	for _, want := range []string{
		"requests.jsonl: 4 requests, 2 models\n",
		"gpt-4o-mini: 1 request sets no max_tokens; counted at 256 output tokens each (the default: no history)",
		// model, requests, input, output bound, online, batch
		"gpt-4o-mini 3 27 456 $0.9390 $0.4695",
		"text-embedding-3-small 1 2 0 $0.0002 $0.0002",
		"total 4 29 456 $0.9392 $0.4697",
		"≤ worst case: every request writes its max_tokens",
	} {
		if !strings.Contains(squash(res.stdout), want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "EXPECTED") || strings.Contains(res.stdout, "no price") {
		t.Errorf("no history and every model priced, yet:\n%s", res.stdout)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("estimate created the store %s (%v)", store, err)
	}
}

// TestEstimateCompare checks that --compare re-counts prompts with the tokenizer of a
// model whose encoding differs (gpt-4: cl100k_base) and keeps the count for one whose
// encoding is the same (gpt-4.1-mini: o200k_base).
func TestEstimateCompare(t *testing.T) {
	dir := t.TempDir()
	const ja = "お誕生日おめでとう" // 8 tokens in o200k_base, 9 in cl100k_base
	input := writeFile(t, dir, "requests.jsonl", strings.Join([]string{
		chatLine("a", "gpt-4o-mini", ja, 10),
		chatLine("b", "gpt-4o-mini", ja, 10),
		requestLine("c", sluice.EndpointEmbeddings, map[string]any{"model": "text-embedding-3-small", "input": ja}),
	}, "\n"))
	out := estimateCLI(t, dir, input, "--compare", "gpt-4, gpt-4o-mini", "--compare", "gpt-4")
	// As written: 2 × (3+1+8+3) on o200k_base, 9 on cl100k_base (text-embedding-3-small).
	// On gpt-4, all cl100k_base: 2 × (3+1+9+3) + 9. On gpt-4o-mini, all o200k_base: 2 × 15 + 8.
	if out.InputTokens != 2*15+9 {
		t.Fatalf("input_tokens = %d, want %d", out.InputTokens, 2*15+9)
	}
	type row struct {
		Model, Encoding string
		Input           int64
		Online, Batch   float64
	}
	var got []row
	for _, c := range out.Compare {
		got = append(got, row{c.Model, c.Encoding, c.InputTokens, c.CostUSD.Online, c.CostUSD.Batch})
	}
	want := []row{
		// gpt-4 has no batch price: the batch figure is the online one.
		{"gpt-4", tokens.Cl100kBase, 2*16 + 9, (41*10000.0 + 20*20000) / 1e6, (41*10000.0 + 20*20000) / 1e6},
		{"gpt-4o-mini", tokens.O200kBase, 2*15 + 8, (38*1000.0 + 20*2000) / 1e6, (38*500.0 + 20*1000) / 1e6},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(near)); diff != "" {
		t.Errorf("compare (-want +got):\n%s", diff)
	}

	res := runCLI(t, nil, "estimate", input, "--prices", writeFile(t, dir, "prices.json", testPrices),
		"--store", filepath.Join(dir, "none.db"), "--compare", "gpt-4,gpt-4o-mini,deepseek-chat")
	for _, want := range []string{
		"the same workload on other models:",
		"as written - 39 20 $0.0709 $0.0359 1.00×",
		"gpt-4 cl100k_base 41 20 $0.8100 $0.8100 11.42×",
		"gpt-4o-mini o200k_base 38 20 $0.0780 $0.0390 1.10×",
		"deepseek-chat o200k_base* 38 20",
		"* not the model's own tokenizer: its counts are an approximation",
	} {
		if !strings.Contains(squash(res.stdout), want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}

	if res := runCLI(t, nil, "estimate", input, "--store", filepath.Join(dir, "none.db"), "--compare", "gpt-4o-mni"); res.code != exitUsage ||
		!strings.Contains(res.stderr, `no price for model "gpt-4o-mni"`) {
		t.Errorf("--compare with an unknown model: exit %d, %q", res.code, res.stderr)
	}
}

// TestEstimateBadLines checks that invalid lines are counted, the first few named with
// their line and field, and that they stop nothing.
func TestEstimateBadLines(t *testing.T) {
	dir := t.TempDir()
	lines := []string{
		chatLine("ok1", "gpt-4o-mini", "hello world", 10),
		`{"method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[]}}`,
		`not json`,
		``,
		`{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":42}]}}`,
		`{"custom_id":"y","method":"POST","url":"/v1/images","body":{"model":"gpt-4o-mini"}}`,
		chatLine("ok2", "gpt-4o-mini", "hello world", 10),
		`{"custom_id":"z","method":"POST","url":"/v1/chat/completions","body":{"messages":[]}}`,
		`[1,2]`,
		"{\"custom_id\":\"bad\xff\"}",
		chatLine("ok3", "gpt-4o-mini", "hello world", 10),
	}
	input := writeFile(t, dir, "requests.jsonl", strings.Join(lines, "\n"))
	out := estimateCLI(t, dir, input)
	if out.Requests != 3 || out.InvalidLines != 7 || out.InputTokens != 27 {
		t.Errorf("requests %d, invalid %d, input tokens %d; want 3, 7, 27", out.Requests, out.InvalidLines, out.InputTokens)
	}
	var gotLines []int64
	for _, l := range out.FirstInvalid {
		gotLines = append(gotLines, l.Line)
	}
	if diff := cmp.Diff([]int64{2, 3, 5, 6, 8}, gotLines); diff != "" {
		t.Errorf("first_invalid lines (-want +got):\n%s", diff)
	}

	res := runCLI(t, nil, "estimate", input, "--store", filepath.Join(dir, "none.db"))
	if res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	for _, want := range []string{
		"3 requests, 1 model; 7 invalid lines, not counted",
		"line 2: custom_id: missing",
		"line 3: not valid JSON",
		"line 5: body: messages[0].content: want a string or an array",
		"line 6: url: must be one of",
		"line 8: body.model: missing",
		"... and 2 more",
	} {
		if !strings.Contains(squash(res.stdout), want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
}

// TestEstimateHistory runs a job against the simulator, then estimates the same file with
// that job's ledger: the expected output is the job's mean completion per request.
func TestEstimateHistory(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "ledger.db")
	var lines []string
	for i := range 20 {
		lines = append(lines, chatLine(fmt.Sprintf("r%d", i), "gpt-4o-mini", fmt.Sprintf("question %d about rivers", i), 1000))
	}
	input := writeFile(t, dir, "requests.jsonl", strings.Join(lines, "\n"))
	run := runCLI(t, nil, "run", input, "--sim", "--store", store, "-o", filepath.Join(dir, "out.jsonl"), "--json", "--progress", "none")
	if run.code != exitOK {
		t.Fatalf("run: exit %d: %s", run.code, run.stderr)
	}
	var rep report.Job
	if err := json.Unmarshal([]byte(run.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	mean := float64(rep.Tokens.Completion) / float64(rep.Requests.Done)

	// The same 20 requests, and one more with no max_tokens.
	more := writeFile(t, dir, "more.jsonl", strings.Join(append(lines, chatLine("open", "gpt-4o-mini", "anything", 0)), "\n"))
	out := estimateCLI(t, dir, more, "--store", store)
	wantExpected := int64(math.Round(21 * mean))
	if out.ExpectedOutputTokens == nil || *out.ExpectedOutputTokens != wantExpected {
		t.Fatalf("expected_output_tokens = %v, want %d (mean %.2f)", out.ExpectedOutputTokens, wantExpected, mean)
	}
	if b := out.OutputTokensBound; b != 20*1000+int64(math.Ceil(mean)) {
		t.Errorf("output_tokens_bound = %d, want %d: the unbounded request counts the mean", b, 20*1000+int64(math.Ceil(mean)))
	}
	m := out.ByModel[0]
	if m.HistoryRequests != 20 || m.ExpectedOutputTokens == nil || *m.ExpectedOutputTokens != wantExpected {
		t.Errorf("by_model[0]: %+v", m)
	}
	wantCost := (float64(out.InputTokens)*1000 + float64(wantExpected)*2000) / 1e6
	if out.ExpectedCostUSD == nil || !near(out.ExpectedCostUSD.Online, wantCost) {
		t.Errorf("expected_cost_usd = %+v, want online %v", out.ExpectedCostUSD, wantCost)
	}

	res := runCLI(t, nil, "estimate", more, "--store", store)
	for _, want := range []string{"EXPECTED OUTPUT", "(the mean of 20 earlier requests)", "~ expected:"} {
		if !strings.Contains(squash(res.stdout), want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
}

// TestEstimateUnpriced checks that a model with no price is counted in tokens only, and
// said so.
func TestEstimateUnpriced(t *testing.T) {
	dir := t.TempDir()
	input := writeFile(t, dir, "requests.jsonl", strings.Join([]string{
		chatLine("a", "my-finetune", "hello world", 50),
		chatLine("b", "gpt-4o-mini", "hello world", 50),
	}, "\n"))
	out := estimateCLI(t, dir, input)
	if out.CostComplete || len(out.UnpricedModels) != 1 || out.UnpricedModels[0] != "my-finetune" {
		t.Errorf("cost_complete %v, unpriced_models %v", out.CostComplete, out.UnpricedModels)
	}
	if out.InputTokens != 18 || out.OutputTokensBound != 100 {
		t.Errorf("tokens: %d in, %d out; want 18, 100: an unpriced model's tokens still count", out.InputTokens, out.OutputTokensBound)
	}
	if m := out.ByModel[0]; m.Model != "gpt-4o-mini" || m.CostUSD == nil || out.ByModel[1].CostUSD != nil {
		t.Errorf("by_model: %+v", out.ByModel)
	}
	if want := (9*1000.0 + 50*2000) / 1e6; !near(out.CostUSD.Online, want) {
		t.Errorf("cost_usd.online = %v, want %v (priced models only)", out.CostUSD.Online, want)
	}
	res := runCLI(t, nil, "estimate", input, "--store", filepath.Join(dir, "none.db"))
	for _, want := range []string{"no price for my-finetune: counted in tokens only", "my-finetune 1 9 50 no price no price",
		"total (priced) 2 18 100", "my-finetune: not OpenAI's, counted with o200k_base (an approximation"} {
		if !strings.Contains(squash(res.stdout), want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
}

func TestEstimateUsageErrors(t *testing.T) {
	dir := t.TempDir()
	input := basicInput(t, dir)
	store := filepath.Join(dir, "none.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no input", []string{"estimate"}, "expected one input file"},
		{"missing input", []string{"estimate", filepath.Join(dir, "nope.jsonl"), "--store", store}, "no such file"},
		{"directory", []string{"estimate", dir, "--store", store}, "is a directory"},
		{"bad prices", []string{"estimate", input, "--store", store, "--prices", writeFile(t, dir, "bad.yaml", "prices: [{input: 1}]")}, "prices"},
		{"unknown flag", []string{"estimate", input, "--nope"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, nil, tt.args...)
			if res.code != exitUsage || !strings.Contains(res.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, exitUsage, tt.want)
			}
		})
	}
}

// TestEstimatePrintSaturated checks that an absurd max_tokens, saturated by the
// estimate, prints in full instead of overflowing.
func TestEstimatePrintSaturated(t *testing.T) {
	dir := t.TempDir()
	input := writeFile(t, dir, "requests.jsonl", strings.Join([]string{
		chatLine("a", "gpt-4o-mini", "hello world", math.MaxInt64),
		chatLine("b", "gpt-4o-mini", "hello world", 10),
	}, "\n"))
	rep, err := estimateInput(t.Context(), input, estimate.Config{Prices: pricing.Default()})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	printEstimate(&sb, rep) // must not panic on huge figures
	if !strings.Contains(sb.String(), "9,223,372,036,854,775,807") {
		t.Errorf("print:\n%s", sb.String())
	}
	if _, err := estimateInput(t.Context(), filepath.Join(dir, "nope"), estimate.Config{}); err == nil {
		t.Error("an estimate of a missing file succeeded")
	}
}

// TestEstimateReadError checks that a read error mid-file is a usage error naming the
// input and the line, once.
func TestEstimateReadError(t *testing.T) {
	r := io.MultiReader(strings.NewReader(chatLine("a", "gpt-4o-mini", "hi", 5)+"\n"), iotest.ErrReader(errors.New("disk on fire")))
	_, err := estimate.Read(t.Context(), "input.jsonl", r, estimate.Config{Prices: pricing.Default()})
	err = estimateError(err)
	var ec *exitCodeError
	if !errors.As(err, &ec) || ec.code != exitUsage || err.Error() != "estimate input.jsonl: read line 2: disk on fire" {
		t.Errorf("err = %v, want a usage error naming the input and line 2 once", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = estimate.Read(ctx, "input.jsonl", strings.NewReader(chatLine("a", "gpt-4o-mini", "hi", 5)), estimate.Config{})
	if err = estimateError(err); !errors.Is(err, context.Canceled) || errors.As(err, &ec) {
		t.Errorf("cancelled: err = %v, want context.Canceled and no usage error", err)
	}
}

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 123456: "123,456",
		1234567: "1,234,567", -1234: "-1,234", math.MaxInt64: "9,223,372,036,854,775,807"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
	for v, want := range map[float64]string{0: "$0.0000", 0.00001: "<$0.0001", 0.12345: "$0.1235", 9.99: "$9.99", 0.999: "$0.9990",
		12.345: "$12.35", 1234567.891: "$1,234,567.89"} {
		if got := fmtUSD(v); got != want {
			t.Errorf("fmtUSD(%v) = %q, want %q", v, got, want)
		}
	}
}
