// Package estimate counts and prices a file of requests before it is run: the engine of
// "sluice estimate" and "sluice run --confirm-cost", and what serve or a gateway calls to
// hold a batch against a budget before sending it.
//
// [Read] streams the JSONL of the OpenAI Batch API input format and returns a [Report]:
// per model, the prompt tokens counted with the model's tokenizer (package tokens), the
// output bound (max_tokens times n, or the model's mean output in earlier jobs when a
// request sets none), and the cost at the prices of a [pricing.Table], online and
// through the provider's Batch API. With the usage of earlier jobs ([Config.History]) it
// adds the expected output and cost; with [Config.Compare] it prices the same workload on
// other models, with their tokenizers. [Report.Fits] holds the worst case against a
// [sluice.Budget].
//
//	rep, err := estimate.Read(ctx, "requests.jsonl", f, estimate.Config{Prices: pricing.Default()})
//	if err != nil { ... }
//	if err := rep.Fits(sluice.Budget{MaxCost: 10}, true); errors.Is(err, estimate.ErrOverBudget) { ... }
//
// Invalid lines are counted and the first few named ([Report.FirstInvalid]); they never
// stop an estimate. The memory an estimate holds grows with the number of models, never
// with the number of lines.
package estimate
