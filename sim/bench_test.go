package sim

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// BenchmarkServe measures the simulator through its in-process transport, from parallel
// clients, with the requests of sluice's own benchmark (short chat completions echoing
// their prompt, max_tokens 16): requests per second is the number to look at. The target
// is far above 20,000/s on 2 cores, so that the simulator never limits a benchmark of
// sluice itself.
func BenchmarkServe(b *testing.B) {
	s := New(Config{})
	defer s.Close()
	client := &http.Client{Transport: s.Transport()}
	pad := []string{"", " Please answer briefly.", " Consider the context carefully and answer in one short paragraph, citing the key facts."}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var body bytes.Buffer
		for pb.Next() {
			i := seq.Add(1)
			body.Reset()
			fmt.Fprintf(&body, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ask b%07d%s"}],"max_tokens":16}`, i, pad[i%3])
			req, _ := http.NewRequest(http.MethodPost, "http://sim.test/v1/chat/completions", bytes.NewReader(body.Bytes()))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
