package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sluice-llm/sluice"
)

// Claim takes up to p.Max pending requests, and requests whose lease expired by p.Now,
// marks them in flight under p.Owner until p.Now+p.Lease, and returns them in line order.
// When more leases have expired than p.Max, those that expired first are taken with the
// pending lines. A zero p.Now is the time of the call.
func (s *Store) Claim(ctx context.Context, p sluice.ClaimParams) ([]sluice.Item, error) {
	n := p.Max
	seq, err := s.jobSeq(ctx, p.JobID)
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	if n <= 0 {
		return nil, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	defer rollback(tx)
	now := nowOr(p.Now)
	rows, err := scanClaimed(ctx, tx.StmtContext(ctx, s.st.claimPending), nil, true, seq, n)
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	pending := len(rows)
	rows, err = scanClaimed(ctx, tx.StmtContext(ctx, s.st.claimExpired), rows, true, seq, now.UnixNano(), n)
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	for i := pending; i < len(rows); i++ {
		rows[i].expired = true
	}
	if len(rows) > pending { // expired leases among pending lines: restore line order
		slices.SortFunc(rows, func(a, b claimed) int { return cmp.Compare(a.item.Line, b.item.Line) })
		rows = rows[:min(n, len(rows))]
	}
	if err := s.mark(ctx, tx, seq, p.Owner, now.Add(p.Lease).UnixNano(), rows); err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	items := make([]sluice.Item, len(rows))
	for i := range rows {
		items[i] = rows[i].item
	}
	return items, nil
}

// claimed is a request a claim takes, with its row id.
type claimed struct {
	id       int64
	item     sluice.Item
	orphaned bool // left in flight by a run without its outcome (0007_repaid.sql)
	expired  bool // taken from an expired lease, not from the pending lines
}

// sqlAddRepaid counts the orphaned requests a claim takes again in the job's repaid
// count (0007_repaid.sql).
const sqlAddRepaid = `UPDATE job SET repaid = repaid + ? WHERE seq = ?`

// mark puts the claimed rows in flight under owner until leaseUntil, within the claim's
// transaction, and counts the orphaned ones in the job's repaid count. The pending lines
// claimed are the first of the job's pending lines, so one range marks them; expired
// leases, rare, are marked by id.
func (s *Store) mark(ctx context.Context, tx *sql.Tx, job int64, owner string, leaseUntil int64, rows []claimed) error {
	var (
		expired           []int64
		first, last       int64
		pending, orphaned int64
	)
	for i := range rows {
		c := &rows[i]
		if c.orphaned {
			orphaned++
		}
		if c.expired {
			expired = append(expired, c.id)
			continue
		}
		if pending == 0 {
			first = c.id
		}
		last = c.id
		pending++
	}
	marked := int64(0)
	if pending > 0 {
		res, err := tx.StmtContext(ctx, s.st.claimMarkRange).ExecContext(ctx, owner, leaseUntil, first, last)
		if err != nil {
			return err
		}
		m, err := res.RowsAffected()
		if err != nil {
			return err
		}
		marked += m
	}
	if len(expired) > 0 {
		res, err := tx.StmtContext(ctx, s.st.claimMark).ExecContext(ctx, owner, leaseUntil, idList(expired))
		if err != nil {
			return err
		}
		m, err := res.RowsAffected()
		if err != nil {
			return err
		}
		marked += m
	}
	if marked != int64(len(rows)) {
		return fmt.Errorf("marked %d of %d requests in flight", marked, len(rows))
	}
	if orphaned > 0 {
		if _, err := tx.StmtContext(ctx, s.st.addRepaid).ExecContext(ctx, orphaned, job); err != nil {
			return err
		}
	}
	return nil
}

// claimRows appends the rows of a query of requestColumns to dst.
func claimRows(ctx context.Context, st *sql.Stmt, dst []claimed, args ...any) ([]claimed, error) {
	return scanClaimed(ctx, st, dst, false, args...)
}

// scanClaimed appends the rows of a query of requestColumns to dst; with orphaned, the
// query has the column orphaned after them.
func scanClaimed(ctx context.Context, st *sql.Stmt, dst []claimed, orphaned bool, args ...any) ([]claimed, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return dst, err
	}
	defer rows.Close()
	// One row is scanned into c and body, then copied to dst: the scan's destinations
	// escape, so a row of its own would each be allocated.
	var (
		c    claimed
		body []byte
	)
	r, e := &c.item.Request, &c.item.Estimate
	dest := []any{&c.id, &c.item.Line, &c.item.Attempts, &c.item.Throttled, &r.CustomID, &e.Model, &e.PromptTokens,
		&e.MaxOutputTokens, &r.Method, &r.URL, &body, &c.orphaned}
	if !orphaned {
		dest = dest[:len(dest)-1]
	}
	for rows.Next() {
		c, body = claimed{}, nil
		if err := rows.Scan(dest...); err != nil {
			return dst, err
		}
		if len(body) > 0 {
			r.Body = body
		}
		dst = append(dst, c)
	}
	return dst, rows.Err()
}

