// Package input reads a job's input, the OpenAI Batch API's JSONL format, as the
// engine's sluice.Source: for programs that run jobs with sluice.Engine or batch.Ingest
// rather than through the sluice command.
package input

import (
	"io"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/ingest"
)

// NewSource returns a Source of the requests of the JSONL read from r, in line order,
// each estimated with est (tokens.Default() counts offline, with the models' tokenizers).
// It holds one line at a time. A line that is not a valid request, or longer than
// maxLine bytes (0: 64 MiB), comes back with its Err set and is recorded as failed; an
// error from Next means r itself could not be read.
func NewSource(r io.Reader, est sluice.Estimator, maxLine int) sluice.Source {
	return ingest.NewSourceMax(r, est, maxLine)
}
