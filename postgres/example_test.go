package postgres_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/postgres"
)

// A worker on one of many machines: it opens the shared store, claims requests of a job
// under a lease, and records their answers. Workers elsewhere run the same loop on the
// same job; a worker that dies stops renewing, and its requests go to the others once
// its leases expire. (It needs a PostgreSQL server, so it is compiled, not run.)
func Example_worker() {
	ctx := context.Background()
	st, err := postgres.Open(ctx, "postgres://sluice@db.internal/sluice?schema=team_a")
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	for {
		items, err := st.Claim(ctx, sluice.ClaimParams{JobID: "job-1", Owner: "worker-on-host-a", Max: 256, Lease: time.Minute})
		if err != nil {
			log.Fatal(err)
		}
		if len(items) == 0 {
			break
		}
		outcomes := make([]sluice.Outcome, len(items))
		for i, it := range items {
			// Send it.Request upstream here.
			outcomes[i] = sluice.Outcome{Line: it.Line, State: sluice.StateDone, Attempts: it.Attempts + 1, StatusCode: 200}
		}
		if err := st.Complete(ctx, "job-1", "worker-on-host-a", outcomes); err != nil {
			log.Fatal(err)
		}
	}
	stats, err := st.Stats(ctx, "job-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stats.Done, "done")
}
