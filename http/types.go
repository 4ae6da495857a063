package http

import (
	"encoding/json"
	"time"
)

// File is the OpenAI file object.
type File struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"` // always "file"
	Bytes         int64   `json:"bytes"`
	CreatedAt     int64   `json:"created_at"`
	ExpiresAt     *int64  `json:"expires_at"`
	Filename      string  `json:"filename"`
	Purpose       string  `json:"purpose"`
	Status        string  `json:"status"` // always "processed"
	StatusDetails *string `json:"status_details"`
}

// File purposes the server knows.
const (
	PurposeBatch       = "batch"
	PurposeBatchOutput = "batch_output"
)

// fileRecord is a stored file: the API object plus what only the server sees.
type fileRecord struct {
	File
	Owner string `json:"owner"`
	// Path is the content's file name inside the server's files directory.
	Path string `json:"path"`
}

// BatchStatus is the status of a batch, as the OpenAI Batch API names them.
type BatchStatus string

// Batch statuses.
const (
	StatusValidating BatchStatus = "validating"
	StatusFailed     BatchStatus = "failed"
	StatusInProgress BatchStatus = "in_progress"
	StatusFinalizing BatchStatus = "finalizing"
	StatusCompleted  BatchStatus = "completed"
	StatusExpired    BatchStatus = "expired"
	StatusCancelling BatchStatus = "cancelling"
	StatusCancelled  BatchStatus = "cancelled"
)

// terminal reports whether a batch in status s will never change again.
func (s BatchStatus) terminal() bool {
	switch s {
	case StatusFailed, StatusCompleted, StatusExpired, StatusCancelled:
		return true
	}
	return false
}

// activeStatuses are the statuses of batches a server resumes when it starts.
var activeStatuses = []string{string(StatusValidating), string(StatusInProgress), string(StatusFinalizing), string(StatusCancelling)}

// Batch is the OpenAI batch object, with every field of the API (null where OpenAI has
// null).
type Batch struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"` // always "batch"
	Endpoint         string            `json:"endpoint"`
	Model            *string           `json:"model"`
	Errors           *BatchErrors      `json:"errors"`
	InputFileID      string            `json:"input_file_id"`
	CompletionWindow string            `json:"completion_window"`
	Status           BatchStatus       `json:"status"`
	OutputFileID     *string           `json:"output_file_id"`
	ErrorFileID      *string           `json:"error_file_id"`
	CreatedAt        int64             `json:"created_at"`
	InProgressAt     *int64            `json:"in_progress_at"`
	ExpiresAt        *int64            `json:"expires_at"`
	FinalizingAt     *int64            `json:"finalizing_at"`
	CompletedAt      *int64            `json:"completed_at"`
	FailedAt         *int64            `json:"failed_at"`
	ExpiredAt        *int64            `json:"expired_at"`
	CancellingAt     *int64            `json:"cancelling_at"`
	CancelledAt      *int64            `json:"cancelled_at"`
	RequestCounts    RequestCounts     `json:"request_counts"`
	Usage            *BatchUsage       `json:"usage"`
	Metadata         map[string]string `json:"metadata"`
}

// BatchErrors lists why a batch failed validation.
type BatchErrors struct {
	Object string       `json:"object"` // always "list"
	Data   []BatchError `json:"data"`
}

// BatchError is one reason a batch failed, with the input line at fault when there is one.
type BatchError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	Line    *int64  `json:"line"`
}

// RequestCounts counts a batch's requests.
type RequestCounts struct {
	Total     int64 `json:"total"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
}

// BatchUsage is the tokens a batch used, as OpenAI reports them.
type BatchUsage struct {
	InputTokens        int64              `json:"input_tokens"`
	InputTokensDetails InputTokensDetails `json:"input_tokens_details"`
	OutputTokens       int64              `json:"output_tokens"`
	OutputTokensDetail OutputTokenDetails `json:"output_tokens_details"`
	TotalTokens        int64              `json:"total_tokens"`
}

// InputTokensDetails breaks input tokens down.
type InputTokensDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

// OutputTokenDetails breaks output tokens down.
type OutputTokenDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// batchRecord is a stored batch: the API object plus what only the server sees.
type batchRecord struct {
	Batch
	Owner string `json:"owner"`
	// Upstream names the upstream the batch runs on, once validated.
	Upstream string `json:"upstream,omitempty"`
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

// list is an OpenAI list object.
type list[T any] struct {
	Object  string  `json:"object"` // always "list"
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

// deleted answers a file deletion.
type deleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// createBatchRequest is the body of POST /v1/batches.
type createBatchRequest struct {
	InputFileID      string            `json:"input_file_id"`
	Endpoint         string            `json:"endpoint"`
	CompletionWindow string            `json:"completion_window"`
	Metadata         map[string]string `json:"metadata"`
}

func decodeRecord[T any](doc []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(doc, v); err != nil {
		return nil, err
	}
	return v, nil
}

func ptr[T any](v T) *T { return &v }
