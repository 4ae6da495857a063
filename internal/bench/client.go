package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/openai"
)

// client is the scenarios' client of sluice serve's Files and Batches API: the openai
// package's, each with its own connections.
type client struct {
	api *openai.Client
}

// newClient returns a client of the sluice serve at base (its /v1 URL) with the client
// key key.
func newClient(base, key string) (*client, error) {
	api, err := openai.New(openai.Config{BaseURL: base, APIKey: key, HTTPClient: &http.Client{}})
	if err != nil {
		return nil, err
	}
	return &client{api: api}, nil
}

// createBatch uploads input (streamed) and creates a batch of chat requests over it.
func (c *client) createBatch(ctx context.Context, input string) (*sluice.Batch, error) {
	f, err := os.Open(input)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	file, err := c.api.UploadFile(ctx, filepath.Base(input), f)
	if err != nil {
		return nil, err
	}
	return c.api.CreateBatch(ctx, file.ID, sluice.EndpointChatCompletions, "24h", nil)
}

// waitBatch polls batch id every period (polling is the client protocol) until done
// says so; a batch that ends other than completed is an error.
func (c *client) waitBatch(ctx context.Context, id string, period time.Duration, done func(*sluice.Batch) bool) (*sluice.Batch, error) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		b, err := c.api.Batch(ctx, id)
		if err != nil {
			return nil, err
		}
		if done(b) {
			return b, nil
		}
		switch b.Status {
		case sluice.BatchFailed, sluice.BatchExpired, sluice.BatchCancelled:
			return nil, fmt.Errorf("batch %s ended %s: %s", id, b.Status, batchErrors(b))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func completed(b *sluice.Batch) bool { return b.Status == sluice.BatchCompleted }

func batchErrors(b *sluice.Batch) string {
	if b.Errors == nil || len(b.Errors.Data) == 0 {
		return "no errors given"
	}
	return b.Errors.Data[0].String()
}

// checkOutput downloads the output file and checks that it has every bench request once,
// each with its own answer.
func (c *client) checkOutput(ctx context.Context, fileID *string, n int) (bool, error) {
	if fileID == nil {
		return false, errors.New("the batch has no output file")
	}
	rc, err := c.api.FileContent(ctx, *fileID)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	seen := make([]bool, n+1)
	lines := 0
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var line struct {
			CustomID string `json:"custom_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return false, fmt.Errorf("output line %d: %w", lines+1, err)
		}
		lines++
		var i int
		if _, err := fmt.Sscanf(line.CustomID, "b%07d", &i); err != nil || i < 1 || i > n || seen[i] ||
			!bytes.Contains(sc.Bytes(), []byte("ask "+line.CustomID)) {
			return false, sc.Err()
		}
		seen[i] = true
	}
	return lines == n, sc.Err()
}
