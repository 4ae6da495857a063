package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/postgres"
	"github.com/sluice-llm/sluice/sqlite"
)

// migrator is a store that lists the schema versions it has had applied.
type migrator interface {
	Migrations(ctx context.Context) ([]sluice.Migration, error)
}

var (
	_ migrator = (*sqlite.Store)(nil)
	_ migrator = (*postgres.Store)(nil)
)

func newMigrateCmd(e *env) *cobra.Command {
	var storeFlag string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create the store, or bring its schema up to date, and say what was applied",
		Long: `Migrate applies the schema migrations built into this sluice that the store has not had
yet, and prints each one it applied. Every command does this when it opens a store; run
it on its own to prepare a PostgreSQL database before starting workers, or after an
upgrade. Processes that migrate at once apply each migration once.`,
		Example: `  sluice migrate --store postgres://sluice@db.internal/sluice
  sluice migrate --store 'postgres://sluice@db.internal/sluice?schema=team_a'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			st, where, err := openStore(cmd.Context(), e, storeFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			ms, err := st.(migrator).Migrations(cmd.Context())
			if err != nil {
				return err
			}
			applied := 0
			for _, m := range ms {
				if !m.AppliedAt.Before(start) {
					fmt.Fprintf(e.stdout, "applied %s\n", m.Name)
					applied++
				}
			}
			last := "none"
			if len(ms) > 0 {
				last = ms[len(ms)-1].Name
			}
			if applied == 0 {
				fmt.Fprintf(e.stdout, "%s is up to date: schema %s\n", where, last)
				return nil
			}
			fmt.Fprintf(e.stdout, "%s: %d migrations applied, schema %s\n", where, applied, last)
			return nil
		},
	}
	cmd.Flags().StringVar(&storeFlag, "store", "", storeUsage)
	return cmd
}
