package jsonl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-llm/sluice"
)

// DefaultMaxLine is the longest line, in bytes, a Reader accepts when given no limit:
// 64 MiB. A Batch API line may carry images or files inline as base64 data URLs, and
// OpenAI accepts requests of up to 50 MB with inline images; 64 MiB leaves room for that
// plus the JSON around it, while still bounding what one corrupt file (say, a binary with
// no newline) can make the reader hold.
const DefaultMaxLine = 64 << 20

const (
	// readBufSize is the size of the Reader's bufio buffer. Lines that fit in it (nearly
	// all of them) are handed out without a copy.
	readBufSize = 64 << 10
	// keepLineBuf is the largest line buffer kept between lines; one grown beyond it for a
	// rare huge line is dropped, so a single image-laden line does not pin its memory for
	// the rest of the run.
	keepLineBuf = 1 << 20
	// lineSlack is how far a line may run over the limit while it is being read: a UTF-8
	// BOM and a "\r\n" terminator are stripped before the limit is checked.
	lineSlack = len("\xEF\xBB\xBF") + len("\r\n")
)

var bom = []byte("\xEF\xBB\xBF")

// Reader reads the lines of a JSONL stream one at a time. Its memory use is one bufio
// buffer (64 KiB) plus, for a line that does not fit in it, a buffer the size of that
// line, and never more than the line limit. A Reader is not safe for concurrent use.
type Reader struct {
	br   *bufio.Reader
	max  int
	line int64  // physical lines consumed so far
	buf  []byte // holds a line longer than the bufio buffer
	err  error  // sticky: io.EOF or a read error, returned once the lines before it are out
}

// NewReader returns a Reader of r that accepts lines of at most maxLine bytes (not
// counting the line terminator, nor a UTF-8 byte order mark on the first line). A maxLine
// of 0 or less means DefaultMaxLine.
func NewReader(r io.Reader, maxLine int) *Reader {
	return newReaderSize(r, maxLine, readBufSize)
}

// newReaderSize is NewReader with a given bufio buffer size, so tests can drive the path
// for lines longer than the buffer with small inputs.
func newReaderSize(r io.Reader, maxLine, bufSize int) *Reader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	return &Reader{br: bufio.NewReaderSize(r, bufSize), max: maxLine}
}

// Next returns the next line that is not blank, with its 1-based line number. Line
// numbers count every physical line of the input, blank ones included, so they match
// what an editor shows. The data has its "\n" or "\r\n" terminator removed, and on line
// 1 a UTF-8 byte order mark; it is valid only until the next call to Next. A last line
// with no terminator is a line like any other. A line holding only spaces, tabs and
// carriage returns is blank.
//
// A line longer than the limit is returned as a *sluice.LineError with its line number
// and no data; the line is skipped without being held in memory, and the next call reads
// on from the line after it.
//
// After the last line Next returns io.EOF, with the number of physical lines read as the
// line number. An error reading the underlying reader is returned wrapped, naming the
// line it was reading ("read line 7: ..."), and from then on by every call; a line cut
// short by it is not returned, since where it would have ended is unknown.
func (r *Reader) Next() (line int64, data []byte, err error) {
	if cap(r.buf) > keepLineBuf {
		r.buf = nil
	}
	for {
		data, long, ok := r.readLine()
		if !ok {
			return r.line, nil, r.err
		}
		r.line++
		if !long {
			data = r.trim(data)
			long = len(data) > r.max
		}
		if long {
			return r.line, nil, &sluice.LineError{Line: r.line, Msg: fmt.Sprintf("line is longer than %d bytes", r.max)}
		}
		if !blank(data) {
			return r.line, data, nil
		}
	}
}

// readLine reads the next physical line, terminator included. It returns ok == false when
// there is none, with r.err saying why. A line longer than the limit comes back with
// long == true and no data, having been read through to its end.
func (r *Reader) readLine() (data []byte, long, ok bool) {
	if r.err != nil {
		return nil, false, false
	}
	chunk, err := r.br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		// The whole line is in the bufio buffer (or the input ended in it).
		return r.end(chunk, err)
	}
	r.buf = r.buf[:0]
	for {
		if len(r.buf)+len(chunk) > r.max+lineSlack {
			if errors.Is(err, bufio.ErrBufferFull) {
				r.skip()
			} else {
				r.end(nil, err)
			}
			if r.err != nil && !errors.Is(r.err, io.EOF) {
				return nil, false, false // cut short by a read error, as below
			}
			return nil, true, true
		}
		r.buf = append(r.buf, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return r.end(r.buf, err)
		}
		chunk, err = r.br.ReadSlice('\n')
	}
}

// end finishes reading a line of data that ReadSlice ended with err (nil, io.EOF or a
// read error), recording io.EOF and read errors in r.err for the calls that follow.
func (r *Reader) end(data []byte, err error) ([]byte, bool, bool) {
	switch {
	case err == nil:
		return data, false, true
	case errors.Is(err, io.EOF):
		r.err = io.EOF
		return data, false, len(data) > 0
	default:
		// A line cut short by a read error is not returned: its end is unknown.
		r.err = fmt.Errorf("read line %d: %w", r.line+1, err)
		return nil, false, false
	}
}

// skip reads through to the end of the current line, holding none of it.
func (r *Reader) skip() {
	for {
		_, err := r.br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			r.end(nil, err)
			return
		}
	}
}

// trim removes the line terminator and, on line 1, a byte order mark.
func (r *Reader) trim(data []byte) []byte {
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	if r.line == 1 {
		data = bytes.TrimPrefix(data, bom)
	}
	return data
}

// blank reports whether data holds nothing but JSON whitespace.
func blank(data []byte) bool {
	for _, c := range data {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
