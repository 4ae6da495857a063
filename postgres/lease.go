package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
)

// itemColumns are the columns of a claimed request, r being request and i its input.
const itemColumns = `r.line, r.attempts, r.throttled, r.custom_id, r.model, r.prompt_tokens, r.max_output_tokens,
	i.method, i.url, i.body`

// sqlClaim claims, in one statement, up to $2 requests of job $1: the first pending lines
// from line $6 and the leases that expired first (lease_until <= $3), both locked with SKIP LOCKED so
// that concurrent claims pass each other's rows by instead of waiting on them, then the
// first $2 of those in line order go in flight under owner $4 until $5.
// The claim also returns whether each request was orphaned (0002_repaid.sql), and clears it.
const sqlClaim = `WITH pending AS (
		SELECT line, orphaned FROM request WHERE job = $1 AND state = 0 AND line >= $6
		ORDER BY line LIMIT $2 FOR UPDATE SKIP LOCKED
	), expired AS (
		SELECT line, orphaned FROM request WHERE job = $1 AND state = 1 AND lease_until <= $3
		ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED
	), picked AS (
		SELECT line, orphaned FROM pending UNION ALL SELECT line, orphaned FROM expired ORDER BY line LIMIT $2
	)
	UPDATE request AS r SET state = 1, owner = $4, lease_until = $5, orphaned = false
	FROM picked, request_input AS i
	WHERE r.job = $1 AND r.line = picked.line AND i.job = $1 AND i.line = picked.line
	RETURNING ` + itemColumns + `, picked.orphaned`

// sqlAddRepaid counts orphaned requests claimed again.
const sqlAddRepaid = `UPDATE job SET repaid = repaid + $1 WHERE seq = $2`

// Claim takes up to p.Max pending requests, and requests whose lease expired by p.Now,
// marks them in flight under p.Owner until p.Now+p.Lease, and returns them in line order.
// When more leases have expired than p.Max, those that expired first are taken with the
// pending lines. Claims
// by many workers at once each take other rows: rows another claim has locked are
// skipped, never waited on. Lines another process returned to pending (Release) below
// the lines this store claimed last are taken once the lines above them are.
//
// A zero p.Now is the time of the call, on this process's clock.
func (s *Store) Claim(ctx context.Context, p sluice.ClaimParams) ([]sluice.Item, error) {
	n, owner := p.Max, p.Owner
	seq, err := s.jobSeq(ctx, p.JobID)
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	if n <= 0 {
		return nil, nil
	}
	now := nowOr(p.Now)
	from, gen := s.floors.get(seq)
	claim := func(n int, from int64) ([]sluice.Item, error) {
		rows, _ := s.pool.Query(ctx, sqlClaim, seq, n, now.UnixNano(), owner, now.Add(p.Lease).UnixNano(), from)
		items, orphans, err := collectClaimed(rows, n)
		if err == nil && orphans > 0 {
			_, err = s.pool.Exec(ctx, sqlAddRepaid, orphans, seq)
		}
		slices.SortFunc(items, func(a, b sluice.Item) int { return cmp.Compare(a.Line, b.Line) })
		return items, err
	}
	items, err := claim(n, from)
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	next := int64(0) // 0: as it was
	if len(items) > 0 {
		next = items[len(items)-1].Line + 1
	}
	if len(items) < n && from > 1 {
		// The lines from the floor are all taken: look below it too, for lines that went
		// back to pending where this store did not see it (another process's release).
		more, err := claim(n-len(items), 1)
		if err != nil {
			return nil, fmt.Errorf("claim requests: %w", err)
		}
		if len(more) == n-len(items) {
			next = more[len(more)-1].Line + 1 // pending lines may remain above these
		}
		items = append(items, more...)
		slices.SortFunc(items, func(a, b sluice.Item) int { return cmp.Compare(a.Line, b.Line) })
	}
	if next > 0 {
		s.floors.set(seq, next, gen)
	}
	return items, nil
}

// collectClaimed reads the rows of sqlClaim and counts the orphaned requests among them.
func collectClaimed(rows pgx.Rows, sizeHint int) ([]sluice.Item, int, error) {
	items := make([]sluice.Item, 0, sizeHint)
	var (
		it       sluice.Item
		body     []byte
		orphaned bool
		orphans  int
	)
	r, e := &it.Request, &it.Estimate
	_, err := pgx.ForEachRow(rows, []any{&it.Line, &it.Attempts, &it.Throttled, &r.CustomID, &e.Model,
		&e.PromptTokens, &e.MaxOutputTokens, &r.Method, &r.URL, &body, &orphaned}, func() error {
		item := it
		if len(body) > 0 {
			item.Request.Body = slices.Clone(body)
		}
		items = append(items, item)
		if orphaned {
			orphans++
		}
		return nil
	})
	if len(items) == 0 {
		items = nil
	}
	return items, orphans, err
}

