package timeline

import "github.com/sluice-llm/sluice"

// runObserver is an Observer that is also told when runs start and end (the Engine tells
// those it knows of).
type runObserver interface {
	RunStarted(r *sluice.Run)
	RunEnded(r *sluice.Run)
}

// Join returns an Observer that tells each of obs (nil ones left out) of every attempt,
// and of every run that starts or ends when they want to know; nil when none is left.
func Join(obs ...sluice.Observer) sluice.Observer {
	var j joined
	for _, o := range obs {
		if o != nil {
			j = append(j, o)
		}
	}
	switch len(j) {
	case 0:
		return nil
	case 1:
		return j[0]
	}
	return j
}

var _ sluice.RunObserver = joined(nil)

type joined []sluice.Observer

func (j joined) ObserveAttempt(a *sluice.Attempt) {
	for _, o := range j {
		o.ObserveAttempt(a)
	}
}

func (j joined) RunStarted(r *sluice.Run) {
	for _, o := range j {
		if ro, ok := o.(runObserver); ok {
			ro.RunStarted(r)
		}
	}
}

func (j joined) RunEnded(r *sluice.Run) {
	for _, o := range j {
		if ro, ok := o.(runObserver); ok {
			ro.RunEnded(r)
		}
	}
}
