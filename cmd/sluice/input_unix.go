//go:build unix

package main

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// openStream opens a FIFO or device for reading. Opening a FIFO blocks until a writer
// opens it; a Ctrl-C or SIGTERM meanwhile stops the command (exit 5), having woken the
// blocked open by opening the FIFO for writing itself.
func openStream(e *env, path string) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	in := newInterrupt(context.Background(), e, 0, drainRuns, "") // no run yet: the first stops
	defer in.stop()
	select {
	case o := <-ch:
		if o.err != nil {
			return nil, usageError("read input: %v", o.err)
		}
		return o.f, nil
	case <-in.ctx.Done():
	}
	wake := time.NewTicker(10 * time.Millisecond)
	defer wake.Stop()
	for {
		w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			w.Close()
		}
		// ENXIO: the open above has not reached the kernel yet; try again.
		if err == nil || !errors.Is(err, syscall.ENXIO) {
			break
		}
		select {
		case o := <-ch:
			ch <- o
		case <-wake.C:
			continue
		}
		break
	}
	if o := <-ch; o.f != nil {
		o.f.Close()
	}
	return nil, &exitCodeError{code: exitInterrupted, err: errReadInterrupted}
}