// collectItems reads rows of itemColumns.
func collectItems(rows pgx.Rows, sizeHint int) ([]sluice.Item, error) {
	items := make([]sluice.Item, 0, sizeHint)
	var (
		it   sluice.Item
		body []byte
	)
	r, e := &it.Request, &it.Estimate
	_, err := pgx.ForEachRow(rows, []any{&it.Line, &it.Attempts, &it.Throttled, &r.CustomID, &e.Model,
		&e.PromptTokens, &e.MaxOutputTokens, &r.Method, &r.URL, &body}, func() error {
		item := it
		if len(body) > 0 {
			item.Request.Body = slices.Clone(body)
		}
		items = append(items, item)
		return nil
	})
	if len(items) == 0 {
		items = nil
	}
	return items, err
}

// sqlComplete records, in one statement, the outcomes given as arrays ($3…) for requests
// of job $1 in flight under owner $2, and the answers of those it records. It returns the
// lines it recorded.
//
// An outcome row's state is what the request becomes; answered says whether it carries
// an answer (status, error code, usage, latency and an output row): a release alone does
// not, so the request keeps its last one.
const sqlComplete = `WITH o AS (
		SELECT * FROM unnest($3::bigint[], $4::smallint[], $5::bigint[], $6::bigint[], $7::boolean[],
			$8::bigint[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[],
			$15::text[], $16::bytea[], $17::text[])
		AS o(line, state, attempts, throttled, answered, status_code, error_code, usage_prompt, usage_completion,
			usage_cached, latency, finished_at, request_id, body, error_message)
	), u AS (
		UPDATE request AS r SET
			state = o.state, attempts = o.attempts, throttled = o.throttled,
			status_code = CASE WHEN o.answered THEN o.status_code ELSE r.status_code END,
			error_code = CASE WHEN o.answered THEN o.error_code ELSE r.error_code END,
			usage_prompt = CASE WHEN o.answered THEN o.usage_prompt ELSE r.usage_prompt END,
			usage_completion = CASE WHEN o.answered THEN o.usage_completion ELSE r.usage_completion END,
			usage_cached = CASE WHEN o.answered THEN o.usage_cached ELSE r.usage_cached END,
			latency = CASE WHEN o.answered THEN o.latency ELSE r.latency END,
			finished_at = CASE WHEN o.state >= 2 THEN o.finished_at ELSE r.finished_at END,
			owner = CASE WHEN o.state = 1 THEN r.owner END,
			lease_until = CASE WHEN o.state = 1 THEN r.lease_until END
		FROM o
		WHERE r.job = $1 AND r.line = o.line AND r.state = 1 AND r.owner = $2
		RETURNING r.line
	), w AS (
		INSERT INTO request_output (job, line, request_id, body, error_message)
		SELECT $1, o.line, o.request_id, o.body, o.error_message FROM o JOIN u ON u.line = o.line
		WHERE o.answered
		ON CONFLICT (job, line) DO UPDATE SET request_id = excluded.request_id, body = excluded.body,
			error_message = excluded.error_message
	)
	SELECT line FROM u`

// Complete records outcomes for requests claimed by owner, in one statement. Outcomes for
// requests not in flight under owner (never claimed, final, or claimed by another owner
// since) are ignored. A lease that expired but that no other owner took is still owner's.
// Several outcomes for one line apply in order, as if given one at a time.
func (s *Store) Complete(ctx context.Context, jobID, owner string, outcomes []sluice.Outcome) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("complete requests: %w", err)
	}
	if len(outcomes) == 0 {
		return nil
	}
	b, err := newBatch(outcomes)
	if err != nil {
		return fmt.Errorf("complete requests: %w", err)
	}
	if b.released > 0 {
		defer s.floors.lower(seq, b.released)
	}
	if _, err := b.exec(ctx, s.pool, seq, owner); err != nil {
		return fmt.Errorf("complete requests: %w", err)
	}
	return nil
}

// querier is what a Store queries: its pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// batch is a set of outcomes as the arrays of sqlComplete, one row per line.
type batch struct {
	lines, attempts, throttled, statusCode                       []int64
	usagePrompt, usageCompletion, usageCached, latency, finished []int64
	states                                                       []int16
	answered                                                     []bool
	errorCode, requestID, errorMessage                           []string
	bodies                                                       [][]byte
	// done holds, by line, the usage of the rows that end done.
	done map[int64]sluice.Usage
	// released is the lowest line the batch returns to pending (0: none).
	released int64
}

