package batch

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
)

// Error codes of a result line without a response that mean the request did not run and
// may be submitted again. Any other code without a response is final.
var unfinishedCodes = map[string]bool{
	"batch_expired":       true,
	"batch_cancelled":     true,
	"batch_canceled":      true,
	"batch_failed":        true,
	"server_error":        true,
	"internal_error":      true,
	"timeout":             true,
	"rate_limit_exceeded": true,
	"":                    true,
}

// heldItem is what collecting needs of a request a part holds: not its body, so that a
// part of large requests does not need their size in memory.
type heldItem struct {
	Line                int64
	Attempts, Throttled int
}

// collect records the results of a part whose batch ended: answers and final errors
// become final in the ledger, and every other request of the part (unanswered, retryable,
// missing from the files) goes back to pending with one more attempt. A part that failed
// validation at the provider fails the lines its errors name and returns the others. It
// can be run again after a crash halfway: what was recorded is no longer the part's.
func (r *Runner) collect(ctx context.Context, p *sluice.Part) error {
	defer r.changed(p.JobID)
	held := map[string]heldItem{}
	var order []int64 // the part's lines still held, in file order
	err := r.store.PartItems(ctx, p.JobID, p.Number, func(it *sluice.Item) error {
		held[it.Request.CustomID] = heldItem{Line: it.Line, Attempts: it.Attempts, Throttled: it.Throttled}
		order = append(order, it.Line)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: collect part %d: %w", errLedger, p.Number, err)
	}
	w := &outcomeWriter{r: r, p: p, now: time.Now()}
	spent := 1 // the round each unfinished request spends
	if p.Status == sluice.BatchFailed && p.BatchID != "" && len(held) == int(p.Requests) {
		b, err := r.api.Batch(ctx, p.BatchID)
		if err != nil {
			return err
		}
		if b.Errors != nil {
			if err := r.failNamedLines(ctx, p, w, held, order, b.Errors.Data); err != nil {
				return err
			}
			if refusedForCapacity(b.Errors.Data) {
				others, err := r.othersProgressed(ctx, p)
				if err != nil {
					return err
				}
				if others {
					spent = 0 // the provider had no room for it yet: no round is spent
				}
			}
		}
	}
	for _, file := range []string{p.OutputFileID, p.ErrorFileID} {
		if file == "" {
			continue
		}
		err := r.api.BatchResults(ctx, file, func(res *sluice.BatchResult) error {
			if res.Invalid != "" {
				w.invalid++
				r.cfg.Logger.Warn("unreadable result line", "part", p.Number, "file", file, "line", res.Line, "why", res.Invalid)
				return nil
			}
			it, ok := held[res.CustomID]
			if !ok {
				w.unknown++ // not the part's, or a custom_id answered twice
				return nil
			}
			delete(held, res.CustomID)
			return w.add(ctx, outcomeOf(&it, res, w.now))
		})
		if err != nil {
			return fmt.Errorf("collect part %d: %w", p.Number, err)
		}
	}
	for _, it := range held { // no result: submit again
		if err := w.add(ctx, sluice.Outcome{Line: it.Line, State: sluice.StatePending, Attempts: it.Attempts + spent, Throttled: it.Throttled}); err != nil {
			return err
		}
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	if w.invalid > 0 || w.unknown > 0 {
		r.cfg.Logger.Warn("part results", "part", p.Number, "unreadable_lines", w.invalid, "unknown_custom_ids", w.unknown)
	}
	p.Collected = true
	if err := r.store.UpdatePart(ctx, p); err != nil {
		return fmt.Errorf("%w: %w", errLedger, err)
	}
	if p.FileID != "" && !r.cfg.KeepFiles {
		// Best effort: a file left behind costs storage, not results.
		if err := r.api.DeleteFile(ctx, p.FileID); err != nil {
			r.cfg.Logger.Warn("delete a collected part's input file", "part", p.Number, "file", p.FileID, "err", err)
		}
	}
	return nil
}

// failNamedLines fails the lines of a part that the provider's validation errors name
// (line numbers of the part's file), with the provider's message, so that the next round
// does not submit them again.
func (r *Runner) failNamedLines(ctx context.Context, p *sluice.Part, w *outcomeWriter, held map[string]heldItem, order []int64, errs []sluice.BatchError) error {
	byLine := make(map[int64]string, len(held))
	for id, it := range held {
		byLine[it.Line] = id
	}
	for _, e := range errs {
		if e.Line == nil || *e.Line < 1 || *e.Line > int64(len(order)) || fileCodes[e.Code] {
			continue
		}
		id, ok := byLine[order[*e.Line-1]]
		if !ok {
			continue
		}
		it := held[id]
		delete(held, id)
		code := e.Code
		if code == "" {
			code = "invalid_request"
		}
		o := sluice.Outcome{Line: it.Line, State: sluice.StateFailed, Attempts: it.Attempts + 1, Throttled: it.Throttled,
			ErrorCode: code, ErrorMessage: "the provider refused the line: " + e.Message, FinishedAt: w.now}
		if err := w.add(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// fileCodes are validation error codes about a part's file as a whole (its size, the
// account's limits), not the line they name: such a line is submitted again.
var fileCodes = map[string]bool{
	"too_many_requests":      true,
	"file_too_large":         true,
	"token_limit_exceeded":   true,
	"empty_file":             true,
	"missing_input_file":     true,
	"rate_limit_exceeded":    true,
	"insufficient_quota":     true,
	"batch_limit_exceeded":   true,
	"request_limit_exceeded": true,
}

// capacityCodes are the codes of a batch refused because the account has too much queued
// already (OpenAI's enqueued-token limit): it may pass once other batches end.
var capacityCodes = map[string]bool{
	"token_limit_exceeded":   true,
	"batch_limit_exceeded":   true,
	"request_limit_exceeded": true,
	"rate_limit_exceeded":    true,
}

// refusedForCapacity reports whether every error of a failed batch is a capacity limit.
func refusedForCapacity(errs []sluice.BatchError) bool {
	for _, e := range errs {
		if !capacityCodes[e.Code] {
			return false
		}
	}
	return len(errs) > 0
}

// othersProgressed reports whether another part of p's round was not refused: when every
// part of a round is refused for capacity, the round is spent all the same, so that a job
// that can never fit ends.
func (r *Runner) othersProgressed(ctx context.Context, p *sluice.Part) (bool, error) {
	parts, err := r.store.Parts(ctx, p.JobID)
	if err != nil {
		return false, fmt.Errorf("%w: %w", errLedger, err)
	}
	for _, o := range parts {
		if o.Round == p.Round && o.Number != p.Number && o.Status != sluice.BatchFailed {
			return true, nil
		}
	}
	return false, nil
}

// outcomeOf turns a result line into the outcome of the request it answers.
func outcomeOf(it *heldItem, res *sluice.BatchResult, now time.Time) sluice.Outcome {
	o := sluice.Outcome{Line: it.Line, Attempts: it.Attempts + 1, Throttled: it.Throttled, FinishedAt: now,
		StatusCode: res.StatusCode, RequestID: res.RequestID, Body: res.Body, Usage: res.Usage,
		ErrorCode: res.ErrorCode, ErrorMessage: res.ErrorMessage}
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		o.State = sluice.StateDone
		o.ErrorCode, o.ErrorMessage = "", ""
	case res.StatusCode != 0:
		ue := &sluice.UpstreamError{StatusCode: res.StatusCode, Code: res.ErrorCode}
		o.State = sluice.StateFailed
		if ue.Retryable() {
			o.State = sluice.StatePending
		}
		if res.StatusCode == 429 {
			o.Throttled++
		}
	case unfinishedCodes[res.ErrorCode]:
		o.State = sluice.StatePending
	default:
		o.State = sluice.StateFailed
	}
	return o
}

// outcomeWriter records a part's outcomes in batches.
type outcomeWriter struct {
	r                *Runner
	p                *sluice.Part
	now              time.Time
	buf              []sluice.Outcome
	invalid, unknown int
}

func (w *outcomeWriter) add(ctx context.Context, o sluice.Outcome) error {
	w.buf = append(w.buf, o)
	if len(w.buf) >= outcomeBatch {
		return w.flush(ctx)
	}
	return nil
}

func (w *outcomeWriter) flush(ctx context.Context) error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.r.store.CompletePart(ctx, w.p.JobID, w.p.Number, w.buf); err != nil {
		return fmt.Errorf("%w: collect part %d: %w", errLedger, w.p.Number, err)
	}
	w.buf = w.buf[:0]
	return nil
}
