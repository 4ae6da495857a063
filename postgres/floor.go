package postgres

import "sync"

// floors keeps, by job, the line from which a claim looks for pending lines, so that it
// does not walk, in the partial index of pending lines, over the entries of lines claimed
// before (an index keeps them until a vacuum). Below a job's floor, no line is pending
// but the ones this store's claims skipped while other claims held them, and the ones
// that went back to pending since: this store's releases lower the floor, and a claim that
// finds too few lines from the floor looks below it (another process's releases).
type floors struct {
	mu   sync.Mutex
	line map[int64]int64 // job → floor; absent: 1
	gen  uint64          // advanced by each lowering, so that a claim begun before one
}

// get returns the job's floor, and the generation to pass to set.
func (f *floors) get(job int64) (line int64, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.line[job]; ok {
		return l, f.gen
	}
	return 1, f.gen
}

// set raises the job's floor to line, unless it was lowered since get returned gen.
func (f *floors) set(job, line int64, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != gen {
		return
	}
	if f.line == nil {
		f.line = map[int64]int64{}
	}
	f.line[job] = line
}

// forget drops the job's floor.
func (f *floors) forget(job int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	delete(f.line, job)
}

// lower lowers the job's floor to line (0 or 1: the start).
func (f *floors) lower(job, line int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	if l, ok := f.line[job]; ok && line < l {
		f.line[job] = max(line, 1)
	}
}
