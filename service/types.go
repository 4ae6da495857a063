package service

import (
	"encoding/json"
	"time"

	"github.com/sluice-llm/sluice"
)

// fileRecord is a stored file: the API object plus what only the server sees.
type fileRecord struct {
	sluice.File
	// Tenant is the hash of the key that owns the file (stored as "owner").
	Tenant string `json:"owner"`
	// Path is the content's file name inside the server's files directory.
	Path string `json:"path"`
	// Deleted is set when the client deleted the file while a batch that reads it was
	// not final: the file is hidden from the client (404, not listed), but its content
	// stays until the last such batch ends, when it is removed.
	Deleted bool `json:"deleted,omitempty"`
}

// statusDeleted is the stored status of a file its client deleted that a batch still
// reads (ObjectStore.ListObjects never lists it).
const statusDeleted = "deleted"

// activeStatuses are the statuses of batches a server resumes when it starts.
var activeStatuses = []string{string(sluice.BatchValidating), string(sluice.BatchInProgress), string(sluice.BatchFinalizing), string(sluice.BatchCancelling)}

// batchRecord is a stored batch: the API object plus what only the server sees.
type batchRecord struct {
	sluice.Batch
	// Tenant is the hash of the key that owns the batch (stored as "owner").
	Tenant string `json:"owner"`
	// Route names the route the batch runs on, once validated (stored as "upstream").
	Route string `json:"upstream,omitempty"`
	// CountedAt is when the batch was created by the budget clock (Config.Now), Unix
	// seconds: the batch's usage counts in the budget period it falls in. 0 (batches of
	// servers before budgets): CreatedAt.
	CountedAt int64 `json:"counted_at,omitempty"`
}

// countedAt is the time whose budget period the batch's usage counts in.
func (r *batchRecord) countedAt() time.Time {
	if r.CountedAt != 0 {
		return time.Unix(r.CountedAt, 0)
	}
	return time.Unix(r.CreatedAt, 0)
}

// ListParams page through a list: up to Limit objects (0: the list's default), newest
// first or, with Asc, oldest first, after the object with id After ("": from the first).
type ListParams struct {
	After string
	Limit int
	Asc   bool
}

// Page is one page of a list; HasMore reports whether further objects follow.
type Page[T any] struct {
	Data    []T
	HasMore bool
}

// CreateBatchParams are what a client gives to create a batch.
type CreateBatchParams struct {
	InputFileID      string
	Endpoint         string
	CompletionWindow string
	Metadata         map[string]string
}

func decodeRecord[T any](doc []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(doc, v); err != nil {
		return nil, err
	}
	return v, nil
}

func ptr[T any](v T) *T { return &v }
