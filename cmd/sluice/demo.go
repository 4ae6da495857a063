package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
)

func newDemoCmd(e *env) *cobra.Command {
	f := &runFlags{}
	var n int
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run sample requests against the built-in simulator (no API key needed)",
		Long: `Demo starts the simulator in-process (with a little latency, hidden rate limits and a few
injected faults), writes sample requests, runs them exactly as "sluice run" does and prints
the report. Nothing leaves this machine. The job is kept in the store (--store, default
$SLUICE_STORE or the user's data directory), so sluice jobs and sluice show find it.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				d, err := os.MkdirTemp("", "sluice-demo-")
				if err != nil {
					return err
				}
				dir = d
			} else if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("demo --dir: %w", err)
			}
			input := filepath.Join(dir, "requests.jsonl")
			if err := writeDemoRequests(input, n); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "wrote %d sample requests to %s\n", n, input)
			f.opts.Sim = true
			f.opts.Output = filepath.Join(dir, "results.jsonl")
			f.opts.Errors = filepath.Join(dir, "errors.jsonl")
			f.fresh = true
			if _, err := storeLocation(e, f.store); err != nil {
				// No home directory to keep a default store in: keep it with the demo's files.
				f.store = filepath.Join(dir, "sluice.db")
			}
			o, err := f.newOptions(e, input)
			if err != nil {
				return err
			}
			st, path, err := openStore(cmd.Context(), e, f.store)
			if err != nil {
				return err
			}
			defer st.Close()
			job, err := findOrCreateJob(cmd.Context(), st, o, true)
			if err != nil {
				return err
			}
			err = execJob(cmd.Context(), e, f, st, path, job, o)
			printDemoNext(e, f.store, path, job.ID)
			return err
		},
	}
	f.register(cmd.Flags(), false)
	cmd.Flags().IntVarP(&n, "requests", "n", 2000, "how many sample requests")
	cmd.Flags().StringVar(&dir, "dir", "", "where to write the requests and results, created if need be (default a new temporary directory)")
	registerSimFlags(cmd.Flags(), &f.simConfig)
	f.registerObserve(cmd.Flags())
	refuseFlags(cmd, "the demo always runs against the built-in simulator; sluice run --base-url URL sends a file to a real upstream", "base-url", "api-key-env", "sim")
	// The demo shows off: hidden limits that sluice has to learn, and faults to retry.
	f.simConfig.RPM, f.simConfig.TPM = 60_000, 3_000_000
	f.simConfig.Error5xx, f.simConfig.Reset = 0.01, 0.005
	return cmd
}

// printDemoNext ends the demo with the commands to try next.
func printDemoNext(e *env, storeFlag, path, job string) {
	store := ""
	if storeFlag != "" {
		store = " --store " + path
	}
	fmt.Fprintf(e.stderr, `
the job is kept in %s. Next:
  sluice show %s%s        # this report again, from the ledger
  sluice jobs%s                   # every job in the store
  sluice run YOUR.jsonl --base-url https://api.openai.com/v1   # a real upstream ($OPENAI_API_KEY)
`, path, job, store, store)
}

// writeDemoRequests writes n sample requests: chat completions in a few languages and
// some embeddings.
func writeDemoRequests(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	topics := []string{
		"Summarise the plot of Hamlet in one sentence.",
		"Classify the sentiment of: 'The delivery was late but the food was great.'",
		"Traduis en anglais : « Le chat dort sur le canapé. »",
		"Extrahiere alle Firmennamen: Siemens und Bosch kooperieren mit SAP.",
		"用一句话解释什么是大语言模型。",
		"Write a haiku about rate limits.",
	}
	enc := json.NewEncoder(w)
	for i := range n {
		req := sluice.Request{CustomID: fmt.Sprintf("demo-%05d", i+1), Method: "POST"}
		var body any
		if i%10 == 9 {
			req.URL = sluice.EndpointEmbeddings
			body = map[string]any{"model": "text-embedding-3-small", "input": topics[i%len(topics)]}
		} else {
			req.URL = sluice.EndpointChatCompletions
			body = map[string]any{
				"model": "gpt-4o-mini",
				"messages": []map[string]string{
					{"role": "system", "content": "You are concise."},
					{"role": "user", "content": fmt.Sprintf("%s (#%d)", topics[i%len(topics)], i+1)},
				},
				"max_tokens": 64,
			}
		}
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		req.Body = b
		if err := enc.Encode(req); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
