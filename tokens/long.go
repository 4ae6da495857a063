package tokens

import (
	"math"
	"unicode"
	"unicode/utf8"
)

// The tokenizer's memory and time grow with the length of what it is given at once: a
// pre-token of a few megabytes (base64 pasted as text, a run of one character) costs it
// about 40 bytes per input byte, and text that is not plain ASCII goes to it whole. So
// that counting runs in bounded memory whatever the text:
//
//   - an ASCII pre-token longer than maxRunLen bytes is counted in pieces of maxRunLen
//     bytes, and the counts are summed. Byte-pair encoding does not merge across the cuts,
//     so the sum may differ from the exact count by about one token per cut (0.008% more
//     tokens than the exact count on random base64). Past 64 KiB, one piece in 8 is
//     counted and the others estimated from them (within 0.5% on random letters), so
//     such a run costs an eighth of the time;
//   - other text longer than maxTextLen bytes is cut into pieces of at most maxTextLen
//     bytes, each at a pre-token boundary when the piece has one in its last quarter (a
//     space between two characters that are not white space: exact), or else at a
//     character boundary (about one token off per cut).
const (
	maxRunLen      = 4 << 10
	maxTextLen     = 64 << 10
	runSampleMin   = 16 // pieces of a run counted whole before sampling
	runSampleEvery = 8
)

// countRun counts an ASCII pre-token, in pieces of maxRunLen bytes when it is longer.
// Past runSampleMin pieces, only every runSampleEvery-th piece (and the last) is counted
// and the rest estimated from them, by bytes: a pre-token that long is one kind of
// character (letters, digits or punctuation), so its pieces count alike.
func (e *encoding) countRun(piece string) int {
	if len(piece) <= maxRunLen {
		return e.pieces.count(piece, e.countSlow)
	}
	full := len(piece) / maxRunLen
	last := e.countSlow(piece[full*maxRunLen:])
	if full <= runSampleMin {
		n := last
		for i := range full {
			n += e.countSlow(piece[i*maxRunLen : (i+1)*maxRunLen])
		}
		return n
	}
	sampled, counted := 0, 0
	for i := 0; i < full; i += runSampleEvery {
		counted += e.countSlow(piece[i*maxRunLen : (i+1)*maxRunLen])
		sampled++
	}
	return last + int(math.Round(float64(counted)*float64(full)/float64(sampled)))
}

// countText counts text that is not plain ASCII, in pieces of at most maxTextLen bytes
// when it is longer.
func (e *encoding) countText(text string) int {
	n := 0
	for len(text) > maxTextLen {
		k := cutText(text, maxTextLen)
		n += e.countSlow(text[:k])
		text = text[k:]
	}
	return n + e.countSlow(text)
}

// cutText returns where to cut text, longer than limit, into a first piece of at most
// limit bytes: before a space that follows a character that is not white space and
// precedes one that is not either (a pre-token boundary of both encodings), searched in
// the last quarter of the piece; or else at the last character boundary.
func cutText(text string, limit int) int {
	for i := limit - 1; i > limit-limit/4; i-- {
		if text[i] != ' ' || text[i+1] == ' ' {
			continue
		}
		before, _ := utf8.DecodeLastRuneInString(text[:i])
		after, _ := utf8.DecodeRuneInString(text[i+1:])
		if !unicode.IsSpace(before) && !unicode.IsSpace(after) {
			return i
		}
	}
	i := limit
	for i > 0 && !utf8.RuneStart(text[i]) {
		i--
	}
	if i == 0 { // not UTF-8 at all: any byte will do
		return limit
	}
	return i
}
