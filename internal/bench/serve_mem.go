package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/sim"
)

// The serve-mem scenario: tenants each upload a file of text without spaces as large as
// serve allows, and run it as a batch, at once.
const (
	serveMemTenants     = 4
	serveMemFileBytes   = 200_000_000
	serveMemTargetMB    = 300
	serveMemConcurrency = 8
)

// serveMemShapes are the tenants' inputs: the length of each line's prompt and the text
// it is made of. Each is text the tokenizer cannot split: long runs of letters, base64,
// CJK without spaces.
var serveMemShapes = []struct {
	promptBytes int
	text        string // letters, base64 or cjk
}{
	{1 << 20, "letters"},
	{1 << 20, "base64"},
	{256 << 10, "cjk"},
	{4 << 20, "letters"},
}

func serveMemScenario() Scenario {
	return Scenario{
		Name: "serve-mem",
		What: fmt.Sprintf("%d tenants each upload a %d MB file of text without spaces (prompts of 256 KiB to 4 MiB) to sluice serve and run it as a batch at once: peak RSS ≤ %d MB",
			serveMemTenants, serveMemFileBytes/1_000_000, serveMemTargetMB),
		Concurrency: serveMemConcurrency,
		run:         runServeMemBench,
		check: func(r *Result) (bool, string) {
			return r.Exact && r.PeakRSSMB <= serveMemTargetMB,
				fmt.Sprintf("peak RSS %.0f MB (target ≤ %d MB) over %d MB of uploads in %.1fs, every batch complete: %v",
					r.PeakRSSMB, serveMemTargetMB, serveMemTenants*serveMemFileBytes/1_000_000, r.Wall, r.Exact)
		},
	}
}

// runServeMemBench writes the tenants' files, starts sluice serve in this process, and
// measures the process's peak RSS from the first upload until every batch is complete.
// It writes its own inputs: the one runBench writes is empty.
func runServeMemBench(ctx context.Context, sc Scenario, dir, _ string) (*Result, error) {
	inputs := make([]string, serveMemTenants)
	lines := make([]int, serveMemTenants)
	for i := range inputs {
		shape := serveMemShapes[i%len(serveMemShapes)]
		inputs[i] = filepath.Join(dir, fmt.Sprintf("tenant-%d.jsonl", i))
		n, err := writeNoSpaceRequests(inputs[i], serveMemFileBytes, shape.promptBytes, shape.text, uint64(i))
		if err != nil {
			return nil, err
		}
		lines[i] = n
	}
	keys := make([]string, serveMemTenants)
	for i := range keys {
		keys[i] = fmt.Sprintf("sk-tenant-%d", i)
	}
	// sluice serve as the serve command runs it (the same limits, a zero-latency simulator).
	base, s, stop, err := startServe(ctx, dir, serveSetup{name: sc.Name, sim: sim.Config{Seed: 1}, concurrency: sc.Concurrency,
		keys: keys, asCommand: true})
	if err != nil {
		return nil, err
	}
	defer stop()

	runtime.GC()
	resetPeakRSS()
	start := time.Now()
	var wg sync.WaitGroup
	done := make([]int64, serveMemTenants)
	errs := make([]error, serveMemTenants)
	for i := range serveMemTenants {
		wg.Go(func() {
			c, err := newClient(base, keys[i])
			if err != nil {
				errs[i] = err
				return
			}
			b, err := c.createBatch(ctx, inputs[i])
			if err == nil {
				b, err = c.waitBatch(ctx, b.ID, 50*time.Millisecond, completed)
			}
			if err != nil {
				errs[i] = err
				return
			}
			done[i] = b.RequestCounts.Completed
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r := &Result{Scenario: sc.Name, Concurrency: sc.Concurrency, Sent: s.Stats().Requests,
		Wall: time.Since(start).Seconds(), PeakRSSMB: vmHWMMB(), Exact: true}
	for i, n := range done {
		r.Requests += n
		r.Exact = r.Exact && n == int64(lines[i])
	}
	r.Throughput = float64(r.Requests) / r.Wall
	r.Pass, r.Verdict = sc.check(r)
	return r, nil
}

// writeNoSpaceRequests writes chat requests whose prompts are promptBytes of text without
// spaces (letters, base64 or cjk) to path, up to size bytes in all; it returns the lines
// written.
func writeNoSpaceRequests(path string, size, promptBytes int, text string, seed uint64) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(seed, 99))
	const head = `{"custom_id":"m%07d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"`
	const tail = "\"}]}}\n"
	written, n := 0, 0
	prompt := make([]byte, 0, promptBytes+4)
	for written+len(head)+promptBytes+len(tail) <= size || n == 0 {
		prompt = noSpaceText(prompt[:0], r, promptBytes, text)
		k, err := fmt.Fprintf(w, head, n)
		if err == nil {
			_, err = w.Write(prompt)
		}
		if err == nil {
			_, err = w.WriteString(tail)
		}
		if err != nil {
			f.Close()
			return 0, err
		}
		written += k + len(prompt) + len(tail)
		n++
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return 0, err
	}
	return n, nil
}

// noSpaceText appends about n bytes of text without spaces to b.
func noSpaceText(b []byte, r *rand.Rand, n int, text string) []byte {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for len(b) < n {
		switch text {
		case "letters":
			b = append(b, letters[r.IntN(len(letters))])
		case "base64":
			b = append(b, b64[r.IntN(len(b64))])
		default:
			b = fmt.Appendf(b, "%c", rune(0x4e00+r.IntN(0x5000)))
		}
	}
	return b
}
