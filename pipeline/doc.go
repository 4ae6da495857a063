// Package pipeline runs several prompts over every document of a CSV or JSONL file and
// gathers the answers into one table: one row per document, one column per task.
//
// # The pipeline file
//
//	model: gpt-4o-mini
//	input: docs.csv            # or .jsonl; each row or object is a document
//	id: doc_id                 # the field that identifies a document
//	tasks:
//	  summary:
//	    system: "Summarise in two sentences."
//	    user: "{{.text}}"
//	    max_tokens: 120
//	  facts:
//	    user: "Extract the people mentioned in: {{.text}}"
//	    response_format: {json_schema: {type: object, properties: {people: {type: array}}}}
//	    model: gpt-4.1-nano     # per-task override
//	    fallback: [qwen-plus]   # tried when the primary keeps failing
//	  headline:
//	    user: "A headline for: {{.tasks.summary}}"
//
// [Parse] reads it and refuses, naming the field ("tasks.facts.response_format"), unknown
// fields, templates that do not parse, dependencies on missing tasks and cycles.
// Templates are Go text/template over the document's fields; the outputs of other tasks
// are under .tasks (a JSON task's output as its decoded value, so
// {{range .tasks.facts.people}} works). A task that uses another's output runs in a
// later stage.
//
// # Plan, render, run
//
// [NewPlan] checks every document against every template before anything is sent: a
// field a template uses that a row lacks is a [RowError] naming the row and the field,
// as are duplicate ids and lines that are not JSON objects. It renders every request,
// counts its tokens and prices it. [WriteBatch] writes the first-stage requests as
// OpenAI Batch API input.
//
// [Run] sends the requests through a sluice.Engine, one stage at a time; each stage runs
// in rounds, each round one engine job in the store (so it gets the engine's limits,
// retries and ledger). An answer is checked: a JSON task's answer must be complete (not
// cut at max_tokens), JSON, and match its schema. An invalid answer is asked again up to
// the task's retries (a truncated one with twice the max_tokens), then the task's next
// model is tried, as it is after a request fails for good. A cell that gets no answer
// carries the error, never an empty value.
//
// # Packing
//
// A task with pack: N (more than 1) sends its documents' prompts up to N to a request,
// before the stage's first round: the system message asks for a JSON array with one
// {"id": ..., "answer": ...} per document, and the user message is the array of
// {"id": ..., "input": ...} (the documents' rendered user messages; documents whose
// system messages differ go in different packs). The answer is unpacked leniently (the
// first JSON array in it, fenced or not); a document it does not cover (missing, null,
// given twice, failing the task's checks) or a pack that failed, was cut at max_tokens or
// is not JSON, falls back to its own request in the normal rounds. Only the primary
// model is packed. A pack's usage and cost are shared among its cells; the
// [Report] counts the cells answered by packs and estimates the prompt tokens saved.
// Packs are cached like any request.
//
// # Budget
//
// [RunConfig.Budget] caps the whole run: every round's engine job spends from one
// sluice.BudgetPool, so the run stops before the cap and the cells it did not reach
// carry "budget exhausted".
//
// # The cache
//
// Every request is content-addressed by [CacheKey]: the upstream's base URL, the
// endpoint and the body. Valid answers are kept in a [Cache] (sqlite.Store implements
// it), and a request whose key is there is not sent: running an unchanged pipeline again
// sends nothing, and changing one task's prompt sends only that task's requests.
// Identical requests within a run are sent once.
//
// # Memory
//
// A run holds a small index per document and per cell, not the documents, the requests
// or the answers, so it scales to millions of documents: [ReadFile] keeps where each
// document is in its file and reads it again when a request is rendered (the file must
// not change meanwhile; [Plan.Close] closes it); each round keeps its requests as cache
// keys and renders a body only when the engine takes it into the ledger; answers are
// written to a temporary file as they come, and [Table.Answer], [Table.WriteCSV] and
// [Table.WriteJSONL] read them back, row by row, until [Table.Close].
package pipeline
