package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice/pricing"
)

func newPricesCmd(e *env) *cobra.Command {
	var pricesFlag string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "prices [MODEL...]",
		Short: "Show the price table (USD per million tokens)",
		RunE: func(_ *cobra.Command, args []string) error {
			t, err := loadPrices(pricesFlag)
			if err != nil {
				return err
			}
			var rows []pricing.Price
			if len(args) == 0 {
				rows = t.Prices()
			}
			for _, m := range args {
				p, ok := t.Lookup(m)
				if !ok {
					return usageError("no price for model %q (--prices FILE adds prices)", m)
				}
				rows = append(rows, p)
			}
			if jsonOut {
				return writeJSON(e.stdout, rows)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "MODEL\tINPUT\tCACHED\tOUTPUT\tBATCH IN\tBATCH OUT\tDATE\tSOURCE\t")
			for _, p := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", p.Model, usd(p.Input), usd(p.CachedInput),
					usd(p.Output), usd(p.BatchInput), usd(p.BatchOutput), p.Date, p.Source)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&pricesFlag, "prices", "", "a prices file overriding the built-in table")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	return cmd
}

func usd(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("$%.3f", v)
}
