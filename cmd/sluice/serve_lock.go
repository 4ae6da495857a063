package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-llm/sluice/internal/storeurl"
)

// serveSlots is how many serve processes of one store on one machine record their
// session in a lock file; one past them runs without, and its batches are taken back
// only after --lease-ttl when it dies.
const serveSlots = 16

// maxSessionLen bounds the session read from a lock file.
const maxSessionLen = 64

// serveLockBase is where the serve lock files of the store at loc are on this machine:
// beside a SQLite file; in the data directory for PostgreSQL (one name per store URL),
// never in the --files-dir that replicas on several machines share.
func serveLockBase(e *env, loc storeurl.Location) (string, error) {
	if loc.Kind == storeurl.SQLite {
		return loc.Path, nil
	}
	def, err := defaultStorePath(e)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(def)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("serve lock: %w", err)
	}
	sum := sha256.Sum256([]byte(loc.URL))
	return filepath.Join(dir, "serve-"+hex.EncodeToString(sum[:8])), nil
}

// takeServeSlot takes the first free of base's serve lock files (base.serve-N.lock),
// held until release or the end of the process, however it ends. It returns the
// session the slot's previous holder recorded in it ("" for none): that process has
// ended, since only its end releases the lock; and it records session in its place,
// before the session takes any lease. With every slot held, or no file locks on this
// system, it records nothing and returns "".
func takeServeSlot(base, session string) (prev string, release func(), err error) {
	for i := range serveSlots {
		f, err := openLocked(fmt.Sprintf("%s.serve-%d.lock", base, i))
		switch {
		case errors.Is(err, errJobLocked):
			continue
		case errors.Is(err, errNoLocks):
			return "", func() {}, nil
		case err != nil:
			return "", nil, fmt.Errorf("serve lock: %w", err)
		}
		prev, err := swapSession(f, session)
		if err != nil {
			unlockFile(f)
			return "", nil, fmt.Errorf("serve lock: %w", err)
		}
		return prev, func() { unlockFile(f) }, nil
	}
	return "", func() {}, nil
}

// swapSession reads the session recorded in f and records session in its place.
func swapSession(f *os.File, session string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(f, maxSessionLen+1))
	if err != nil {
		return "", err
	}
	prev := strings.TrimSpace(string(b))
	if len(prev) > maxSessionLen || strings.ContainsFunc(prev, func(r rune) bool { return r <= ' ' || r > '~' }) {
		prev = "" // not a session this program wrote
	}
	if err := f.Truncate(0); err != nil {
		return "", err
	}
	if _, err := f.WriteAt([]byte(session+"\n"), 0); err != nil {
		return "", err
	}
	return prev, f.Sync()
}
