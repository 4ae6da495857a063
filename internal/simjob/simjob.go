// Package simjob starts a job of generated chat requests against the in-process
// simulator, for the tests of the timeline recorder and the dashboard.
package simjob

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/tokens"
)

// Options describe a job to run.
type Options struct {
	JobID string
	// Requests is how many lines the input has; every BadEvery-th line (0: none) is a
	// request the simulator answers 400.
	Requests int
	BadEvery int
	Sim      sim.Config
	Engine   sluice.Config
}

// Job is a job running against the simulator.
type Job struct {
	Run *sluice.Run
	sim *sim.Server
}

// Close stops the simulator; the run must have ended.
func (j *Job) Close() { j.sim.Close() }

// Input is the JSONL input of o: chat requests to gpt-4o-mini.
func Input(o Options) []byte {
	var b bytes.Buffer
	for i := 1; i <= o.Requests; i++ {
		body := map[string]any{"model": "gpt-4o-mini", "max_tokens": 16,
			"messages": []map[string]string{{"role": "user", "content": fmt.Sprintf("question %d", i)}}}
		if o.BadEvery > 0 && i%o.BadEvery == 0 {
			body["messages"] = []map[string]string{{"role": "robot", "content": "beep"}} // answered 400
		}
		line, _ := json.Marshal(map[string]any{"custom_id": fmt.Sprintf("req-%d", i), "method": "POST",
			"url": sluice.EndpointChatCompletions, "body": body})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Start creates the job in st and starts running it on an Engine configured by o.Engine.
func Start(ctx context.Context, st sluice.Store, o Options) (*Job, error) {
	s := sim.New(o.Sim)
	up, err := openai.New(openai.Config{BaseURL: "http://sim.sluice.invalid/v1",
		HTTPClient: &http.Client{Transport: s.Transport()}})
	if err != nil {
		s.Close()
		return nil, err
	}
	eng, err := sluice.New(st, up, o.Engine)
	if err != nil {
		s.Close()
		return nil, err
	}
	job := &sluice.Job{ID: o.JobID, State: sluice.JobRunning, CreatedAt: time.Now(), Input: "requests.jsonl",
		Fingerprint: "fp-" + o.JobID, Options: json.RawMessage(`{}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		s.Close()
		return nil, err
	}
	run, err := eng.Start(ctx, job, ingest.NewSource(bytes.NewReader(Input(o)), tokens.Default()))
	if err != nil {
		s.Close()
		return nil, err
	}
	return &Job{Run: run, sim: s}, nil
}
