package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/estimate"
	"github.com/sluice-llm/sluice/internal/storeurl"
)

// estimateFlags are the flags of "sluice estimate".
type estimateFlags struct {
	prices, store string
	compare       []string
	json          bool
}

func newEstimateCmd(e *env) *cobra.Command {
	f := &estimateFlags{}
	cmd := &cobra.Command{
		Use:   "estimate INPUT",
		Short: "Count a file's tokens and price it before running it",
		Long: `Estimate reads INPUT (the OpenAI Batch API input format) as a stream and counts every
request's prompt tokens with its model's tokenizer, bounds its output by max_tokens, and
prices both, per model, online and through the provider's Batch API (worst case: every
request writes its max_tokens). A request that sets no max_tokens counts the mean output
of earlier jobs of its model, else ` + strconv.Itoa(estimate.DefaultUnboundedOutput) + ` tokens.

When earlier jobs in the store used the same models, estimate also gives the expected
output and cost, from their mean completion tokens per request. Without a store file
there is no history (and none is created).

--compare prices the same workload on other models, with their tokenizers.
Invalid lines are counted and named, and never stop the estimate.`,
		Example: `  sluice estimate requests.jsonl
  sluice estimate requests.jsonl --compare gpt-4.1-mini,gpt-5-mini,deepseek-chat
  sluice estimate requests.jsonl --json | jq .cost_usd.online`,
		Args: exactArgs(1, "one input file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEstimate(cmd.Context(), e, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.prices, "prices", "", "a prices file overriding or extending the built-in table")
	fl.StringSliceVar(&f.compare, "compare", nil, "price the same workload on these models (comma-separated)")
	fl.StringVar(&f.store, "store", "", "the ledger whose earlier jobs give the expected output (default $SLUICE_STORE, else the user's data directory)")
	fl.BoolVar(&f.json, "json", false, "print JSON")
	return cmd
}

func runEstimate(ctx context.Context, e *env, f *estimateFlags, input string) error {
	prices, err := loadPrices(f.prices)
	if err != nil {
		return err
	}
	var compare []string
	for _, m := range f.compare {
		if m = strings.TrimSpace(m); m != "" && !slices.Contains(compare, m) {
			compare = append(compare, m)
		}
	}
	if fi, err := os.Stat(input); err != nil {
		return usageError("estimate: %v", err)
	} else if fi.IsDir() {
		return usageError("estimate: %s is a directory", input)
	}
	history, err := loadHistory(ctx, e, f.store)
	if err != nil {
		return err
	}
	rep, err := estimateInput(ctx, input, estimate.Config{Prices: prices, History: history, Compare: compare})
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(e.stdout, rep)
	}
	printEstimate(e.stdout, rep)
	return nil
}

// estimateInput estimates the input file at path, plain, gzip or zstd, as a stream.
func estimateInput(ctx context.Context, path string, cfg estimate.Config) (*estimate.Report, error) {
	f, err := openPlain(path)
	if err != nil {
		return nil, usageError("estimate: %v", err)
	}
	defer f.Close()
	rep, err := estimate.Read(ctx, path, f, cfg)
	return rep, estimateError(err)
}

// estimateError is err as the commands report it: a model to compare without a price and
// an input that cannot be read are usage errors; a cancel is not.
func estimateError(err error) error {
	var np *estimate.NoPriceError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &np):
		return usageError("--compare: no price for model %q (--prices FILE adds prices)", np.Model)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return usageError("%v", err)
}

