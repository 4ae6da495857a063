package service

import (
	"context"
	"slices"

	"github.com/sluice-llm/sluice"
)

// Route is an engine a batch can run on, and the models routed to it.
type Route struct {
	// Name identifies the route in the batches assigned to it, so that it must stay the
	// same across restarts.
	Name string
	// Models are the models routed here; empty means every model.
	Models []string
	// Engine sends the requests; every batch on the route shares its limits.
	Engine *sluice.Engine
}

func (u *Route) serves(model string) bool {
	return len(u.Models) == 0 || slices.Contains(u.Models, model)
}

// failover picks another upstream for a batch whose run its upstream stopped: one not
// tried yet that serves the batch's model (every model, when the batch has several), the
// least loaded first. It returns "" when there is none.
func (s *Service) failover(rec *batchRecord, tried []string) string {
	load := s.upstreamLoad()
	best := ""
	for i := range s.cfg.Routes {
		up := &s.cfg.Routes[i]
		if slices.Contains(tried, up.Name) {
			continue
		}
		if rec.Model != nil && !up.serves(*rec.Model) || rec.Model == nil && len(up.Models) > 0 {
			continue
		}
		if best == "" || load[up.Name] < load[best] {
			best = up.Name
		}
	}
	return best
}

func (s *Service) route(name string) *Route {
	for i := range s.cfg.Routes {
		if s.cfg.Routes[i].Name == name {
			return &s.cfg.Routes[i]
		}
	}
	return nil
}

// assignRoute picks the route for a valid batch: among those serving every model it
// uses, the one with the fewest batches assigned to it right now; or fails the models
// that no route serves.
func (s *Service) assignRoute(v *validation) {
	models := v.modelsInOrder()
	var candidates []string
	for _, up := range s.cfg.Routes {
		if !slices.ContainsFunc(models, func(m string) bool { return !up.serves(m) }) {
			candidates = append(candidates, up.Name)
		}
	}
	if len(candidates) == 0 {
		for _, m := range models {
			if !slices.ContainsFunc(s.cfg.Routes, func(up Route) bool { return up.serves(m) }) {
				v.fail(v.models[m], codeNoUpstream, "body.model", "line %d: no upstream serves model %q.", v.models[m], m)
			}
		}
		if len(v.errs) == 0 {
			v.fail(0, codeNoUpstream, "body.model", "No one upstream serves all of the models %v: split the batch by model.", models)
		}
		return
	}
	load := s.upstreamLoad()
	v.route = candidates[0]
	for _, c := range candidates[1:] {
		if load[c] < load[v.route] {
			v.route = c
		}
	}
}

// upstreamLoad counts the running batches on each route.
func (s *Service) upstreamLoad() map[string]int {
	ctx := context.WithoutCancel(s.ctx)
	load := map[string]int{}
	docs, err := s.cfg.Store.ObjectsWithStatus(ctx, kindBatch, string(sluice.BatchInProgress))
	if err != nil {
		return load
	}
	for _, doc := range docs {
		if rec, err := decodeRecord[batchRecord](doc); err == nil {
			load[rec.Route]++
		}
	}
	return load
}
