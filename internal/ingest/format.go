package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// Format is how an input's bytes are encoded.
type Format string

// Formats sluice reads.
const (
	Plain Format = "plain"
	Gzip  Format = "gzip"
	Zstd  Format = "zstd"
)

// SniffSize is how much of an input Sniff and Open look at: the magic number of a
// compressed format, and the start of the text that must not be binary.
const SniffSize = 64 << 10

// magics are the first bytes of the formats sluice recognises; one with a hint is a format
// it refuses. (A tar file starts with a file name and NUL bytes: CheckText refuses it.)
var magics = []struct {
	magic  string
	format Format
	hint   string // how to turn the file into plain JSONL, for the refusal
}{
	{"\x1f\x8b", Gzip, ""},
	{"\x28\xb5\x2f\xfd", Zstd, ""},
	{"\xfd7zXZ\x00", "xz", "xz -d"},
	{"BZh", "bzip2", "bunzip2"},
	{"PK\x03\x04", "zip", "unzip"},
	{"7z\xbc\xaf\x27\x1c", "7z", "7z x"},
	{"\x04\x22\x4d\x18", "lz4", "lz4 -d"},
}

// FormatError is an input in a format sluice does not read.
type FormatError struct {
	Format Format
	Hint   string // a command that decompresses it
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("the input is %s data: sluice reads JSONL, plain or compressed with gzip or zstd; unpack it first (%s)", e.Format, e.Hint)
}

// BinaryError is an input whose start is not text, so not JSONL: a NUL byte or bytes that
// are not UTF-8 (a binary file, /dev/zero, /dev/urandom).
type BinaryError struct {
	Line   int64 // 1-based line of the offending byte
	Offset int64 // its offset in the (decompressed) input
	What   string
}

func (e *BinaryError) Error() string {
	return fmt.Sprintf("line %d: the input is not text (%s at byte %d): is it a JSONL file?", e.Line, e.What, e.Offset)
}

// Sniff names the format of an input that starts with head. A format sluice recognises
// but does not read is a *FormatError.
func Sniff(head []byte) (Format, error) {
	for _, m := range magics {
		if !bytes.HasPrefix(head, []byte(m.magic)) {
			continue
		}
		if m.hint != "" {
			return m.format, &FormatError{Format: m.format, Hint: m.hint}
		}
		return m.format, nil
	}
	return Plain, nil
}

// CheckText returns a *BinaryError when head, the start of a plain input, is binary: when
// most of its lines hold a NUL byte or bytes that are not UTF-8 (/dev/zero is one endless
// line of NULs; /dev/urandom has no line of valid UTF-8). A few such lines among good
// ones are not binary: each becomes an error line, and the good lines run. The error names
// the first bad line. The last line of head, cut off unless atEOF, counts only when it is
// the only one.
func CheckText(head []byte, atEOF bool) error {
	var first *BinaryError
	lines, bad := 0, 0
	for start := 0; start < len(head); {
		end := bytes.IndexByte(head[start:], '\n')
		cut := end < 0
		if cut {
			end = len(head)
		} else {
			end += start
		}
		if cut && !atEOF && lines > 0 {
			break // a line cut off by the end of head: judged with what comes after
		}
		lines++
		if what, at := badText(head[start:end], cut && !atEOF); what != "" {
			bad++
			if first == nil {
				first = &BinaryError{Line: int64(lines), Offset: int64(start + at), What: what}
			}
		}
		start = end + 1
	}
	if first != nil && 2*bad > lines {
		return first
	}
	return nil
}

// badText returns what makes a line not text, and where, or "". A character cut off at the
// end of the line is not an error when cut is set.
func badText(line []byte, cut bool) (string, int) {
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == 0:
			return "a NUL byte", i
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(line[i:])
			if r == utf8.RuneError && n == 1 {
				if cut && !utf8.FullRune(line[i:]) {
					return "", 0
				}
				return "bytes that are not UTF-8", i
			}
			i += n
			continue
		}
		i++
	}
	return "", 0
}

// Input is the plain JSONL an input holds, decompressed as it is read.
type Input struct {
	io.Reader
	Format Format
	closeD func()
}

// Close releases the decompressor; it does not close the reader Open was given.
func (in *Input) Close() error {
	if in.closeD != nil {
		in.closeD()
	}
	return nil
}

// Open reads r as an input: plain, gzip or zstd JSONL, told apart by their first bytes
// whatever the file's name. It refuses other compressed and archive formats
// (*FormatError) and an input that does not start as text (*BinaryError), reading at most
// SniffSize bytes of r to decide.
func Open(r io.Reader) (*Input, error) {
	br := bufio.NewReaderSize(r, SniffSize)
	head, err := br.Peek(SniffSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read input: %w", err)
	}
	format, err := Sniff(head)
	if err != nil {
		return nil, err
	}
	in := &Input{Reader: br, Format: format}
	switch format {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read gzip input: %w", err)
		}
		in.closeD = func() { zr.Close() }
		in.Reader = zr
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("read zstd input: %w", err)
		}
		in.closeD = zr.Close
		in.Reader = zr
	}
	if format == Plain {
		if err := CheckText(head, len(head) < SniffSize); err != nil {
			return nil, err
		}
		return in, nil
	}
	// Check the decompressed start too: a compressed binary is still binary.
	pr := bufio.NewReaderSize(in.Reader, SniffSize)
	plain, err := pr.Peek(SniffSize)
	if err != nil && !errors.Is(err, io.EOF) {
		in.Close()
		return nil, fmt.Errorf("read %s input: %w", format, err)
	}
	if err := CheckText(plain, len(plain) < SniffSize); err != nil {
		in.Close()
		return nil, err
	}
	in.Reader = pr
	return in, nil
}
