package batch

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-llm/sluice"
)

const (
	ingestBatch = 1000    // lines per AddRequests transaction
	ingestBytes = 8 << 20 // bytes of bodies past which a transaction is written early
)

// Ingest adds the rest of src (the lines after job.Ingested) to the job's ledger without
// sending anything, and marks the job's input as whole. A line that is not a valid
// request is recorded as failed, as sluice run records it, and reported to bad (which may
// be nil) with its line and field; it never stops the others.
func Ingest(ctx context.Context, st sluice.Store, job *sluice.Job, src sluice.Source, bad func(*sluice.LineError)) error {
	if job.IngestDone {
		return nil
	}
	batch := make([]sluice.NewRequest, 0, ingestBatch)
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := st.AddRequests(ctx, job.ID, batch); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		job.Ingested = batch[len(batch)-1].Line
		clear(batch)
		batch, size = batch[:0], 0
		return nil
	}
	for {
		nr, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		if nr.Line <= job.Ingested {
			continue
		}
		if nr.Err != nil && bad != nil {
			bad(nr.Err)
		}
		batch = append(batch, nr)
		size += len(nr.Request.Body)
		if len(batch) == ingestBatch || size >= ingestBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	job.IngestDone = true
	if err := st.UpdateJob(ctx, job); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return nil
}