// newBatch folds outcomes into one row per line. Outcomes for one line apply in order,
// and one only applies while the request is still in flight under the owner: after an
// outcome that leaves it in flight, the next replaces it; after one that releases it or
// makes it final, the rest are ignored. A release that follows an answer keeps that
// answer, as a release given on its own keeps the last one recorded.
func newBatch(outcomes []sluice.Outcome) (*batch, error) {
	b := &batch{done: map[int64]sluice.Usage{}}
	at := map[int64]int{} // line → its row
	now := time.Now().UnixNano()
	for i := range outcomes {
		o := &outcomes[i]
		var state int16
		switch o.State {
		case sluice.StatePending:
			state = statePending
		case sluice.StateInFlight:
			state = stateInFlight
		case sluice.StateDone:
			state = stateDone
		case sluice.StateFailed:
			state = stateFailed
		default:
			return nil, fmt.Errorf("line %d: unknown state %q", o.Line, o.State)
		}
		if o.Line < 1 || o.Line > MaxLine {
			continue // no such request
		}
		j, seen := at[o.Line]
		if seen && b.states[j] != stateInFlight {
			continue // released or final by an earlier outcome: no longer the owner's
		}
		if !seen {
			j = b.grow()
			at[o.Line] = j
		}
		b.lines[j], b.states[j], b.attempts[j], b.throttled[j] = o.Line, state, int64(o.Attempts), int64(o.Throttled)
		if state == statePending {
			if b.released == 0 || o.Line < b.released {
				b.released = o.Line
			}
			continue // a release keeps the answer recorded before it, if any
		}
		u := &o.Usage
		b.answered[j], b.statusCode[j], b.errorCode[j] = true, int64(o.StatusCode), o.ErrorCode
		b.usagePrompt[j], b.usageCompletion[j], b.usageCached[j] = u.PromptTokens, u.CompletionTokens, u.CachedTokens
		b.latency[j], b.finished[j] = int64(o.Latency), now
		if !o.FinishedAt.IsZero() {
			b.finished[j] = o.FinishedAt.UnixNano()
		}
		b.requestID[j], b.bodies[j], b.errorMessage[j] = o.RequestID, blob(o.Body), o.ErrorMessage
		if state == stateDone {
			b.done[o.Line] = *u
		}
	}
	return b, nil
}

// grow adds a zero row and returns its index.
func (b *batch) grow() int {
	b.lines = append(b.lines, 0)
	b.states = append(b.states, 0)
	b.attempts = append(b.attempts, 0)
	b.throttled = append(b.throttled, 0)
	b.answered = append(b.answered, false)
	b.statusCode = append(b.statusCode, 0)
	b.errorCode = append(b.errorCode, "")
	b.usagePrompt = append(b.usagePrompt, 0)
	b.usageCompletion = append(b.usageCompletion, 0)
	b.usageCached = append(b.usageCached, 0)
	b.latency = append(b.latency, 0)
	b.finished = append(b.finished, 0)
	b.requestID = append(b.requestID, "")
	b.bodies = append(b.bodies, nil)
	b.errorMessage = append(b.errorMessage, "")
	return len(b.lines) - 1
}

// exec records the batch for owner's requests of job, and returns the lines it recorded.
func (b *batch) exec(ctx context.Context, q querier, job int64, owner string) ([]int64, error) {
	if len(b.lines) == 0 {
		return nil, nil
	}
	rows, _ := q.Query(ctx, sqlComplete, job, owner, b.lines, b.states, b.attempts, b.throttled, b.answered,
		b.statusCode, b.errorCode, b.usagePrompt, b.usageCompletion, b.usageCached, b.latency, b.finished,
		b.requestID, b.bodies, b.errorMessage)
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// Statements of Renew and Release.
const (
	sqlRenew = `UPDATE request SET lease_until = $1 WHERE job = $2 AND state = 1 AND owner = $3`
	// A released request was left in flight without its outcome: it is orphaned
	// (0002_repaid.sql).
	sqlReleaseAll   = `UPDATE request SET state = 0, owner = NULL, lease_until = NULL, orphaned = true WHERE job = $1 AND state = 1`
	sqlReleaseOwner = sqlReleaseAll + ` AND owner = $2`
)

// Renew extends every lease p.Owner holds on the job to p.Now+p.Lease, expired ones that
// no other owner took included. A zero p.Now is the time of the call.
func (s *Store) Renew(ctx context.Context, p sluice.RenewParams) error {
	seq, err := s.jobSeq(ctx, p.JobID)
	if err != nil {
		return fmt.Errorf("renew leases: %w", err)
	}
	if _, err := s.pool.Exec(ctx, sqlRenew, nowOr(p.Now).Add(p.Lease).UnixNano(), seq, p.Owner); err != nil {
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
	defer s.floors.lower(seq, 1)
	if _, err := s.pool.Exec(ctx, q, args...); err != nil {
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
