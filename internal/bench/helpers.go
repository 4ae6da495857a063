package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sim"
)

// simUpstreamName is the name of the simulator's upstream in the scenarios' servers.
const simUpstreamName = "sim"

// simClient is an upstream client for the in-process simulator s.
func simClient(s *sim.Server) (*openai.Client, error) {
	return openai.New(openai.Config{
		BaseURL:    "http://sim.sluice.invalid/v1",
		HTTPClient: &http.Client{Transport: s.Transport()},
		UserAgent:  "sluice-bench",
	})
}

// newJobID returns a fresh job id.
func newJobID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "job_" + hex.EncodeToString(b)
}

// writeOutputFiles writes the job's output (and, when errorsPath is not "", errors) file
// from the ledger, as sluice run does at the end of a run.
func writeOutputFiles(ctx context.Context, st sluice.Store, jobID, output, errorsPath string) (sluice.OutputCounts, error) {
	out, err := os.Create(output)
	if err != nil {
		return sluice.OutputCounts{}, err
	}
	defer out.Close()
	var ew *os.File
	if errorsPath != "" {
		if ew, err = os.Create(errorsPath); err != nil {
			return sluice.OutputCounts{}, err
		}
		defer ew.Close()
	}
	var errw io.Writer // a nil interface without an errors file
	if ew != nil {
		errw = ew
	}
	counts, err := sluice.WriteOutput(ctx, st, jobID, out, errw)
	if err != nil {
		return counts, err
	}
	if err := out.Close(); err != nil {
		return counts, err
	}
	if ew != nil {
		return counts, ew.Close()
	}
	return counts, nil
}
