package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
)

// AddRequests adds lines to a job's ledger in one transaction and advances the job's
// Ingested count to the last line. Lines already present are skipped. A line with Err set
// is stored failed with code sluice.CodeInvalidRequest; a valid line whose custom_id a
// valid line of the job already has is stored failed with code sluice.CodeDuplicateID
// and a message naming that line.
func (s *Store) AddRequests(ctx context.Context, jobID string, reqs []sluice.NewRequest) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	if len(reqs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	defer rollback(tx)
	a := adder{
		ctx: ctx, job: seq, now: time.Now().UnixNano(),
		insert: tx.StmtContext(ctx, s.st.insertRequest), insertFailed: tx.StmtContext(ctx, s.st.insertFailed),
		input: tx.StmtContext(ctx, s.st.insertInput), output: tx.StmtContext(ctx, s.st.output),
		lineExists: tx.StmtContext(ctx, s.st.lineExists), customIDLine: tx.StmtContext(ctx, s.st.customIDLine),
	}
	var last int64
	for i := range reqs {
		r := &reqs[i]
		last = max(last, r.Line)
		if err := a.add(r); err != nil {
			return fmt.Errorf("add requests: line %d: %w", r.Line, err)
		}
	}
	if _, err := tx.StmtContext(ctx, s.st.advanceIngested).ExecContext(ctx, last, a.now, seq); err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	return nil
}

// adder adds lines to one job within one transaction.
type adder struct {
	ctx                                 context.Context
	job, now                            int64
	insert, insertFailed, input, output *sql.Stmt
	lineExists, customIDLine            *sql.Stmt
}

func (a *adder) add(r *sluice.NewRequest) error {
	if r.Line < 1 || r.Line > MaxLine {
		return fmt.Errorf("line number out of range [1, %d]", int64(MaxLine))
	}
	if r.Err != nil {
		return a.addFailed(r, sluice.CodeInvalidRequest, r.Err.Error())
	}
	e := &r.Estimate
	id := rowID(a.job, r.Line)
	res, err := a.insert.ExecContext(a.ctx, id, e.Model, e.PromptTokens, e.MaxOutputTokens, r.Request.CustomID)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 { // the line is present already, or another line holds its custom_id
		return a.addDuplicate(r)
	}
	_, err = a.input.ExecContext(a.ctx, id, r.Request.Method, r.Request.URL, blob(r.Request.Body))
	return err
}

// addDuplicate stores r as a duplicate of the line holding its custom_id, unless r's line
// is present already.
func (a *adder) addDuplicate(r *sluice.NewRequest) error {
	var exists bool
	if err := a.lineExists.QueryRowContext(a.ctx, rowID(a.job, r.Line)).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	var first int64
	if err := a.customIDLine.QueryRowContext(a.ctx, a.job, r.Request.CustomID).Scan(&first); err != nil {
		return fmt.Errorf("find the line holding custom_id %q: %w", r.Request.CustomID, err)
	}
	msg := fmt.Sprintf("line %d: custom_id %q duplicates line %d", r.Line, r.Request.CustomID, first)
	return a.addFailed(r, sluice.CodeDuplicateID, msg)
}

// addFailed stores r as failed before it was ever sent, unless its line is present already.
func (a *adder) addFailed(r *sluice.NewRequest, code, msg string) error {
	e := &r.Estimate
	id := rowID(a.job, r.Line)
	res, err := a.insertFailed.ExecContext(a.ctx, id, code, a.now,
		e.Model, e.PromptTokens, e.MaxOutputTokens, r.Request.CustomID)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 { // n == 0: present already
		return err
	}
	_, err = a.output.ExecContext(a.ctx, id, "", nil, msg)
	return err
}
