package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

const twoLines = `{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":"m","input":"é"}}` + "\n" +
	`{"custom_id":"b","method":"POST","url":"/v1/responses","body":{"model":"m","input":"x"}}` + "\n"

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zstded(t testing.TB, s string) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll([]byte(s), nil)
}

func TestOpenReadsCompressedInputByContent(t *testing.T) {
	big := strings.Repeat(twoLines, 2000) // beyond SniffSize once decompressed
	for _, tt := range []struct {
		name   string
		data   []byte
		format Format
		want   string
	}{
		{"plain", []byte(twoLines), Plain, twoLines},
		{"gzip", gzipped(t, twoLines), Gzip, twoLines},
		{"zstd", zstded(t, twoLines), Zstd, twoLines},
		{"large gzip", gzipped(t, big), Gzip, big},
		{"large zstd", zstded(t, big), Zstd, big},
		{"empty", nil, Plain, ""},
		{"a few bad lines among good ones", []byte(twoLines + "{\"caf\xe9\"}\n{\"a\x00\n" + twoLines), Plain, twoLines + "{\"caf\xe9\"}\n{\"a\x00\n" + twoLines},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Open(bytes.NewReader(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			got, err := io.ReadAll(in)
			if err != nil {
				t.Fatal(err)
			}
			if in.Format != tt.format || string(got) != tt.want {
				t.Errorf("format %s, %d bytes; want %s, %d bytes", in.Format, len(got), tt.format, len(tt.want))
			}
		})
	}
}

func TestOpenRefusesWhatItCannotRead(t *testing.T) {
	urandom := []byte("\x93\x11\xfe\x00\xab\n\x02\xff\n")
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"xz", []byte("\xfd7zXZ\x00\x00\x04"), "the input is xz data: sluice reads JSONL, plain or compressed with gzip or zstd; unpack it first (xz -d)"},
		{"bzip2", []byte("BZh91AY&SY"), "the input is bzip2 data"},
		{"zip", []byte("PK\x03\x04\x14\x00"), "the input is zip data"},
		{"7z", []byte("7z\xbc\xaf\x27\x1c\x00\x04"), "the input is 7z data"},
		{"zeros", make([]byte, 1<<20), "line 1: the input is not text (a NUL byte at byte 0)"},
		{"random bytes", urandom, "line 1: the input is not text (bytes that are not UTF-8 at byte 0)"},
		{"mostly NUL from line 3", []byte(twoLines + "{\"a\x00\n\x00\n\x00\x00\n"), fmt.Sprintf("line 3: the input is not text (a NUL byte at byte %d)", len(twoLines)+3)},
		{"latin-1", []byte("{\"caf\xe9\"}\n{\"th\xe9\"}\n"), "line 1: the input is not text (bytes that are not UTF-8 at byte 5)"},
		{"a binary gzipped", gzipped(t, "\x00\x01\x02"), "line 1: the input is not text (a NUL byte at byte 0)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Open(bytes.NewReader(tt.data))
			if err == nil {
				in.Close()
				t.Fatalf("opened; want an error %q", tt.want)
			}
			var fe *FormatError
			var be *BinaryError
			if !errors.As(err, &fe) && !errors.As(err, &be) {
				t.Errorf("error %T %v is neither a FormatError nor a BinaryError", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCheckTextAtTheEndOfTheHead(t *testing.T) {
	cut := []byte("{\"x\":\"é")[:7] // é cut after its first byte
	if err := CheckText(cut, false); err != nil {
		t.Errorf("a character cut by the end of the head: %v", err)
	}
	if err := CheckText(cut, true); err == nil {
		t.Error("a character cut by the end of the input passed")
	}
}

func FuzzCheckText(f *testing.F) {
	f.Add([]byte(twoLines), false)
	f.Add([]byte("a\nb\x00"), true)
	f.Add([]byte("\xe2\x82"), false)
	f.Fuzz(func(t *testing.T, data []byte, atEOF bool) {
		err := CheckText(data, atEOF)
		var be *BinaryError
		switch {
		case err == nil:
			if lines, bad := referenceBadLines(data, atEOF); 2*bad > lines {
				t.Fatalf("%q passed (at EOF %v) with %d of %d lines not text", data, atEOF, bad, lines)
			}
		case errors.As(err, &be):
			if be.Offset < 0 || be.Offset >= int64(len(data)) {
				t.Fatalf("offset %d out of %q", be.Offset, data)
			}
			if want := int64(bytes.Count(data[:be.Offset], []byte("\n"))) + 1; be.Line != want {
				t.Fatalf("line %d, want %d in %q", be.Line, want, data)
			}
			if c := data[be.Offset]; c != 0 && c < utf8.RuneSelf {
				t.Fatalf("offset %d of %q is neither NUL nor beyond ASCII", be.Offset, data)
			}
			if lines, bad := referenceBadLines(data, atEOF); 2*bad <= lines {
				t.Fatalf("%q refused with only %d of %d lines not text", data, bad, lines)
			}
		default:
			t.Fatalf("error %T", err)
		}
	})
}

// referenceBadLines counts the lines CheckText judges, and those with a NUL byte or not
// valid UTF-8 (a last line cut off mid-character, not at EOF, being valid).
func referenceBadLines(data []byte, atEOF bool) (lines, bad int) {
	parts := bytes.Split(data, []byte("\n"))
	if len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1]
	}
	for i, p := range parts {
		last := i == len(parts)-1 && !bytes.HasSuffix(data, []byte("\n"))
		if last && !atEOF && lines > 0 {
			break
		}
		lines++
		ok := bytes.IndexByte(p, 0) < 0 && (utf8.Valid(p) || (last && !atEOF && validButCut(p)))
		if !ok {
			bad++
		}
	}
	return lines, bad
}

// validButCut reports whether data is valid UTF-8 but for a character cut off at its end.
func validButCut(data []byte) bool {
	for k := 1; k <= 3 && k <= len(data); k++ {
		tail := data[len(data)-k:]
		if utf8.RuneStart(tail[0]) && !utf8.FullRune(tail) {
			return utf8.Valid(data[:len(data)-k])
		}
	}
	return false
}
