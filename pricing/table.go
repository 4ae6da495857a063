package pricing

import (
	_ "embed"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/modelname"
)

// Table is a set of model prices and aliases. The zero Table is empty and ready to use.
// A Table is never modified once built, so it is safe for concurrent use.
type Table struct {
	prices  map[string]Price  // by key(model)
	aliases map[string]string // key(alias) to key(model)
}

//go:embed prices.yaml
var defaultFile []byte

var defaultTable = sync.OnceValue(func() *Table { return mustParse("prices.yaml", defaultFile) })

// Default returns the table built into sluice (see prices.yaml). It is parsed once and
// shared: use Merge to add to it.
func Default() *Table { return defaultTable() }

// mustParse parses a table that ships with sluice; a broken one is a bug in sluice, not
// a condition a caller could handle.
func mustParse(name string, data []byte) *Table {
	t, err := parse(data)
	if err != nil {
		panic("pricing: embedded " + name + " is broken: " + err.Error())
	}
	return t
}

// Merge returns a new table with the prices and aliases of t and o, o's taking
// precedence: a model priced in both gets o's price, and a name that is a price in one
// and an alias in the other takes o's meaning. Neither table is changed; either may be
// nil.
func (t *Table) Merge(o *Table) *Table {
	m := &Table{prices: map[string]Price{}, aliases: map[string]string{}}
	if t != nil {
		maps.Copy(m.prices, t.prices)
		maps.Copy(m.aliases, t.aliases)
	}
	if o != nil {
		for k, p := range o.prices {
			m.prices[k] = p
			delete(m.aliases, k)
		}
		for k, target := range o.aliases {
			m.aliases[k] = target
			delete(m.prices, k)
		}
	}
	return m
}

// Lookup returns the price of a model, as a request's model field or a response names it.
// Case is ignored. When the name itself is not in the table Lookup tries an alias, then
// the name without a provider prefix ("openai/gpt-4o" becomes "gpt-4o"), then without a
// date or "-latest" suffix ("gpt-4o-mini-2024-07-18" becomes "gpt-4o-mini"). The Price
// returned names the model it was found under.
func (t *Table) Lookup(model string) (Price, bool) {
	if t == nil {
		return Price{}, false
	}
	name := modelname.Key(model)
	if name == "" {
		return Price{}, false
	}
	if p, ok := t.find(name); ok {
		return p, true
	}
	bare := modelname.Bare(name)
	if bare != name {
		if p, ok := t.find(bare); ok {
			return p, true
		}
	}
	for s, ok := stripVersion(bare); ok; s, ok = stripVersion(s) {
		if p, found := t.find(s); found {
			return p, true
		}
	}
	return Price{}, false
}

// find looks name up as a model, then as an alias.
func (t *Table) find(name string) (Price, bool) {
	if p, ok := t.prices[name]; ok {
		return p, true
	}
	if target, ok := t.aliases[name]; ok {
		p, ok := t.prices[target]
		return p, ok
	}
	return Price{}, false
}

// Cost is what u costs on model, sent online, at the table's price for it (see Lookup);
// ok is false, and usd 0, when the table has no price for the model. It is the one way
// sluice prices a run's usage: a method value fits pipeline.CostFunc.
func (t *Table) Cost(model string, u sluice.Usage) (usd float64, ok bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	return p.Cost(u, false), true
}

// OnlineCost is Cost with 0 for a model the table has no price for: the form
// sluice.Config.Cost takes, for budgets that count what the upstream charges.
func (t *Table) OnlineCost(model string, u sluice.Usage) float64 {
	usd, _ := t.Cost(model, u)
	return usd
}

// Prices returns every price in the table, sorted by model name.
func (t *Table) Prices() []Price {
	if t == nil {
		return []Price{}
	}
	keys := slices.Sorted(maps.Keys(t.prices))
	out := make([]Price, 0, len(keys))
	for _, k := range keys {
		out = append(out, t.prices[k])
	}
	return out
}

// key is the form model names are compared in.
func key(model string) string { return modelname.Key(model) }

// stripVersion removes one version suffix from a model name: "-latest", a date
// ("-2024-07-18", "-20250514") or a Vertex AI "@" version ("@20240620", "@001").
func stripVersion(name string) (string, bool) {
	if i := strings.LastIndexByte(name, '@'); i > 0 {
		return name[:i], true
	}
	if s, ok := strings.CutSuffix(name, "-latest"); ok && s != "" {
		return s, true
	}
	// -YYYY-MM-DD
	if n := len(name); n > 11 && name[n-11] == '-' && name[n-6] == '-' && name[n-3] == '-' &&
		digits(name[n-10:n-6]) && digits(name[n-5:n-3]) && digits(name[n-2:]) {
		return name[:n-11], true
	}
	// -YYYYMMDD
	if n := len(name); n > 9 && name[n-9] == '-' && digits(name[n-8:]) && strings.HasPrefix(name[n-8:], "20") {
		return name[:n-9], true
	}
	return name, false
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
