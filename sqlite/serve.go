package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-llm/sluice"
)

// SaveObject stores a document of sluice serve (a file or a batch, by kind) under id,
// owned by owner, replacing the one stored before. The owner of an existing object is
// never changed.
func (s *Store) SaveObject(ctx context.Context, kind, id, owner, status string, doc []byte) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO serve_object (kind, id, owner, status, doc) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET status = excluded.status, doc = excluded.doc`,
		kind, id, owner, status, doc)
	if err != nil {
		return fmt.Errorf("save %s %s: %w", kind, id, err)
	}
	return nil
}

// Object returns the document of the object of kind with id, or an error wrapping
// sluice.ErrNotFound when there is none or (owner not "") another owner has it.
func (s *Store) Object(ctx context.Context, kind, id, owner string) ([]byte, error) {
	var doc []byte
	err := s.r.QueryRowContext(ctx, `SELECT doc FROM serve_object WHERE kind = ? AND id = ? AND (? = '' OR owner = ?)`,
		kind, id, owner, owner).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		err = sluice.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	return doc, nil
}

// ListObjects returns up to limit documents of owner's objects of kind, newest first (oldest
// first with asc), starting after the object with id after (when not ""); more reports
// whether there are further ones. A purpose that is not "" keeps only the documents whose
// "purpose" field is it; objects with status "deleted" (hidden from their owner) are never
// listed. The filter is applied before the limit, and the cursor is the creation order, so
// pages are exact while objects are added. An after that names no object of owner's is
// ErrNotFound.
func (s *Store) ListObjects(ctx context.Context, kind, owner, after, purpose string, asc bool, limit int) (docs [][]byte, more bool, err error) {
	cmp, order, cursor := "<", "DESC", int64(1<<63-1)
	if asc {
		cmp, order, cursor = ">", "ASC", 0
	}
	if after != "" {
		err := s.r.QueryRowContext(ctx, `SELECT seq FROM serve_object WHERE kind = ? AND id = ? AND owner = ?`,
			kind, after, owner).Scan(&cursor)
		if errors.Is(err, sql.ErrNoRows) {
			err = sluice.ErrNotFound
		}
		if err != nil {
			return nil, false, fmt.Errorf("list %s after %s: %w", kind, after, err)
		}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT doc FROM serve_object
		WHERE kind = ? AND owner = ? AND seq `+cmp+` ? AND status != 'deleted'
			AND (? = '' OR json_extract(CAST(doc AS TEXT), '$.purpose') = ?)
		ORDER BY seq `+order+` LIMIT ?`, kind, owner, cursor, purpose, purpose, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", kind, err)
	}
	defer rows.Close()
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, false, fmt.Errorf("list %s: %w", kind, err)
		}
		docs = append(docs, doc)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list %s: %w", kind, err)
	}
	if len(docs) > limit {
		return docs[:limit], true, nil
	}
	return docs, false, nil
}

// ObjectsWithStatus returns the documents of every object of kind, of any owner, whose
// status is one of statuses, oldest first.
func (s *Store) ObjectsWithStatus(ctx context.Context, kind string, statuses ...string) ([][]byte, error) {
	if len(statuses) == 0 {
		return nil, nil
	}
	args := []any{kind}
	for _, st := range statuses {
		args = append(args, st)
	}
	q := `SELECT doc FROM serve_object WHERE kind = ? AND status IN (?` + strings.Repeat(", ?", len(statuses)-1) + `) ORDER BY seq`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find %s by status: %w", kind, err)
	}
	defer rows.Close()
	var docs [][]byte
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("find %s by status: %w", kind, err)
		}
		docs = append(docs, doc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find %s by status: %w", kind, err)
	}
	return docs, nil
}

// DeleteObject removes owner's object of kind with id, or returns an error wrapping
// sluice.ErrNotFound.
func (s *Store) DeleteObject(ctx context.Context, kind, id, owner string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM serve_object WHERE kind = ? AND id = ? AND owner = ?`, kind, id, owner)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", kind, id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("delete %s %s: %w", kind, id, sluice.ErrNotFound)
	}
	return nil
}
