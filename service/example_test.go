package service_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-llm/sluice"
	sluiceopenai "github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

// A batch run from Go, with no HTTP in between: the service over a SQLite store and an
// engine (here on the built-in simulator).
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sluice-service")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "serve.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	simulator := sim.New(sim.Config{Seed: 1})
	defer simulator.Close()
	up, err := sluiceopenai.New(sluiceopenai.Config{BaseURL: "http://sim.invalid/v1",
		HTTPClient: &http.Client{Transport: simulator.Transport()}})
	if err != nil {
		log.Fatal(err)
	}
	eng, err := sluice.New(st, up, sluice.Config{})
	if err != nil {
		log.Fatal(err)
	}
	svc, err := service.New(ctx, service.Config{Store: st, FilesDir: filepath.Join(dir, "files"),
		Routes: []service.Route{{Name: "sim", Engine: eng}}, KeyHashes: []string{service.HashKey("sk-alice")}})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close(ctx)

	tenant, client, _ := svc.Authenticate("sk-alice")
	fmt.Println("client key:", client)
	input := `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}}
{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"bye"}]}}
`
	f, err := svc.CreateFile(ctx, tenant, sluice.PurposeBatch, "input.jsonl", strings.NewReader(input))
	if err != nil {
		log.Fatal(err)
	}
	b, err := svc.CreateBatch(ctx, tenant, service.CreateBatchParams{InputFileID: f.ID,
		Endpoint: "/v1/chat/completions", CompletionWindow: service.CompletionWindow})
	if err != nil {
		log.Fatal(err)
	}
	for !b.Status.Terminal() {
		time.Sleep(10 * time.Millisecond)
		if b, err = svc.Batch(ctx, tenant, b.ID); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(b.Status, b.RequestCounts.Completed, "of", b.RequestCounts.Total)

	_, err = svc.CancelBatch(ctx, tenant, b.ID)
	fmt.Println("cancel:", service.ErrorCode(err))
	// Output:
	// client key: true
	// completed 2 of 2
	// cancel: conflict
}
