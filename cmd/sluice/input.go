package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/internal/jsonl"
)

// headSize is how much of the input InputHead hashes (jobs made before InputSHA256 was
// recorded are checked with it).
const headSize = 64 << 10

// errReadInterrupted ends a command stopped by Ctrl-C while it read its input from a pipe.
var errReadInterrupted = errors.New("interrupted while reading the input: nothing was sent")

// digest measures an input as it streams past: its size, the SHA-256 of its first
// headSize bytes and of the whole.
type digest struct {
	size       int64
	head, full hash.Hash
}

func newDigest() *digest { return &digest{head: sha256.New(), full: sha256.New()} }

func (d *digest) Write(p []byte) (int, error) {
	if d.size < headSize {
		d.head.Write(p[:min(int64(len(p)), headSize-d.size)])
	}
	d.size += int64(len(p))
	return d.full.Write(p)
}

func (d *digest) record(o *jobOptions) {
	o.InputSize = d.size
	o.InputHead = hex.EncodeToString(d.head.Sum(nil))
	o.InputSHA256 = hex.EncodeToString(d.full.Sum(nil))
}

// prepareInput checks the input a run was given and records its identity in o. A regular
// file is read once through: its SHA-256 covers every byte, so a resume notices any
// change. Standard input ("-"), a pipe or a FIFO can be read only once, so it is copied
// whole into the store's spool directory first (a Ctrl-C meanwhile stops with nothing
// sent), and the job reads, and resumes from, that copy. Compressed (gzip, zstd) input is
// read as it is; other formats and binary input are refused with a usage error.
func prepareInput(e *env, storeFlag string, o *jobOptions, arg string) error {
	if arg == "-" {
		o.Input = "-"
		return spoolInput(e, storeFlag, o, e.stdin)
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return usageError("input %s: %v", arg, err)
	}
	o.Input = abs
	fi, err := os.Stat(abs)
	if err != nil {
		return usageError("read input: %v", err)
	}
	switch {
	case fi.IsDir():
		return usageError("input %s is a directory: give a JSONL file", abs)
	case !fi.Mode().IsRegular():
		f, err := openStream(e, abs)
		if err != nil {
			return err
		}
		defer f.Close()
		return spoolInput(e, storeFlag, o, f)
	}
	f, err := os.Open(abs)
	if err != nil {
		return usageError("read input: %v", err)
	}
	defer f.Close()
	d := newDigest()
	if err := checkInput(io.TeeReader(f, d), abs); err != nil {
		return err
	}
	if _, err := io.Copy(d, f); err != nil {
		return usageError("read input: %v", err)
	}
	d.record(o)
	return nil
}

// checkInput reads the start of an input and refuses it when it is not text that sluice
// can read: an archive, an unknown compression or binary data.
func checkInput(r io.Reader, name string) error {
	in, err := ingest.Open(r)
	if err != nil {
		return inputError(name, err)
	}
	return in.Close()
}

// checkRequests refuses a job's source whose first lines are none of them requests and
// which looks like CSV.
func checkRequests(o jobOptions) error {
	in, err := openSource(o)
	if err != nil {
		return err
	}
	defer in.Close()
	return checkNotCSV(in, o.Input)
}

// inputError turns what ingest refuses into a usage error naming the input.
func inputError(name string, err error) error {
	var fe *ingest.FormatError
	var be *ingest.BinaryError
	if errors.As(err, &fe) || errors.As(err, &be) {
		return usageError("%s: %v", name, err)
	}
	return usageError("read input %s: %v", name, err)
}

// csvSample is how many lines checkNotCSV looks at.
const csvSample = 5

// checkNotCSV refuses an input whose first lines are none of them requests and which
// looks like CSV, naming the lines and pointing to sluice pipeline. Any other bad line
// becomes an error line of the run, as always.
func checkNotCSV(r io.Reader, name string) error {
	rd := jsonl.NewReader(io.LimitReader(r, ingest.SniffSize), 0)
	var bad []string
	commas := 0
	for len(bad) < csvSample {
		line, data, err := rd.Next()
		if err != nil {
			break // the end of the sample; read errors show when the job reads the input
		}
		_, lerr := jsonl.ParseRequest(line, data)
		if lerr == nil {
			return nil
		}
		bad = append(bad, lerr.Error())
		if strings.ContainsAny(string(data), ",\t;") && !strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
			commas++
		}
	}
	if len(bad) == 0 || commas < len(bad) {
		return nil
	}
	return usageError("%s is not a JSONL file of requests:\n  %s\nit looks like CSV: sluice pipeline runs a prompt over each row of a CSV file (see sluice pipeline --help)",
		name, strings.Join(bad, "\n  "))
}

