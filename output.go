package sluice

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/sluice-llm/sluice/internal/jsonw"
	"io"
	"strconv"
)

// OutputCounts says what WriteOutput wrote.
type OutputCounts struct {
	Lines  int64 // lines in the output file: one per final request
	Done   int64
	Failed int64
}

// WriteOutput writes every final request of a job to out in the OpenAI Batch API output
// format, one line per request in input order:
//
//	{"id":"batch_req_…","custom_id":"…","response":{"status_code":200,"request_id":"…","body":{…}},"error":null}
//
// A failed request with an HTTP answer carries its last status and body in response; one
// without (a connection error, an invalid input line) has "response":null and
// "error":{"code","message"}. Failed requests are also written to errs when it is not nil,
// as the Batch API's error file has them. Line ids are derived from the job and line, so
// writing the output again gives the same bytes.
func WriteOutput(ctx context.Context, s ResultReader, jobID string, out, errs io.Writer) (OutputCounts, error) {
	var counts OutputCounts
	bw := bufio.NewWriterSize(out, 256<<10)
	var ew *bufio.Writer
	if errs != nil {
		ew = bufio.NewWriterSize(errs, 64<<10)
	}
	var line []byte
	err := s.Results(ctx, jobID, 0, 0, func(res *Result) error {
		line = AppendOutputLine(line[:0], jobID, res)
		if _, err := bw.Write(line); err != nil {
			return err
		}
		counts.Lines++
		if res.State == StateDone {
			counts.Done++
			return nil
		}
		counts.Failed++
		if ew != nil {
			if _, err := ew.Write(line); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return counts, fmt.Errorf("write output: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return counts, fmt.Errorf("write output: %w", err)
	}
	if ew != nil {
		if err := ew.Flush(); err != nil {
			return counts, fmt.Errorf("write errors: %w", err)
		}
	}
	return counts, nil
}

// AppendOutputLine appends res as one Batch API output line, ending in a newline, to dst.
func AppendOutputLine(dst []byte, jobID string, res *Result) []byte {
	dst = append(dst, `{"id":"`...)
	dst = appendOutputID(dst, jobID, res.Line)
	dst = append(dst, `","custom_id":`...)
	if res.CustomID == "" {
		dst = append(dst, "null"...)
	} else {
		dst = jsonw.AppendString(dst, res.CustomID)
	}
	if res.StatusCode != 0 {
		dst = append(dst, `,"response":{"status_code":`...)
		dst = strconv.AppendInt(dst, int64(res.StatusCode), 10)
		dst = append(dst, `,"request_id":`...)
		dst = jsonw.AppendString(dst, res.RequestID)
		dst = append(dst, `,"body":`...)
		dst = appendBody(dst, res.Body)
		dst = append(dst, `},"error":null}`...)
	} else {
		dst = append(dst, `,"response":null,"error":{"code":`...)
		dst = jsonw.AppendString(dst, res.ErrorCode)
		dst = append(dst, `,"message":`...)
		dst = jsonw.AppendString(dst, res.ErrorMessage)
		dst = append(dst, `}}`...)
	}
	return append(dst, '\n')
}

// OutputID is the id of a job's output line for an input line: "batch_req_" and 32 hex
// digits derived from both.
func OutputID(jobID string, line int64) string {
	return string(appendOutputID(nil, jobID, line))
}

// appendOutputID appends OutputID(jobID, line) to dst, without allocating when jobID is
// short: it is written once per output line.
func appendOutputID(dst []byte, jobID string, line int64) []byte {
	var buf [128]byte
	in := append(buf[:0], jobID...)
	for i := range 8 {
		in = append(in, byte(line>>(8*i)))
	}
	sum := sha256.Sum256(in)
	dst = append(dst, "batch_req_"...)
	return hex.AppendEncode(dst, sum[:16])
}

// appendBody appends a JSON body on one line: compacted when it spans several, null when
// empty or not JSON at all (an upstream adapter should never hand such a body on).
func appendBody(dst []byte, body json.RawMessage) []byte {
	if len(body) == 0 {
		return append(dst, "null"...)
	}
	if bytes.IndexByte(body, '\n') < 0 && bytes.IndexByte(body, '\r') < 0 {
		return append(dst, body...)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil {
		return append(dst, "null"...)
	}
	return append(dst, buf.Bytes()...)
}
