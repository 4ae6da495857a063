// Package pricing holds what LLM tokens cost, so that sluice can put a price on a run.
//
// A [Table] maps model names to a [Price] per million tokens: input, cached input,
// output, and the Batch API prices where a provider offers them. [Default] is the table
// built into sluice, embedded from prices.yaml, with dated figures for common models of
// OpenAI, Anthropic, Google, DeepSeek, Alibaba (Qwen) and Mistral, each with the pricing
// page it came from. [Load] reads another table, either in the same format (YAML or JSON)
// or LiteLLM's model_prices_and_context_window.json, and [Table.Merge] lays it over the
// default:
//
//	t := pricing.Default()
//	extra, err := pricing.Load(f)
//	if err != nil { ... }
//	t = t.Merge(extra)
//	if p, ok := t.Lookup("openai/gpt-4o-mini-2024-07-18"); ok {
//		usd := p.Cost(usage, false)
//	}
//
// # Names
//
// [Table.Lookup] ignores case and tries, in order: the name as given, an alias, the name
// without a provider prefix ("openai/", "models/"), and the name without a date or
// "-latest" suffix ("-2024-07-18", "-20250514", "@20240620"). A dated snapshot whose
// price differs from its family's (gpt-4o-2024-05-13) has an entry of its own, which the
// exact name finds first.
//
// # Zero means not offered
//
// A zero CachedInput means the provider gives no cache discount, and cached tokens cost
// the input price; a zero BatchInput or BatchOutput means it has no Batch API, and batch
// requests cost the online price. The table never derives a batch price from a rule:
// each is written down as the provider documents it.
//
// # What the cost leaves out
//
// [Price.Cost] prices the usage an API reports: prompt, cached and completion tokens.
// Anthropic's cache writes, Google's and Anthropic's higher rates for prompts over 200K
// tokens, and per-image or per-request fees are not in that usage, so a cost is a close
// estimate, not an invoice.
//
// Tables are never modified after they are built, so they are safe for concurrent use;
// Merge returns a new one.
package pricing
