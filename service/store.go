package service

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/ids"
)

// Store is what the service keeps its state in: the engine's ledger, plus the file and
// batch objects as JSON documents, and the usage of batches (sqlite.Store implements it).
type Store interface {
	sluice.Store
	ObjectStore
	UsageStore
	ReservationStore
	LeaseStore
}

// ObjectStore keeps the service's files and batches as JSON documents owned by a tenant
// (the hash of a client key; the stores name it "owner"). Kinds are "file" and "batch".
type ObjectStore interface {
	// SaveObject stores doc under kind and id, replacing an earlier version.
	SaveObject(ctx context.Context, kind, id, tenant, status string, doc []byte) error
	// Object returns a document, or sluice.ErrNotFound when there is none of tenant's
	// (tenant "": of anyone's).
	Object(ctx context.Context, kind, id, tenant string) ([]byte, error)
	// ListObjects returns up to limit of tenant's documents, newest first (oldest first
	// with asc), after the object with id after ("": from the first), keeping only those
	// whose "purpose" is purpose when it is not "" and never those with status
	// "deleted"; more reports whether further ones match. An after that names no object
	// of tenant's is sluice.ErrNotFound.
	ListObjects(ctx context.Context, kind, tenant, after, purpose string, asc bool, limit int) (docs [][]byte, more bool, err error)
	// ObjectsWithStatus returns every document of kind, of any tenant, with one of
	// statuses.
	ObjectsWithStatus(ctx context.Context, kind string, statuses ...string) ([][]byte, error)
	// DeleteObject removes tenant's object, or returns sluice.ErrNotFound.
	DeleteObject(ctx context.Context, kind, id, tenant string) error
	// SwapObject replaces the status and document of the object of kind with id only
	// while its stored status is was, and reports whether it did (false too when there
	// is no such object): of two servers changing one batch at once, the one that read a
	// stale status finds out, reads it again and does not undo the other's change.
	SwapObject(ctx context.Context, kind, id, was, status string, doc []byte) (bool, error)
}

// LeaseStore keeps the runner leases of objects: which server session runs a batch, and
// until when, so that of several servers on one store exactly one live one runs each
// batch. Times are passed in, never read inside the store; expiry compares the times
// the servers pass, so their clocks should agree to well within a lease.
type LeaseStore interface {
	// TakeLease gives holder the lease on the object of kind with id until until, when no
	// one holds it, the lease expired by now (its until is not after now), or holder holds
	// it already (a renewal, even once expired); it reports whether holder holds it now.
	// The object need not exist.
	TakeLease(ctx context.Context, kind, id, holder string, now, until time.Time) (bool, error)
	// ReleaseLease drops holder's lease on the object, so that another may take it at
	// once; a lease another holds is left alone.
	ReleaseLease(ctx context.Context, kind, id, holder string) error
}

const (
	kindFile  = "file"
	kindBatch = "batch"
)

// newFileID returns a new file id like OpenAI's: "file-" and 26 random letters and digits.
func newFileID() string { return "file-" + rand.Text() }

// newBatchID returns a new batch id: "batch_" and 32 random hex digits.
func newBatchID() string { return "batch_" + ids.Hex(16) }