// loadHistory reads the usage of earlier jobs by model from the ledger. A ledger that does
// not exist has no history, and is not created.
func loadHistory(ctx context.Context, e *env, flag string) (map[string]sluice.ModelStats, error) {
	loc, err := storeLocation(e, flag)
	if err != nil {
		return nil, err
	}
	if loc.Kind == storeurl.SQLite {
		if _, err := os.Stat(loc.Path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
	}
	st, _, err := openLocation(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer st.Close()
	return st.ModelHistory(ctx)
}

// printEstimate writes the estimate for a person to read.
func printEstimate(w io.Writer, r *estimate.Report) {
	fmt.Fprintf(w, "%s: %s, %s", r.Input, plural(r.Requests, "request", "requests"), plural(int64(len(r.ByModel)), "model", "models"))
	if r.InvalidLines > 0 {
		fmt.Fprintf(w, "; %s, not counted", plural(r.InvalidLines, "invalid line", "invalid lines"))
	}
	fmt.Fprintln(w)
	for _, l := range r.FirstInvalid {
		fmt.Fprintf(w, "  line %d: %s\n", l.Line, l.Error)
	}
	if more := r.InvalidLines - int64(len(r.FirstInvalid)); more > 0 {
		fmt.Fprintf(w, "  ... and %s more\n", groupDigits(more))
	}
	for _, m := range r.ByModel {
		if m.UnboundedRequests == 0 {
			continue
		}
		how := fmt.Sprintf("%d output tokens each (the default: no history)", estimate.DefaultUnboundedOutput)
		if m.HistoryMeanOutput != nil {
			how = fmt.Sprintf("%.0f output tokens each (the mean of %s earlier requests)", math.Ceil(*m.HistoryMeanOutput), groupDigits(m.HistoryRequests))
		}
		fmt.Fprintf(w, "  %s: %s no max_tokens; counted at %s\n", m.Model, plural(m.UnboundedRequests, "request sets", "requests set"), how)
	}
	if len(r.ByModel) == 0 {
		return
	}
	fmt.Fprintln(w)
	printEstimateModels(w, r)
	var approx []string
	for _, m := range r.ByModel {
		if m.Approximate {
			approx = append(approx, m.Model)
		}
	}
	if len(approx) > 0 {
		fmt.Fprintf(w, "\n%s: not OpenAI's, counted with o200k_base (an approximation: sluice has OpenAI's tokenizers only)\n", strings.Join(approx, ", "))
	}
	if len(r.UnpricedModels) > 0 {
		fmt.Fprintf(w, "\nno price for %s: counted in tokens only (--prices FILE adds prices)\n", strings.Join(r.UnpricedModels, ", "))
	}
	fmt.Fprintln(w, "\n≤ worst case: every request writes its max_tokens")
	if r.ExpectedOutputTokens != nil {
		fmt.Fprintln(w, "~ expected: requests write the mean output of earlier jobs of their model (the worst case for models with none)")
	}
	if len(r.Compare) > 0 {
		fmt.Fprintln(w, "\nthe same workload on other models:")
		printEstimateCompare(w, r)
	}
}

// printEstimateModels writes the table of models, with a total row when there are several.
func printEstimateModels(w io.Writer, r *estimate.Report) {
	history := r.ExpectedOutputTokens != nil
	total := "total"
	if !r.CostComplete {
		total = "total (priced)"
	}
	names := []string{"MODEL", total}
	for _, m := range r.ByModel {
		names = append(names, m.Model)
	}
	name := leftAligned(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tREQUESTS\tINPUT TOKENS\tOUTPUT ≤\tONLINE ≤\tBATCH ≤\t", name("MODEL"))
	if history {
		fmt.Fprint(tw, "EXPECTED OUTPUT\tONLINE ~\tBATCH ~\t")
	}
	fmt.Fprintln(tw)
	row := func(model string, requests, input, bound int64, cost *estimate.USD, expected *int64, expectedCost *estimate.USD, none string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t", name(model), groupDigits(requests), groupDigits(input),
			groupDigits(bound), costCells(cost, none))
		if history {
			fmt.Fprintf(tw, "%s\t%s\t", optTokens(expected, "no history"), costCells(expectedCost, "-"))
		}
		fmt.Fprintln(tw)
	}
	for _, m := range r.ByModel {
		row(m.Model, m.Requests, m.InputTokens, m.OutputTokensBound, m.CostUSD, m.ExpectedOutputTokens, m.ExpectedCostUSD, "no price")
	}
	if len(r.ByModel) > 1 {
		row(total, r.Requests, r.InputTokens, r.OutputTokensBound, &r.CostUSD, r.ExpectedOutputTokens, r.ExpectedCostUSD, "")
	}
	tw.Flush()
}

// printEstimateCompare writes the comparison table, with the file as written first.
func printEstimateCompare(w io.Writer, r *estimate.Report) {
	history := r.ExpectedOutputTokens != nil
	as := "as written"
	if !r.CostComplete {
		as = "as written (priced)"
	}
	names := []string{"MODEL", as}
	for _, c := range r.Compare {
		names = append(names, c.Model)
	}
	name := leftAligned(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tENCODING\tINPUT TOKENS\tOUTPUT ≤\tONLINE ≤\tBATCH ≤\t", name("MODEL"))
	if history {
		fmt.Fprint(tw, "ONLINE ~\tBATCH ~\t")
	}
	fmt.Fprintln(tw, "VS FILE\t")
	base := r.CostUSD.Online
	row := func(model, enc string, input, bound int64, cost, expected *estimate.USD) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t", name(model), enc, groupDigits(input), groupDigits(bound), costCells(cost, ""))
		if history {
			fmt.Fprintf(tw, "%s\t", costCells(expected, "-"))
		}
		vs := "-"
		if base > 0 && r.CostComplete {
			vs = fmt.Sprintf("%.2f×", cost.Online/base)
		}
		fmt.Fprintf(tw, "%s\t\n", vs)
	}
	enc, approx := "-", false
	if len(r.ByModel) == 1 {
		enc = r.ByModel[0].Encoding
		if r.ByModel[0].Approximate {
			enc, approx = enc+"*", true
		}
	}
	row(as, enc, r.InputTokens, r.OutputTokensBound, &r.CostUSD, r.ExpectedCostUSD)
	for _, c := range r.Compare {
		enc := c.Encoding
		if c.Approximate {
			enc += "*"
			approx = true
		}
		row(c.Model, enc, c.InputTokens, c.OutputTokensBound, &c.CostUSD, c.ExpectedCostUSD)
	}
	tw.Flush()
	if approx {
		fmt.Fprintln(w, "  * not the model's own tokenizer: its counts are an approximation")
	}
}

// leftAligned returns a function padding a name to the widest of names, so that a column
// of names reads left-aligned in a table whose other columns are aligned right.
func leftAligned(names []string) func(string) string {
	width := 0
	for _, n := range names {
		width = max(width, utf8.RuneCountInString(n))
	}
	return func(n string) string { return n + strings.Repeat(" ", width-utf8.RuneCountInString(n)) }
}

// costCells is two table cells, online and batch, or none (when p is nil) as two cells.
func costCells(p *estimate.USD, none string) string {
	if p == nil {
		return none + "\t" + none
	}
	return fmtUSD(p.Online) + "\t" + fmtUSD(p.Batch)
}

func optTokens(n *int64, none string) string {
	if n == nil {
		return none
	}
	return groupDigits(*n)
}

// fmtUSD formats a cost: cents and thousands separators from $1, four decimals below
// (and "<$0.0001" for what would round to nothing).
func fmtUSD(v float64) string {
	if v > 0 && v < 0.00005 {
		return "<$0.0001"
	}
	if v < 1 {
		return fmt.Sprintf("$%.4f", v)
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	whole, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil { // beyond int64: a saturated bound
		return "$" + s
	}
	return "$" + groupDigits(n) + "." + frac
}

// plural is n with the singular or plural noun.
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return groupDigits(n) + " " + many
}

// groupDigits formats n with thousands separators.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	b.WriteString(sign)
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
