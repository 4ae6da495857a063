package batch

import (
	"context"
	"io"

	"github.com/sluice-llm/sluice"
)

// Store is the ledger a Runner keeps a job's requests and parts in.
type Store interface {
	sluice.Store
	// CreatePart stores p, numbering it one after the job's last part (p.Number is set),
	// and claims lines for it in the same transaction: they go in flight under p.Owner()
	// with a lease that never expires. A line that is not pending fails the whole call
	// and nothing is stored.
	CreatePart(ctx context.Context, p *sluice.Part, lines []int64) error
	// UpdatePart saves what a part learns from the provider: FileID, BatchID, Status,
	// Counts, OutputFileID, ErrorFileID, Error and Collected (and UpdatedAt).
	UpdatePart(ctx context.Context, p *sluice.Part) error
	// Parts returns the job's parts in Number order.
	Parts(ctx context.Context, jobID string) ([]*sluice.Part, error)
	// Pending calls fn for every pending request with Line > after, in line order, until
	// fn returns an error or limit requests were given (limit <= 0: no limit).
	Pending(ctx context.Context, jobID string, after int64, limit int, fn func(*sluice.Item) error) error
	// PartItems calls fn, in line order, for every request part number holds (in flight
	// under its owner).
	PartItems(ctx context.Context, jobID string, number int, fn func(*sluice.Item) error) error
	// CompletePart records outcomes for requests part number holds, as Complete does for
	// its owner, and adds the usage of those recorded done to the part's Usage, in one
	// transaction: recording the same outcomes twice changes nothing.
	CompletePart(ctx context.Context, jobID string, number int, outcomes []sluice.Outcome) error
}

// API is a provider's Files and Batches API.
type API interface {
	// UploadFile uploads r as a batch input file named name.
	UploadFile(ctx context.Context, name string, r io.Reader) (*sluice.File, error)
	// CreateBatch creates a batch of the requests in the file inputFileID.
	CreateBatch(ctx context.Context, inputFileID, endpoint, window string, metadata map[string]string) (*sluice.Batch, error)
	// Batch retrieves a batch.
	Batch(ctx context.Context, id string) (*sluice.Batch, error)
	// ListBatches lists up to limit batches, newest first, after the batch with id after
	// ("" from the newest); more reports whether there are further ones.
	ListBatches(ctx context.Context, after string, limit int) (batches []sluice.Batch, more bool, err error)
	// CancelBatch asks for a batch to be cancelled.
	CancelBatch(ctx context.Context, id string) (*sluice.Batch, error)
	// BatchResults calls fn for every line of the output or error file fileID, in order.
	BatchResults(ctx context.Context, fileID string, fn func(*sluice.BatchResult) error) error
	// DeleteFile deletes a file.
	DeleteFile(ctx context.Context, id string) error
}
