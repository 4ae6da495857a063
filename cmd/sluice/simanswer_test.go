package main

import (
	"bytes"
	"io"
	"net/http"

	"github.com/sluice-llm/sluice/sim"
)

// answerWithSim answers r with the simulator s and returns the request's body and the
// answer's status (0 when the body could not be read).
func answerWithSim(s *sim.Server, w http.ResponseWriter, r *http.Request) (body []byte, status int) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, 0
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusWriter{ResponseWriter: w}
	s.ServeHTTP(rec, r)
	return body, rec.status
}

// statusWriter records the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}
