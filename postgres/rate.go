package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
)

// SaveRate records what a run learned of the upstream at baseURL, replacing what an
// earlier run learned; a zero field keeps the value recorded before.
func (s *Store) SaveRate(ctx context.Context, baseURL string, o sluice.RateObservation) error {
	at := o.At
	if at.IsZero() {
		at = time.Now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO upstream_rate AS u (base_url, rpm, tpm, latency, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (base_url) DO UPDATE SET
			rpm = CASE WHEN excluded.rpm > 0 THEN excluded.rpm ELSE u.rpm END,
			tpm = CASE WHEN excluded.tpm > 0 THEN excluded.tpm ELSE u.tpm END,
			latency = CASE WHEN excluded.latency > 0 THEN excluded.latency ELSE u.latency END,
			updated_at = excluded.updated_at`,
		baseURL, o.RPM, o.TPM, int64(o.Latency), at.UnixNano())
	if err != nil {
		return fmt.Errorf("save rate of %s: %w", baseURL, err)
	}
	return nil
}

// Rate returns what runs learned of the upstream at baseURL; ok is false when nothing
// was recorded.
func (s *Store) Rate(ctx context.Context, baseURL string) (o sluice.RateObservation, ok bool, err error) {
	var latency, at int64
	err = s.pool.QueryRow(ctx, `SELECT rpm, tpm, latency, updated_at FROM upstream_rate WHERE base_url = $1`, baseURL).
		Scan(&o.RPM, &o.TPM, &latency, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, false, nil
	}
	if err != nil {
		return o, false, fmt.Errorf("rate of %s: %w", baseURL, err)
	}
	o.Latency, o.At = time.Duration(latency), time.Unix(0, at)
	return o, true, nil
}
