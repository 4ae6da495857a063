// Package ingest turns a Batch API JSONL input into the engine's Source: lines are read
// as a stream, validated, and their tokens estimated as they go.
package ingest

import (
	"errors"
	"io"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonl"
)

// Source reads requests from a JSONL stream. It holds one line at a time.
type Source struct {
	r   *jsonl.Reader
	est sluice.Estimator
}

var _ sluice.Source = (*Source)(nil)

// NewSource reads requests from r, estimating each with est. Lines longer than
// jsonl.DefaultMaxLine bytes are errors.
func NewSource(r io.Reader, est sluice.Estimator) *Source {
	return NewSourceMax(r, est, jsonl.DefaultMaxLine)
}

// NewSourceMax is NewSource with lines of at most maxLine bytes (jsonl.DefaultMaxLine when
// 0 or less); a longer line is an error line, skipped without being held in memory.
func NewSourceMax(r io.Reader, est sluice.Estimator, maxLine int) *Source {
	return &Source{r: jsonl.NewReader(r, maxLine), est: est}
}

// validEstimator is an Estimator that can skip checking the syntax of a body ParseRequest
// has accepted (tokens.Estimator does), so that a line's JSON is checked only once.
type validEstimator interface {
	EstimateValid(req *sluice.Request) (sluice.Estimate, error)
}

// Next returns the next line as a request. A line that is not a valid request, or whose
// body cannot be estimated, comes back with Err naming the line and the field.
func (s *Source) Next() (sluice.NewRequest, error) {
	line, data, err := s.r.Next()
	var le *sluice.LineError
	if errors.As(err, &le) {
		return sluice.NewRequest{Line: le.Line, Err: le}, nil
	}
	if err != nil {
		return sluice.NewRequest{}, err
	}
	req, lerr := jsonl.ParseRequest(line, data)
	if lerr != nil {
		return sluice.NewRequest{Line: line, Request: req, Err: lerr}, nil //nolint:nilerr // a bad line is carried in the request, not returned
	}
	var est sluice.Estimate
	if ve, ok := s.est.(validEstimator); ok {
		est, err = ve.EstimateValid(&req)
	} else {
		est, err = s.est.Estimate(&req)
	}
	if err != nil {
		return sluice.NewRequest{Line: line, Request: req, Err: &sluice.LineError{Line: line, Field: "body", Msg: err.Error()}}, nil //nolint:nilerr // a bad line is carried in the request, not returned
	}
	return sluice.NewRequest{Line: line, Request: req, Estimate: est}, nil
}
