package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// choice is a string flag that takes one of a few values: anything else is refused when
// the flag is parsed (exit 2), not ignored.
type choice struct {
	value   *string
	allowed []string
}

func newChoice(p *string, def string, allowed ...string) *choice {
	*p = def
	return &choice{value: p, allowed: allowed}
}

func (c *choice) String() string { return *c.value }
func (c *choice) Type() string   { return "string" }
func (c *choice) Set(s string) error {
	if !slices.Contains(c.allowed, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(c.allowed, ", "))
	}
	*c.value = s
	return nil
}

// refuseFlags hides flags that a command registers with others but cannot use, and
// refuses them when given (why says what to do instead), so that --help lists only flags
// that work and none is silently ignored.
func refuseFlags(cmd *cobra.Command, why string, names ...string) {
	for _, name := range names {
		if err := cmd.Flags().MarkHidden(name); err != nil {
			panic(err) // a flag name that is not registered: a bug
		}
	}
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		for _, name := range names {
			if c.Flags().Changed(name) {
				return usageError("%s does not take --%s: %s", c.CommandPath(), name, why)
			}
		}
		return run(c, args)
	}
}
