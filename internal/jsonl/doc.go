// Package jsonl reads OpenAI Batch API input files: JSON Lines, one request per line.
//
// A [Reader] streams the physical lines of a file one at a time, numbering them as an
// editor would (every line counts, blank ones included) and skipping the blank ones. It
// holds one line in memory at a time, and never more than its line limit: a line longer
// than the limit comes back as a [*sluice.LineError] and is skipped without being held,
// so one bad line never stops a run of a million.
//
// [ParseRequest] checks one line against the Batch API request shape
//
//	{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-4o-mini", ...}}
//
// and returns it as a [sluice.Request] whose body is the raw JSON, passed upstream
// unchanged. Its errors name the line and the field at fault ("line 17: custom_id:
// missing").
//
// Both are on the ingest path of every run, so both are written to be cheap: the reader
// hands out slices of its own buffer, and ParseRequest checks a line's UTF-8 with the
// standard library and its JSON syntax with [Valid] (encoding/json's answers in a sixth
// of its time), then picks out the fields in one light scan of the
// already-valid text, with two allocations per line (the custom_id and the body copy).
package jsonl
