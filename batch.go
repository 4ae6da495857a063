package sluice

import (
	"encoding/json"
	"strconv"
	"time"
)

// The purposes of files in the Files API that the Batch API uses.
const (
	PurposeBatch       = "batch"        // a batch's input file
	PurposeBatchOutput = "batch_output" // a batch's output or error file
)

// File is the Files API's file object (/v1/files).
type File struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"` // "file"
	Bytes         int64   `json:"bytes"`
	CreatedAt     int64   `json:"created_at"` // Unix seconds
	ExpiresAt     *int64  `json:"expires_at"`
	Filename      string  `json:"filename"`
	Purpose       string  `json:"purpose"`
	Status        string  `json:"status"` // "processed"
	StatusDetails *string `json:"status_details"`
}

// BatchStatus is the status of a batch, as the Batch API names them.
type BatchStatus string

// Batch statuses.
const (
	BatchValidating BatchStatus = "validating"  // the input file is being validated
	BatchFailed     BatchStatus = "failed"      // the input file failed validation; see Errors
	BatchInProgress BatchStatus = "in_progress" // requests are being run
	BatchFinalizing BatchStatus = "finalizing"  // requests are done; output files are being written
	BatchCompleted  BatchStatus = "completed"   // output files are ready
	BatchExpired    BatchStatus = "expired"     // the window passed; finished results are kept
	BatchCancelling BatchStatus = "cancelling"  // cancel requested; requests in flight finish
	BatchCancelled  BatchStatus = "cancelled"   // cancelled; finished results are kept
)

// Terminal reports whether a batch in status s will not change any more.
func (s BatchStatus) Terminal() bool {
	switch s {
	case BatchCompleted, BatchFailed, BatchExpired, BatchCancelled:
		return true
	}
	return false
}

// Batch is the Batch API's batch object (/v1/batches), with every field of the API (null
// where OpenAI has null). Timestamps are Unix seconds, nil until the batch reaches the
// state they name.
type Batch struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"` // "batch"
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

// BatchErrors lists why a batch failed (validation errors of its input file, say).
type BatchErrors struct {
	Object string       `json:"object"` // "list"
	Data   []BatchError `json:"data"`
}

// BatchError is one reason a batch failed, with the input file's line at fault (from 1)
// when there is one.
type BatchError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	Line    *int64  `json:"line"`
}

// String is the error as one line: "line 3: code: message".
func (e BatchError) String() string {
	s := e.Message
	if e.Code != "" {
		s = e.Code + ": " + s
	}
	if e.Line != nil {
		s = "line " + strconv.FormatInt(*e.Line, 10) + ": " + s
	}
	return s
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

// BatchResult is one line of a batch's output or error file: the answer to one request,
// or the error that stands for it.
type BatchResult struct {
	// Line is the line of the file it came from, from 1.
	Line     int64
	CustomID string
	// StatusCode, RequestID and Body are the response (0, "", nil when the line has none).
	StatusCode int
	RequestID  string
	Body       json.RawMessage
	// Usage is what the response's body says it used.
	Usage Usage
	// ErrorCode and ErrorMessage are the line's error object ("batch_expired", say).
	ErrorCode    string
	ErrorMessage string
	// Invalid says why the line could not be read as a result ("" when it could); such a
	// line carries nothing else but Line, and CustomID when it was readable.
	Invalid string
}

// Part is one provider batch of a job run through a provider's Batch API: a group of the
// job's requests with one endpoint and one model, uploaded as one input file. The
// requests a part holds are in flight in the ledger under Owner until the part's results
// are collected.
type Part struct {
	JobID string
	// Number is the part's place among the job's parts, from 1.
	Number int
	// Round is 1 for the parts of the first submission; the parts that resubmit what an
	// earlier round left unfinished have one more.
	Round    int
	Endpoint string // the requests' URL path ("/v1/chat/completions")
	Model    string
	Requests int64 // lines in the part's input file
	Bytes    int64 // size of the part's input file
	// FileID is the uploaded input file ("" until uploaded), BatchID the provider's batch
	// ("" until created) and Status its status ("" until created).
	FileID       string
	BatchID      string
	Status       BatchStatus
	Counts       RequestCounts
	OutputFileID string
	ErrorFileID  string
	// Error says, in the provider's words, why it rejected the part's upload or batch, or
	// why the batch failed.
	Error string
	// Collected is set once the part's results are in the ledger and its other requests
	// are pending again.
	Collected bool
	// Usage sums the usage of the requests the part completed; it is kept by the store as
	// results are recorded.
	Usage     Usage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Owner is the owner the part's requests are in flight under in the ledger.
func (p *Part) Owner() string { return "part-" + strconv.Itoa(p.Number) }
