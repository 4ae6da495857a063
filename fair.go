package sluice

// Fair sharing of an Engine's concurrency slots.
//
// Runs on one Engine share its concurrency window. When the window is full, a freed slot
// goes to a waiting run chosen fairly between tenants first (the tenant holding the
// fewest slots for its weight), then between the tenant's runs (the one that has waited
// longest). So a client with ten batches gets no more slots than a client with one, and
// its ten batches share its slots evenly. Runs started without WithTenant belong to one
// unnamed tenant of weight 1.

// WithTenant makes the run belong to tenant (a client key, say) with weight (1 when not
// positive): when the Engine's slots are contended, tenants get slots in proportion to
// their weights, whatever the number of runs each has, and a tenant's runs share its
// slots evenly.
func WithTenant(tenant string, weight float64) RunOption {
	return func(r *Run) {
		if weight <= 0 {
			weight = 1
		}
		r.tenant, r.weight = tenant, weight
	}
}

// tenantSlots is one tenant's share of the slots. Guarded by Engine.slots.
type tenantSlots struct {
	weight   float64
	inFlight int
	waiting  []*Run // FIFO: a run waits in one place at a time
	served   uint64 // when it was last given a slot, to break ties
}

// fairSlots is the fair queue of an Engine's slots. Guarded by Engine.slots.
type fairSlots struct {
	tenants map[string]*tenantSlots
	waiters int
	clock   uint64
}

func (f *fairSlots) tenant(r *Run) *tenantSlots {
	t := f.tenants[r.tenant]
	if t == nil {
		if f.tenants == nil {
			f.tenants = map[string]*tenantSlots{}
		}
		w := r.weight
		if w <= 0 {
			w = 1
		}
		t = &tenantSlots{weight: w}
		f.tenants[r.tenant] = t
	}
	return t
}

// forget drops a tenant that holds and awaits nothing.
func (f *fairSlots) forget(r *Run, t *tenantSlots) {
	if t.inFlight == 0 && len(t.waiting) == 0 {
		delete(f.tenants, r.tenant)
	}
}

// acquire takes a concurrency slot for r if one is free and no run waits for one, or if
// one was given to r while it waited; otherwise r waits in its tenant's queue and the
// channel returned is closed when a slot is given to it (call acquire again then).
func (e *Engine) acquire(r *Run) (ok bool, wait <-chan struct{}) {
	window := min(e.lim.Window(), e.cfg.Concurrency)
	e.slots.Lock()
	defer e.slots.Unlock()
	if r.granted {
		r.granted = false
		return true, nil
	}
	f := &e.fair
	t := f.tenant(r)
	if e.inFlight < window && f.waiters == 0 {
		e.inFlight++
		t.inFlight++
		return true, nil
	}
	if r.slotWait == nil {
		r.slotWait = make(chan struct{})
		t.waiting = append(t.waiting, r)
		f.waiters++
	}
	wait = r.slotWait
	e.grant(window)
	if r.granted {
		r.granted = false
		return true, nil
	}
	return false, wait
}

// release frees r's slot and gives it to the next waiting run.
func (e *Engine) release(r *Run) {
	window := min(e.lim.Window(), e.cfg.Concurrency)
	e.slots.Lock()
	defer e.slots.Unlock()
	e.inFlight--
	t := e.fair.tenant(r)
	t.inFlight--
	e.fair.forget(r, t)
	e.grant(window)
}

// stopWaiting withdraws r from the queue for a slot, giving back one it was given.
func (e *Engine) stopWaiting(r *Run) {
	window := min(e.lim.Window(), e.cfg.Concurrency)
	e.slots.Lock()
	defer e.slots.Unlock()
	f := &e.fair
	t := f.tenant(r)
	if r.slotWait != nil {
		if i := indexRun(t.waiting, r); i >= 0 {
			t.waiting = append(t.waiting[:i], t.waiting[i+1:]...)
			f.waiters--
		}
		r.slotWait = nil
	}
	if r.granted {
		r.granted = false
		e.inFlight--
		t.inFlight--
	}
	f.forget(r, t)
	e.grant(window)
}

// grant gives free slots to waiting runs: to the tenant that would hold the fewest slots
// for its weight with one more (the one served longest ago on a tie), to its run that has waited longest.
// e.slots must be held.
func (e *Engine) grant(window int) {
	f := &e.fair
	for e.inFlight < window && f.waiters > 0 {
		var best *tenantSlots
		for _, t := range f.tenants {
			if len(t.waiting) == 0 {
				continue
			}
			if best == nil {
				best = t
				continue
			}
			a, b := float64(t.inFlight+1)/t.weight, float64(best.inFlight+1)/best.weight
			if a < b || (a == b && t.served < best.served) {
				best = t
			}
		}
		r := best.waiting[0]
		best.waiting = best.waiting[1:]
		f.waiters--
		f.clock++
		best.served = f.clock
		best.inFlight++
		e.inFlight++
		r.granted = true
		close(r.slotWait)
		r.slotWait = nil
	}
}

func indexRun(runs []*Run, r *Run) int {
	for i, x := range runs {
		if x == r {
			return i
		}
	}
	return -1
}
