package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonl"
)

const (
	codeBatchExpired = "batch_expired"
	msgBatchExpired  = "This request could not be executed before the completion window expired."
)

// unfinished is the error the requests a batch never finished are written with, when
// its run was cut short by the completion window or the key's budget.
type unfinished struct{ code, msg string }

var (
	unfinishedExpired = &unfinished{code: codeBatchExpired, msg: msgBatchExpired}
	unfinishedQuota   = &unfinished{code: codeInsufficientQuota, msg: msgQuotaRequest}
)

// results is what writeResults wrote.
type results struct {
	outputID, errorID *string
	done, failed      int64
	usage             *sluice.BatchUsage
}

// writeResults writes a batch's output file (requests that succeeded) and error file
// (requests that failed, and with unfinished not nil the requests never finished, with
// its error code: batch_expired, insufficient_quota),
// in the Batch API output format and input order, as new batch_output files of the
// batch's tenant. A file that would be empty is not made.
func (s *Service) writeResults(ctx context.Context, rec *batchRecord, unf *unfinished) (*results, error) {
	out, err := s.newOutputFile(rec, "output")
	if err != nil {
		return nil, err
	}
	defer out.abort()
	errs, err := s.newOutputFile(rec, "error")
	if err != nil {
		return nil, err
	}
	defer errs.abort()

	var expired *expiredLines
	if unf != nil {
		if expired, err = s.openExpired(ctx, rec, errs, unf); err != nil {
			return nil, err
		}
		defer expired.close()
	}
	res := &results{}
	var line []byte
	err = s.cfg.Store.Results(ctx, rec.ID, 0, 0, func(r *sluice.Result) error {
		if expired != nil {
			if err := expired.upTo(r.Line); err != nil {
				return err
			}
		}
		line = sluice.AppendOutputLine(line[:0], rec.ID, r)
		if r.State == sluice.StateDone {
			res.done++
			return out.write(line)
		}
		res.failed++
		return errs.write(line)
	})
	if errors.Is(err, sluice.ErrNotFound) {
		err = nil // the batch never ran (cancelled while it was validated): no results
	}
	if err == nil && expired != nil {
		err = expired.upTo(-1)
		res.failed += expired.count
	}
	if err != nil {
		return nil, fmt.Errorf("write results of %s: %w", rec.ID, err)
	}
	if res.outputID, err = out.commit(ctx); err != nil {
		return nil, err
	}
	if res.errorID, err = errs.commit(ctx); err != nil {
		return nil, err
	}
	stats, err := s.cfg.Store.Stats(ctx, rec.ID)
	if err != nil && !errors.Is(err, sluice.ErrNotFound) {
		return nil, fmt.Errorf("write results of %s: %w", rec.ID, err)
	}
	if stats != nil {
		u := stats.Usage
		res.usage = &sluice.BatchUsage{
			InputTokens:        u.PromptTokens,
			InputTokensDetails: sluice.InputTokensDetails{CachedTokens: u.CachedTokens},
			OutputTokens:       u.CompletionTokens,
			TotalTokens:        u.Total(),
		}
	}
	return res, nil
}

// outputFile is a batch_output file being written.
type outputFile struct {
	s     *Service
	rec   fileRecord
	f     *os.File
	w     *bufio.Writer
	lines int64
	done  bool
}

func (s *Service) newOutputFile(batch *batchRecord, kind string) (*outputFile, error) {
	rec := fileRecord{
		File: sluice.File{ID: newFileID(), Object: "file", CreatedAt: s.now(), Purpose: sluice.PurposeBatchOutput, Status: "processed",
			Filename: batch.ID + "_" + kind + ".jsonl"},
		Tenant: batch.Tenant,
	}
	rec.Path = rec.ID + ".jsonl"
	f, err := os.OpenFile(s.filePath(rec.Path), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s file: %w", kind, err)
	}
	return &outputFile{s: s, rec: rec, f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (o *outputFile) write(line []byte) error {
	o.lines++
	n, err := o.w.Write(line)
	o.rec.Bytes += int64(n)
	return err
}

// commit makes the file durable and stores its object; it returns nil, with no file
// made, when nothing was written.
func (o *outputFile) commit(ctx context.Context) (*string, error) {
	if o.lines == 0 {
		return nil, nil
	}
	if err := o.w.Flush(); err != nil {
		return nil, fmt.Errorf("write %s: %w", o.rec.Filename, err)
	}
	if err := o.f.Sync(); err != nil {
		return nil, fmt.Errorf("write %s: %w", o.rec.Filename, err)
	}
	if err := o.f.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", o.rec.Filename, err)
	}
	if err := o.s.saveFile(ctx, &o.rec); err != nil {
		return nil, err
	}
	o.done = true
	return &o.rec.ID, nil
}

func (o *outputFile) abort() {
	if !o.done {
		o.f.Close()
		os.Remove(o.f.Name())
	}
}

// expiredLines writes the input lines with no final result as failed lines (batch_expired
// or insufficient_quota): it reads the input alongside the results, both in line order.
type expiredLines struct {
	batchID string
	f       *os.File
	rd      *jsonl.Reader
	to      *outputFile
	as      *unfinished // the error code and message of the lines written
	count   int64
	buf     []byte
}

func (s *Service) openExpired(ctx context.Context, rec *batchRecord, to *outputFile, unf *unfinished) (*expiredLines, error) {
	in, err := s.storedFile(ctx, rec.InputFileID, rec.Tenant)
	if err != nil {
		return nil, fmt.Errorf("expire %s: input file: %w", rec.ID, err)
	}
	f, err := os.Open(s.filePath(in.Path))
	if err != nil {
		return nil, fmt.Errorf("expire %s: %w", rec.ID, err)
	}
	return &expiredLines{batchID: rec.ID, f: f, rd: jsonl.NewReader(f, jsonl.DefaultMaxLine), to: to, as: unf}, nil
}

// upTo writes the input lines before line (every remaining line when line < 0) as
// expired, and skips line itself.
func (e *expiredLines) upTo(line int64) error {
	for {
		n, data, err := e.rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var le *sluice.LineError
		if err != nil && !errors.As(err, &le) {
			return fmt.Errorf("read input: %w", err)
		}
		if le != nil {
			n = le.Line
		}
		if n == line {
			return nil
		}
		var customID string
		if le == nil {
			req, _ := jsonl.ParseRequest(n, data)
			customID = req.CustomID
		}
		e.buf = sluice.AppendOutputLine(e.buf[:0], e.batchID, &sluice.Result{
			Line: n, CustomID: customID, State: sluice.StateFailed,
			ErrorCode: e.as.code, ErrorMessage: e.as.msg,
		})
		e.count++
		if err := e.to.write(e.buf); err != nil {
			return err
		}
	}
}

func (e *expiredLines) close() { e.f.Close() }