// idList is ids as a JSON array, for json_each.
func idList(ids []int64) string {
	b := make([]byte, 0, 2+len(ids)*8)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// completer records outcomes of one owner's requests within one transaction, one
// statement per outcome (CompletePart; Complete writes many rows per statement).
type completer struct {
	ctx                              context.Context
	job                              int64
	owner                            string
	now                              int64
	final, progress, release, output *sql.Stmt
}

// completer returns a completer of owner's requests of job within tx.
func (s *Store) completer(ctx context.Context, tx *sql.Tx, job int64, owner string) *completer {
	return &completer{
		ctx: ctx, job: job, owner: owner, now: time.Now().UnixNano(),
		final: tx.StmtContext(ctx, s.st.final), progress: tx.StmtContext(ctx, s.st.progress),
		release: tx.StmtContext(ctx, s.st.release), output: tx.StmtContext(ctx, s.st.output),
	}
}

// complete records o, and reports whether it applied: false when o's request is not in
// flight under c's owner.
func (c *completer) complete(o *sluice.Outcome) (applied bool, err error) {
	if o.Line < 1 || o.Line > MaxLine {
		return false, nil // no such request
	}
	id := rowID(c.job, o.Line)
	u := &o.Usage
	var res sql.Result
	switch o.State {
	case sluice.StatePending:
		res, err = c.release.ExecContext(c.ctx, o.Attempts, o.Throttled, id, c.owner)
	case sluice.StateInFlight:
		res, err = c.progress.ExecContext(c.ctx, o.Attempts, o.Throttled, o.StatusCode, o.ErrorCode,
			u.PromptTokens, u.CompletionTokens, u.CachedTokens, int64(o.Latency), id, c.owner)
	case sluice.StateDone, sluice.StateFailed:
		state := stateDone
		if o.State == sluice.StateFailed {
			state = stateFailed
		}
		finished := c.now
		if !o.FinishedAt.IsZero() {
			finished = o.FinishedAt.UnixNano()
		}
		res, err = c.final.ExecContext(c.ctx, state, o.Attempts, o.Throttled, o.StatusCode, o.ErrorCode,
			u.PromptTokens, u.CompletionTokens, u.CachedTokens, int64(o.Latency), finished, id, c.owner)
	default:
		return false, fmt.Errorf("unknown state %q", o.State)
	}
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err // n == 0: not in flight under this owner
	}
	if o.State == sluice.StatePending {
		return true, nil // a released request keeps its last answer
	}
	if _, err := c.output.ExecContext(c.ctx, id, o.RequestID, blob(o.Body), o.ErrorMessage); err != nil {
		return false, err
	}
	return true, nil
}

// Statements of Renew and Release.
const (
	sqlRenew = `UPDATE request SET lease_until = ? WHERE job = ? AND state = 1 AND owner = ?`
	// A released request was left in flight without its outcome: it is orphaned
	// (0007_repaid.sql).
	sqlReleaseAll   = `UPDATE request SET state = 0, owner = NULL, lease_until = NULL, orphaned = 1 WHERE job = ? AND state = 1`
	sqlReleaseOwner = sqlReleaseAll + ` AND owner = ?`
)

// Renew extends every lease p.Owner holds on the job to p.Now+p.Lease, expired ones that
// no other owner took included. A zero p.Now is the time of the call.
func (s *Store) Renew(ctx context.Context, p sluice.RenewParams) error {
	seq, err := s.jobSeq(ctx, p.JobID)
	if err != nil {
		return fmt.Errorf("renew leases: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, sqlRenew, nowOr(p.Now).Add(p.Lease).UnixNano(), seq, p.Owner); err != nil {
		return fmt.Errorf("renew leases: %w", err)
	}
	return nil
}

// Release returns requests in flight to pending without spending an attempt: those of
// owner, or of every owner when owner is "".
func (s *Store) Release(ctx context.Context, jobID, owner string) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("release requests: %w", err)
	}
	q, args := sqlReleaseOwner, []any{seq, owner}
	if owner == "" {
		q, args = sqlReleaseAll, []any{seq}
	}
	if _, err := s.w.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("release requests: %w", err)
	}
	return nil
}

// nowOr is t, or the time of the call when t is zero: the store's reading of a Now
// parameter.
func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