// spoolInput copies a stream into the store's spool directory, named by its SHA-256, and
// makes it the job's source. The same stream piped again finds the same job.
func spoolInput(e *env, storeFlag string, o *jobOptions, r io.Reader) error {
	if o.Output == "" {
		return usageError("%s is a stream, not a file: name the output file with -o", o.Input)
	}
	store, err := spoolBeside(e, storeFlag)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(filepath.Join(filepath.Dir(store), "spool"))
	if err != nil {
		return fmt.Errorf("spool input: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("spool input: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".spool-*.tmp")
	if err != nil {
		return fmt.Errorf("spool input: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	d := newDigest()
	w := io.MultiWriter(d, tmp)
	err = readInterruptibly(e, r, func(r io.Reader) error {
		if err := checkInput(io.TeeReader(r, w), o.Input); err != nil {
			return err
		}
		if _, err := io.Copy(w, r); err != nil {
			return fmt.Errorf("spool input: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("spool input: %w", err)
	}
	d.record(o)
	o.Spool = filepath.Join(dir, o.InputSHA256[:32]+".jsonl")
	// Not renameio: the name is the content's hash, known only once it is all written.
	if err := os.Rename(tmp.Name(), o.Spool); err != nil {
		return fmt.Errorf("spool input: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("spool input: %w", err)
	}
	fmt.Fprintf(e.stderr, "read %s into %s (%d bytes): the job reads and resumes from this copy\n", o.Input, o.Spool, d.size)
	return nil
}

// readInterruptibly runs read over r and stops it at the first Ctrl-C or SIGTERM with
// errReadInterrupted. A read blocked on a pipe is woken by a read deadline; a reader that
// cannot have one is left behind (the command is ending).
func readInterruptibly(e *env, r io.Reader, read func(io.Reader) error) error {
	in := newInterrupt(context.Background(), e, 0, drainRuns, "") // no run yet: the first stops
	defer in.stop()
	done := make(chan error, 1)
	go func() { done <- read(&ctxReader{ctx: in.ctx, r: r}) }()
	select {
	case err := <-done:
		return err
	case <-in.ctx.Done():
	}
	if f, ok := r.(*os.File); ok && f.SetReadDeadline(time.Now()) == nil {
		<-done //nolint:errcheck // the read was stopped on purpose: its error says only that
	}
	return &exitCodeError{code: exitInterrupted, err: errReadInterrupted}
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// source returns the path a job reads its requests from: its spooled copy of a stream,
// or the input file.
func (o jobOptions) source() string {
	if o.Spool != "" {
		return o.Spool
	}
	return o.Input
}

// plainInput is an input file opened for reading its JSONL, decompressed if need be.
type plainInput struct {
	*ingest.Input
	f *os.File
}

func (p *plainInput) Close() error {
	p.Input.Close()
	return p.f.Close()
}

// openSource opens the job's source for reading its JSONL.
func openSource(o jobOptions) (*plainInput, error) {
	in, err := openPlain(o.source())
	switch {
	case errors.Is(err, os.ErrNotExist) && o.Spool != "":
		return nil, usageError("the copy of %s that the job reads (%s) is gone: run the input again with --new", o.Input, o.Spool)
	case errors.Is(err, os.ErrNotExist):
		return nil, usageError("read input: %v", err)
	}
	return in, err
}

// openPlain opens an input file for reading its JSONL, decompressed if need be.
func openPlain(path string) (*plainInput, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, usageError("read input: %v", err)
	}
	in, err := ingest.Open(f)
	if err != nil {
		f.Close()
		return nil, inputError(path, err)
	}
	return &plainInput{Input: in, f: f}, nil
}

// defaultOutput is the output file of an input given no -o: beside it, named after it.
func defaultOutput(input string) string {
	base := input
	for _, ext := range []string{".gz", ".zst", ".jsonl", ".json", ".txt"} {
		base = strings.TrimSuffix(base, ext)
	}
	if base == input {
		base = strings.TrimSuffix(input, filepath.Ext(input))
	}
	return base + ".results.jsonl"
}

// newSource is the engine's source of a job's input lines.
func newSource(in io.Reader, o jobOptions, est sluice.Estimator) *ingest.Source {
	return ingest.NewSourceMax(in, est, o.MaxLineBytes)
}

// inputChanged reports why a job's input file no longer matches what the job read, or ""
// when it does. Spooled input cannot change.
func inputChanged(saved, now jobOptions) string {
	switch {
	case saved.Spool != "":
		return ""
	case saved.InputSHA256 != "" && now.InputSHA256 != "":
		if saved.InputSHA256 != now.InputSHA256 {
			return "its SHA-256 differs"
		}
		return ""
	case saved.InputSize != now.InputSize || saved.InputHead != now.InputHead:
		return "its size or first 64 KiB differ"
	}
	return ""
}

// checkResumeInput refuses to resume a job whose input changed before all of it was read.
func checkResumeInput(e *env, job *sluice.Job, saved jobOptions) error {
	if job.IngestDone || saved.Spool != "" || saved.InputSHA256 == "" {
		return nil
	}
	now := saved
	if err := prepareInput(e, "", &now, saved.Input); err != nil {
		return err
	}
	if why := inputChanged(saved, now); why != "" {
		return usageError("%s has changed since job %s started reading it (%s): restore the file, or run it as a new job with sluice run --new", saved.Input, job.ID, why)
	}
	return nil
}

// shownBadLines is how many invalid lines a run names.
const shownBadLines = 5

// badLines is a Source that keeps the first invalid lines it reads, so that the end of a
// run can name them.
type badLines struct {
	src   sluice.Source
	first []string
	n     int64
}

func (b *badLines) Next() (sluice.NewRequest, error) {
	nr, err := b.src.Next()
	if err == nil && nr.Err != nil {
		b.n++
		if len(b.first) < shownBadLines {
			b.first = append(b.first, nr.Err.Error())
		}
	}
	return nr, err
}

// print names the invalid lines read, if any; call it once the run has ended.
func (b *badLines) print(w io.Writer, input string) {
	if b.n == 0 {
		return
	}
	fmt.Fprintf(w, "%d lines of %s are not valid requests (never sent; each has an error line in the output):\n  %s\n",
		b.n, input, strings.Join(b.first, "\n  "))
	if more := b.n - int64(len(b.first)); more > 0 {
		fmt.Fprintf(w, "  ... and %d more\n", more)
	}
}
