package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-llm/sluice"
)

// Complete records outcomes for requests claimed by owner in one transaction. Outcomes for
// requests not in flight under owner (never claimed, final, or claimed by another owner
// since) are ignored. A lease that expired but that no other owner took is still owner's.
// Several outcomes for one line apply in order, as if given one at a time.
//
// The outcomes are written many rows per statement: a run of outcomes with no line twice
// is split by what each does to its request (final, progress, release), and each part
// written by statements of up to bulkRows rows: the answers of the requests still in
// flight under owner, then the updates of those requests.
func (s *Store) Complete(ctx context.Context, jobID, owner string, outcomes []sluice.Outcome) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("complete requests: %w", err)
	}
	if len(outcomes) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("complete requests: %w", err)
	}
	defer rollback(tx)
	w := bulkWriter{s: s, ctx: ctx, tx: tx, job: seq, owner: owner, now: time.Now().UnixNano()}
	for len(outcomes) > 0 {
		n := distinctLines(outcomes)
		if err := w.write(outcomes[:n]); err != nil {
			return fmt.Errorf("complete requests: %w", err)
		}
		outcomes = outcomes[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("complete requests: %w", err)
	}
	return nil
}

// distinctLines is the length of the longest prefix of outcomes with no line twice.
func distinctLines(outcomes []sluice.Outcome) int {
	seen := make(map[int64]struct{}, len(outcomes))
	for i := range outcomes {
		if _, dup := seen[outcomes[i].Line]; dup {
			return i
		}
		seen[outcomes[i].Line] = struct{}{}
	}
	return len(outcomes)
}

// bulkRows is the most rows one statement of Complete writes; a part of fewer is written
// by statements of the sizes in bulkSizes, the powers of two: n rows take as many
// statements as n has one bits (at most 6 for 63), where sizes 64, 16, 4 and 1 took up
// to 9, and the ledger writer's commits of 20 to 30 outcomes were written by 4 to 8
// statements each for the requests, and as many for their answers.
const bulkRows = 64

var bulkSizes = [...]int{bulkRows, 32, 16, 8, 4, 2, 1}

// bulkKind is what a statement of Complete does.
type bulkKind int

const (
	bulkFinal    bulkKind = iota // final outcomes: (id, state, attempts, throttled, answer…, finished_at)
	bulkProgress                 // outcomes that keep the lease: (id, attempts, throttled, answer…)
	bulkRelease                  // releases: (id, attempts, throttled)
	bulkOutput                   // answers: (id, request_id, body, error_message)
	bulkRequest                  // AddRequests' new lines: (id, model, prompt_tokens, max_output_tokens, custom_id)
	bulkInput                    // their inputs: (id, method, url, body)
)

// The columns of each kind's rows, after id, and what the update sets from them.
var bulkShapes = [...]struct {
	cols int    // columns per row
	sql  string // the statement's text, with %s for its rows
}{
	bulkFinal: {11, `UPDATE request SET state = v.column2, attempts = v.column3, throttled = v.column4,
			status_code = v.column5, error_code = v.column6, usage_prompt = v.column7,
			usage_completion = v.column8, usage_cached = v.column9, latency = v.column10,
			finished_at = v.column11, owner = NULL, lease_until = NULL
		FROM (VALUES %s) AS v
		WHERE request.id = v.column1 AND request.state = 1 AND request.owner = ?`},
	bulkProgress: {9, `UPDATE request SET attempts = v.column2, throttled = v.column3, status_code = v.column4,
			error_code = v.column5, usage_prompt = v.column6, usage_completion = v.column7,
			usage_cached = v.column8, latency = v.column9
		FROM (VALUES %s) AS v
		WHERE request.id = v.column1 AND request.state = 1 AND request.owner = ?`},
	bulkRelease: {3, `UPDATE request SET state = 0, attempts = v.column2, throttled = v.column3,
			owner = NULL, lease_until = NULL
		FROM (VALUES %s) AS v
		WHERE request.id = v.column1 AND request.state = 1 AND request.owner = ?`},
	// The answers of the requests in flight under owner, written before their update
	// takes them out of flight: one statement where an update returning the requests it
	// applied to, read back row by row, and an insert of their answers took two and a
	// map.
	bulkOutput: {4, `INSERT INTO request_output (id, request_id, body, error_message)
		SELECT v.column1, v.column2, v.column3, v.column4
		FROM (VALUES %s) AS v CROSS JOIN request ON request.id = v.column1
		WHERE request.state = 1 AND request.owner = ?
		ON CONFLICT (id) DO UPDATE SET request_id = excluded.request_id, body = excluded.body,
			error_message = excluded.error_message`},
	// A line present already, or whose custom_id another line holds, is not inserted. The
	// rows go in in order, so of two lines with one custom_id the first holds it.
	bulkRequest: {5, `INSERT INTO request (id, state, model, prompt_tokens, max_output_tokens, custom_id, holds_id)
		SELECT column1, 0, column2, column3, column4, column5, 1 FROM (VALUES %s) WHERE true
		ON CONFLICT DO NOTHING`},
	bulkInput: {4, `INSERT INTO request_input (id, method, url, body) VALUES %s`},
}

