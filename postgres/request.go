package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
)

// The columns AddRequests copies into.
var (
	requestCopyColumns = []string{"job", "line", "state", "error_code", "finished_at", "model", "prompt_tokens",
		"max_output_tokens", "custom_id"}
	customIDCopyColumns = []string{"job", "custom_id", "line"}
	inputCopyColumns    = []string{"job", "line", "method", "url", "body"}
	outputCopyColumns   = []string{"job", "line", "error_message"}
)

// AddRequests adds lines to a job's ledger in one transaction and advances the job's
// Ingested count to the last line. Lines already present are skipped. A line with Err set
// is stored failed with code sluice.CodeInvalidRequest; a valid line whose custom_id a
// valid line of the job already has is stored failed with code sluice.CodeDuplicateID
// and a message naming that line.
//
// The new rows go in with COPY. When that meets a line already present or a custom_id
// already held (a resumed ingest), one query finds the lines present and one the
// custom_ids held, and the rest is copied. An advisory lock on the job serialises two
// processes adding lines to the same job, so that what the queries found holds until the
// commit.
func (s *Store) AddRequests(ctx context.Context, jobID string, reqs []sluice.NewRequest) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	if len(reqs) == 0 {
		return nil
	}
	var last, first int64 = 0, MaxLine
	lines := make([]int64, len(reqs))
	ids := make([]string, 0, len(reqs))
	for i := range reqs {
		r := &reqs[i]
		if r.Line < 1 || r.Line > MaxLine {
			return fmt.Errorf("add requests: line %d: line number out of range [1, %d]", r.Line, int64(MaxLine))
		}
		lines[i], last, first = r.Line, max(last, r.Line), min(first, r.Line)
		if r.Err == nil {
			ids = append(ids, r.Request.CustomID)
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockJob, int32(seq)); err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	now := time.Now().UnixNano()
	// Lines are new, and their custom_ids unheld, but on the first batches of a resumed
	// ingest: copy them as they are, and look the ledger up only when that fails.
	err = copyNew(ctx, tx, newAdder(seq, now), reqs)
	if isUniqueViolation(err) {
		var a *adder
		if a, err = lookUp(ctx, tx, newAdder(seq, now), lines, ids); err == nil {
			for i := range reqs {
				a.add(&reqs[i])
			}
			err = a.copy(ctx, tx)
		}
	}
	if err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	defer s.floors.lower(seq, first)
	if _, err := tx.Exec(ctx, `UPDATE job SET ingested = GREATEST(ingested, $1), updated_at = $2 WHERE seq = $3`,
		last, now, seq); err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	return nil
}

// adder gathers the rows one AddRequests call copies into the ledger.
type adder struct {
	job, now                         int64
	present                          map[int64]bool   // lines in the ledger, or added by this call
	holder                           map[string]int64 // custom_id → the line holding it
	request, customID, input, output [][]any
}

func newAdder(job, now int64) *adder {
	return &adder{job: job, now: now, present: map[int64]bool{}, holder: map[string]int64{}}
}

// copyNew copies reqs through a as if none of their lines were present and none of their
// custom_ids held, within a savepoint: a unique violation (one was) leaves tx as it was.
func copyNew(ctx context.Context, tx pgx.Tx, a *adder, reqs []sluice.NewRequest) error {
	for i := range reqs {
		a.add(&reqs[i])
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	if err := a.copy(ctx, sp); err != nil {
		rollback(ctx, sp)
		return err
	}
	return sp.Commit(ctx)
}

// lookUp tells a which of lines are present in the ledger and which of ids are held.
func lookUp(ctx context.Context, tx pgx.Tx, a *adder, lines []int64, ids []string) (*adder, error) {
	rows, _ := tx.Query(ctx, `SELECT line FROM request WHERE job = $1 AND line = ANY($2)`, a.job, lines)
	present, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	for _, l := range present {
		a.present[l] = true
	}
	if len(ids) > 0 {
		rows, _ := tx.Query(ctx, `SELECT custom_id, line FROM request_custom_id WHERE job = $1 AND custom_id = ANY($2)`,
			a.job, ids)
		var (
			id   string
			line int64
		)
		if _, err := pgx.ForEachRow(rows, []any{&id, &line}, func() error {
			a.holder[id] = line
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// add adds r's rows, unless its line is present.
func (a *adder) add(r *sluice.NewRequest) {
	if a.present[r.Line] {
		return
	}
	a.present[r.Line] = true
	e := &r.Estimate
	if r.Err != nil {
		a.addFailed(r, sluice.CodeInvalidRequest, r.Err.Error())
		return
	}
	if first, held := a.holder[r.Request.CustomID]; held {
		msg := fmt.Sprintf("line %d: custom_id %q duplicates line %d", r.Line, r.Request.CustomID, first)
		a.addFailed(r, sluice.CodeDuplicateID, msg)
		return
	}
	a.holder[r.Request.CustomID] = r.Line
	a.request = append(a.request, []any{a.job, r.Line, int16(statePending), "", nil, e.Model, e.PromptTokens,
		e.MaxOutputTokens, r.Request.CustomID})
	a.customID = append(a.customID, []any{a.job, r.Request.CustomID, r.Line})
	a.input = append(a.input, []any{a.job, r.Line, r.Request.Method, r.Request.URL, blob(r.Request.Body)})
}

// addFailed adds r as failed before it was ever sent.
func (a *adder) addFailed(r *sluice.NewRequest, code, msg string) {
	e := &r.Estimate
	a.request = append(a.request, []any{a.job, r.Line, int16(stateFailed), code, a.now, e.Model, e.PromptTokens,
		e.MaxOutputTokens, r.Request.CustomID})
	a.output = append(a.output, []any{a.job, r.Line, msg})
}

// copy copies the gathered rows into their tables.
func (a *adder) copy(ctx context.Context, tx pgx.Tx) error {
	for _, c := range []struct {
		table   string
		columns []string
		rows    [][]any
	}{
		{"request", requestCopyColumns, a.request},
		{"request_custom_id", customIDCopyColumns, a.customID},
		{"request_input", inputCopyColumns, a.input},
		{"request_output", outputCopyColumns, a.output},
	} {
		if len(c.rows) == 0 {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.columns, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("copy into %s: %w", c.table, err)
		}
	}
	return nil
}
