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
		insertFailed: tx.StmtContext(ctx, s.st.insertFailed), output: tx.StmtContext(ctx, s.st.output),
		lineExists: tx.StmtContext(ctx, s.st.lineExists), customIDLine: tx.StmtContext(ctx, s.st.customIDLine),
		insertedNowStmt: tx.StmtContext(ctx, s.st.insertedNow),
	}
	var (
		last  int64
		valid []*sluice.NewRequest
	)
	for i := range reqs {
		r := &reqs[i]
		last = max(last, r.Line)
		if r.Line < 1 || r.Line > MaxLine {
			return fmt.Errorf("add requests: line %d: line number out of range [1, %d]", r.Line, int64(MaxLine))
		}
		if r.Err != nil { // holds no custom_id: its place among the valid lines is no matter
			if err := a.addFailed(r, sluice.CodeInvalidRequest, r.Err.Error()); err != nil {
				return fmt.Errorf("add requests: line %d: %w", r.Line, err)
			}
			continue
		}
		valid = append(valid, r)
	}
	if err := s.addValid(ctx, tx, &a, valid); err != nil {
		return fmt.Errorf("add requests: %w", err)
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
	ctx                      context.Context
	job, now                 int64
	insertFailed, output     *sql.Stmt
	lineExists, customIDLine *sql.Stmt
	insertedNowStmt          *sql.Stmt
}

// addValid adds valid lines, many rows per statement: their requests, then, for the lines
// that were not inserted (present already, or duplicates), what addDuplicate does, then
// the inputs of those inserted. A statement that inserted as many rows as it had lines
// inserted them all; only the lines of one that did not are looked up one by one
// (insertedNow): a statement returning the ids it inserted cost a third more than one
// that does not.
func (s *Store) addValid(ctx context.Context, tx *sql.Tx, a *adder, reqs []*sluice.NewRequest) error {
	if len(reqs) == 0 {
		return nil
	}
	var fresh, unsure []*sluice.NewRequest
	args := make([]any, 0, 5*bulkRows)
	err := inChunks(reqs, func(chunk []*sluice.NewRequest) error {
		st, err := s.bulk.stmt(bulkRequest, len(chunk))
		if err != nil {
			return err
		}
		args = args[:0]
		for _, r := range chunk {
			e := &r.Estimate
			args = append(args, rowID(a.job, r.Line), e.Model, e.PromptTokens, e.MaxOutputTokens, r.Request.CustomID)
		}
		res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == int64(len(chunk)) {
			fresh = append(fresh, chunk...)
		} else {
			unsure = append(unsure, chunk...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range unsure {
		inserted, err := a.insertedNow(r)
		if err != nil {
			return fmt.Errorf("line %d: %w", r.Line, err)
		}
		if inserted {
			fresh = append(fresh, r)
			continue
		}
		if err := a.addDuplicate(r); err != nil { // present already, or its custom_id is held
			return fmt.Errorf("line %d: %w", r.Line, err)
		}
	}
	defer clear(args) // bodies: do not keep them past the write
	return inChunks(fresh, func(chunk []*sluice.NewRequest) error {
		st, err := s.bulk.stmt(bulkInput, len(chunk))
		if err != nil {
			return err
		}
		args = args[:0]
		for _, r := range chunk {
			args = append(args, rowID(a.job, r.Line), r.Request.Method, r.Request.URL, blob(r.Request.Body))
		}
		_, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		return err
	})
}

// insertedNow reports whether this call of AddRequests inserted r's request: its row
// holds its custom_id and has no input yet, which AddRequests inserts last. A line present
// before has its input, or holds no custom_id (a line stored failed).
func (a *adder) insertedNow(r *sluice.NewRequest) (bool, error) {
	var inserted bool
	err := a.insertedNowStmt.QueryRowContext(a.ctx, rowID(a.job, r.Line)).Scan(&inserted)
	return inserted, err
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
