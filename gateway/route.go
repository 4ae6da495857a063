package gateway

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
)

// upstream is a configured Upstream, ready to send.
type upstream struct {
	Upstream
	base string // BaseURL without a trailing slash
	rt   http.RoundTripper
	auth []string            // the Authorization header value, nil for none
	name []string            // the x-sluice-upstream header value
	urls map[string]*url.URL // where each of Paths goes, parsed once
	// noStreamOptions is set once the upstream refused the stream_options the gateway
	// adds to a stream to learn its usage.
	noStreamOptions atomic.Bool
}

// candidate is one place to send a request: an upstream and the model it is asked for.
type candidate struct {
	up    *upstream
	model string
}

// maxCandidates bounds the places one request is tried.
const maxCandidates = 16

// route returns where a request for model may go, best first, appended to dst: the
// alias target's upstreams, then each fallback's. Among a model's upstreams, those that
// name it come before those that serve every model; within each group the order is
// drawn by weight.
func (g *Gateway) route(model string, dst []candidate) []candidate {
	if to, ok := g.cfg.Aliases[model]; ok {
		model = to
	}
	dst = g.appendModel(dst, model)
	for _, fb := range g.cfg.Fallbacks[model] {
		if to, ok := g.cfg.Aliases[fb]; ok {
			fb = to
		}
		dst = g.appendModel(dst, fb)
	}
	return dst
}

// appendModel appends model's upstreams not yet in dst.
func (g *Gateway) appendModel(dst []candidate, model string) []candidate {
	for _, named := range [2]bool{true, false} {
		start := len(dst)
		for _, u := range g.ups {
			if len(dst) == maxCandidates {
				return dst
			}
			if (len(u.Models) > 0) != named || !u.serves(model) || tried(dst[:start], u, model) {
				continue
			}
			dst = append(dst, candidate{up: u, model: model})
		}
		shuffleByWeight(dst[start:])
	}
	return dst
}

func tried(cs []candidate, u *upstream, model string) bool {
	return slices.ContainsFunc(cs, func(c candidate) bool { return c.up == u && c.model == model })
}

// shuffleByWeight orders cs so that each place goes first with a chance in proportion to
// its weight, and so on for the rest.
func shuffleByWeight(cs []candidate) {
	for i := 0; i < len(cs)-1; i++ {
		var total float64
		for _, c := range cs[i:] {
			total += c.up.Weight
		}
		x := rand.Float64() * total
		for j := i; j < len(cs); j++ {
			if x -= cs[j].up.Weight; x < 0 || j == len(cs)-1 {
				cs[i], cs[j] = cs[j], cs[i]
				break
			}
		}
	}
}

// parseURLs parses where each of Paths goes.
func (u *upstream) parseURLs() error {
	u.urls = make(map[string]*url.URL, len(Paths))
	for _, p := range Paths {
		parsed, err := url.Parse(u.base + strings.TrimPrefix(p, "/v1"))
		if err != nil {
			return fmt.Errorf("upstream %q: %w", u.Name, err)
		}
		u.urls[p] = parsed
	}
	return nil
}