// bulkStmts are Complete's statements, for each kind and each of bulkSizes, prepared on
// the writer connection when the store opens (not within a write: the writer has one
// connection, which the write holds).
type bulkStmts struct {
	m map[[2]int]*sql.Stmt // by kind and rows
}

func (b *bulkStmts) prepare(ctx context.Context, db *sql.DB) error {
	b.m = map[[2]int]*sql.Stmt{}
	for kind := range bulkShapes {
		for _, n := range bulkSizes {
			query := bulkQuery(bulkKind(kind), n)
			st, err := db.PrepareContext(ctx, query)
			if err != nil {
				return fmt.Errorf("prepare %q: %w", query, err)
			}
			b.m[[2]int{kind, n}] = st
		}
	}
	return nil
}

// bulkQuery is the statement of kind for n rows.
func bulkQuery(kind bulkKind, n int) string {
	shape := bulkShapes[kind]
	row := "(?" + strings.Repeat(", ?", shape.cols-1) + ")"
	return fmt.Sprintf(shape.sql, row+strings.Repeat(", "+row, n-1))
}

// stmt returns the statement of kind for n rows.
func (b *bulkStmts) stmt(kind bulkKind, n int) (*sql.Stmt, error) {
	st, ok := b.m[[2]int{int(kind), n}]
	if !ok {
		return nil, fmt.Errorf("no statement for %d rows", n)
	}
	return st, nil
}

func (b *bulkStmts) close() error {
	var first error
	for _, st := range b.m {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
	}
	b.m = nil
	return first
}

// bulkWriter writes outcomes of one owner's requests within one transaction.
type bulkWriter struct {
	s     *Store
	ctx   context.Context
	tx    *sql.Tx
	job   int64
	owner string
	now   int64
	args  []any
	kinds [3][]*sluice.Outcome
}

// write records outcomes, no two of the same line.
func (w *bulkWriter) write(outcomes []sluice.Outcome) error {
	for k := range w.kinds {
		w.kinds[k] = w.kinds[k][:0]
	}
	for i := range outcomes {
		o := &outcomes[i]
		var kind bulkKind
		switch o.State {
		case sluice.StateDone, sluice.StateFailed:
			kind = bulkFinal
		case sluice.StateInFlight:
			kind = bulkProgress
		case sluice.StatePending:
			kind = bulkRelease
		default:
			return fmt.Errorf("line %d: unknown state %q", o.Line, o.State)
		}
		if o.Line < 1 || o.Line > MaxLine {
			continue // no such request
		}
		w.kinds[kind] = append(w.kinds[kind], o)
	}
	for kind := bulkFinal; kind <= bulkRelease; kind++ {
		rows := w.kinds[kind]
		// The answers first, while their requests are in flight under owner (a release
		// keeps the last one).
		if kind != bulkRelease {
			if err := w.each(bulkOutput, rows); err != nil {
				return err
			}
		}
		if err := w.each(kind, rows); err != nil {
			return err
		}
	}
	return nil
}

// each writes rows of kind, in statements of the sizes of bulkSizes.
func (w *bulkWriter) each(kind bulkKind, rows []*sluice.Outcome) error {
	return inChunks(rows, func(chunk []*sluice.Outcome) error { return w.exec(kind, chunk) })
}

// inChunks calls fn for consecutive chunks of rows of the sizes of bulkSizes, largest
// first.
func inChunks[T any](rows []T, fn func(chunk []T) error) error {
	for len(rows) > 0 {
		n := 1
		for _, size := range bulkSizes {
			if len(rows) >= size {
				n = size
				break
			}
		}
		if err := fn(rows[:n]); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// exec runs the statement of kind for rows.
func (w *bulkWriter) exec(kind bulkKind, rows []*sluice.Outcome) error {
	st, err := w.s.bulk.stmt(kind, len(rows))
	if err != nil {
		return err
	}
	st = w.tx.StmtContext(w.ctx, st)
	args := w.args[:0]
	for _, o := range rows {
		id := rowID(w.job, o.Line)
		u := &o.Usage
		switch kind {
		case bulkFinal:
			state := stateDone
			if o.State == sluice.StateFailed {
				state = stateFailed
			}
			finished := w.now
			if !o.FinishedAt.IsZero() {
				finished = o.FinishedAt.UnixNano()
			}
			args = append(args, id, state, o.Attempts, o.Throttled, o.StatusCode, o.ErrorCode,
				u.PromptTokens, u.CompletionTokens, u.CachedTokens, int64(o.Latency), finished)
		case bulkProgress:
			args = append(args, id, o.Attempts, o.Throttled, o.StatusCode, o.ErrorCode,
				u.PromptTokens, u.CompletionTokens, u.CachedTokens, int64(o.Latency))
		case bulkRelease:
			args = append(args, id, o.Attempts, o.Throttled)
		case bulkOutput:
			args = append(args, id, o.RequestID, blob(o.Body), o.ErrorMessage)
		}
	}
	args = append(args, w.owner)
	w.args = args
	defer clear(w.args) // bodies: do not keep them past the write
	_, err = st.ExecContext(w.ctx, args...)
	return err
}
