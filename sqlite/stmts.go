package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// stmts are the writer's hot statements, prepared once on its one connection.
type stmts struct {
	// AddRequests.
	insertFailed, lineExists, customIDLine, insertedNow, advanceIngested *sql.Stmt
	// Claim.
	claimPending, claimExpired, claimMarkRange, claimMark, addRepaid *sql.Stmt
	// Complete.
	final, progress, release, output *sql.Stmt
}

// requestColumns are the columns of a claimed request, r being request and i its input.
const requestColumns = `r.id, r.line, r.attempts, r.throttled, r.custom_id, r.model, r.prompt_tokens, r.max_output_tokens,
	i.method, i.url, i.body`

// The writer's hot statements, by the method that uses them.
const (
	// AddRequests.
	sqlInsertFailed = `INSERT INTO request (id, state, error_code, finished_at,
			model, prompt_tokens, max_output_tokens, custom_id, holds_id)
		VALUES (?, 3, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING`
	sqlLineExists   = `SELECT EXISTS (SELECT 1 FROM request WHERE id = ?)`
	sqlCustomIDLine = `SELECT line FROM request WHERE job = ? AND custom_id = ? AND holds_id = 1`
	sqlInsertedNow  = `SELECT EXISTS (SELECT 1 FROM request AS r WHERE r.id = ?1 AND r.holds_id = 1
		AND NOT EXISTS (SELECT 1 FROM request_input AS i WHERE i.id = ?1))`
	sqlAdvanceIngested = `UPDATE job SET ingested = MAX(ingested, ?), updated_at = ? WHERE seq = ?`

	// Claim. The limit is +? (see preparedLimit).
	sqlClaimPending = `SELECT ` + requestColumns + `, r.orphaned
		FROM request AS r CROSS JOIN request_input AS i
		WHERE r.job = ? AND r.state = 0 AND i.id = r.id
		ORDER BY r.line ` + preparedLimit
	sqlClaimExpired = `SELECT ` + requestColumns + `, r.orphaned
		FROM request AS r CROSS JOIN request_input AS i
		WHERE r.job = ? AND r.state = 1 AND r.lease_until <= ? AND i.id = r.id
		ORDER BY r.lease_until ` + preparedLimit
	// The pending lines a claim takes are the first of the job's pending lines: the
	// range from the first to the last holds no other pending line. Marking them clears
	// orphaned: the claim counted them (0007_repaid.sql).
	sqlClaimMarkRange = `UPDATE request SET state = 1, owner = ?, lease_until = ?, orphaned = 0
		WHERE id BETWEEN ? AND ? AND state = 0`
	sqlClaimMark = `UPDATE request SET state = 1, owner = ?, lease_until = ?, orphaned = 0
		WHERE id IN (SELECT value FROM json_each(?))`

	// Complete.
	sqlFinal = `UPDATE request SET state = ?, attempts = ?, throttled = ?, status_code = ?, error_code = ?,
			usage_prompt = ?, usage_completion = ?, usage_cached = ?, latency = ?, finished_at = ?,
			owner = NULL, lease_until = NULL
		WHERE id = ? AND state = 1 AND owner = ?`
	sqlProgress = `UPDATE request SET attempts = ?, throttled = ?, status_code = ?, error_code = ?,
			usage_prompt = ?, usage_completion = ?, usage_cached = ?, latency = ?
		WHERE id = ? AND state = 1 AND owner = ?`
	sqlRelease = `UPDATE request SET state = 0, attempts = ?, throttled = ?, owner = NULL, lease_until = NULL
		WHERE id = ? AND state = 1 AND owner = ?`
	sqlOutput = `INSERT INTO request_output (id, request_id, body, error_message) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET request_id = excluded.request_id, body = excluded.body,
			error_message = excluded.error_message`
)

// preparedLimit is how a statement prepared once and run many times takes its LIMIT:
// +?, not ?. SQLite (3.53 here) plans a query with the value bound to a bare LIMIT ?
// and so marks the statement to be compiled again whenever that parameter is bound anew:
// every claim compiled its two queries again, 2.5% of the CPU of bench wire. The unary
// plus hides the parameter from the planner, which plans as for an unknown limit.
const preparedLimit = "LIMIT +?"

func (s *stmts) prepare(ctx context.Context, db *sql.DB) error {
	return s.prepareOf(ctx, db, nil)
}

// prepareOf prepares the statements whose query keep accepts, every one when keep is nil
// (a test of an old schema prepares those its columns allow).
func (s *stmts) prepareOf(ctx context.Context, db *sql.DB, keep func(query string) bool) error {
	for _, p := range s.queries() {
		if keep != nil && !keep(p.query) {
			continue
		}
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.dst = st
	}
	return nil
}

// preparedQuery is a hot statement's text and where it goes once prepared.
type preparedQuery struct {
	dst   **sql.Stmt
	query string
}

// queries are the writer's hot statements.
func (s *stmts) queries() []preparedQuery {
	return []preparedQuery{
		{&s.insertFailed, sqlInsertFailed},
		{&s.lineExists, sqlLineExists},
		{&s.customIDLine, sqlCustomIDLine},
		{&s.insertedNow, sqlInsertedNow},
		{&s.advanceIngested, sqlAdvanceIngested},
		{&s.claimPending, sqlClaimPending},
		{&s.claimExpired, sqlClaimExpired},
		{&s.claimMarkRange, sqlClaimMarkRange},
		{&s.claimMark, sqlClaimMark},
		{&s.addRepaid, sqlAddRepaid},
		{&s.final, sqlFinal},
		{&s.progress, sqlProgress},
		{&s.release, sqlRelease},
		{&s.output, sqlOutput},
	}
}

func (s *stmts) close() error {
	var errs []error
	for _, p := range s.queries() {
		if *p.dst != nil {
			errs = append(errs, (*p.dst).Close())
		}
	}
	return errors.Join(errs...)
}
