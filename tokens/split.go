package tokens

// Byte-pair encoding never merges across the pre-tokens the encoding's regular expression
// splits text into, so a text's count is the sum of its pre-tokens' counts. Pre-tokens
// repeat a lot (" the", ",", " model"), so counting them once each and remembering the
// counts is much faster than running the tokenizer's backtracking regular expression over
// every text: [nextPreToken] splits plain ASCII text (printable characters, tab, line
// feed, vertical tab, form feed, carriage return) exactly as the two expressions do, and
// text with any other byte goes to the tokenizer whole. (Control characters are left to
// the tokenizer on purpose: its matcher skips DEL before an apostrophe, where tiktoken's
// expression would not, and its count is the reference.)
//
// The expressions, with L a letter, Lu/Ll upper/lower case, N a digit, \s white space
// (tab, line feed, vertical tab, form feed, carriage return, space) and C the English
// contractions (?i:'s|'t|'re|'ve|'m|'ll|'d):
//
//	cl100k_base: C | [^\r\nLN]?L+ | N{1,3} | " "?[^\sLN]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//	o200k_base:  [^\r\nLN]?Lu*Ll+C? | [^\r\nLN]?Lu+Ll*C? | N{1,3} | " "?[^\sLN]+[\r\n/]* |
//	             \s*[\r\n]+ | \s+(?!\S) | \s+
//
// The first alternative that matches at a position wins, each greedily.

// Byte classes of ASCII.
const (
	clOther byte = iota // punctuation, symbols
	clUpper
	clLower
	clDigit
	clSpace // tab, vertical tab, form feed, space
	clBreak // line feed, carriage return: white space too
)

var asciiClass = func() (t [128]byte) {
	for c := range t {
		switch {
		case c >= 'A' && c <= 'Z':
			t[c] = clUpper
		case c >= 'a' && c <= 'z':
			t[c] = clLower
		case c >= '0' && c <= '9':
			t[c] = clDigit
		case c == '\n' || c == '\r':
			t[c] = clBreak
		case c == '\t' || c == '\v' || c == '\f' || c == ' ':
			t[c] = clSpace
		}
	}
	return t
}()

// isPlainASCII reports whether s has only printable ASCII characters and the white space
// characters tab, line feed, vertical tab, form feed and carriage return.
func isPlainASCII(s string) bool {
	for i := range len(s) {
		if c := s[i]; c >= 0x7f || c < 0x20 && (c < '\t' || c > '\r') {
			return false
		}
	}
	return true
}

// nextPreToken returns the end of the pre-token of s, a plain ASCII string, that starts at
// i.
func nextPreToken(s string, i int, o200k bool) int {
	n := len(s)
	cls := func(j int) byte { return asciiClass[s[j]] }
	isLetter := func(j int) bool { return j < n && (cls(j) == clUpper || cls(j) == clLower) }
	run := func(j int, ok func(byte) bool) int {
		for j < n && ok(cls(j)) {
			j++
		}
		return j
	}
	c := cls(i)
	// The letter alternatives may start with one character that is neither a line break,
	// a letter nor a digit.
	j := i
	if c == clOther || c == clSpace {
		j++
	}
	if o200k {
		k := run(j, func(c byte) bool { return c == clUpper })
		if k < n && cls(k) == clLower {
			k = run(k, func(c byte) bool { return c == clLower })
			return k + contraction(s, k)
		}
		if k > j {
			return k + contraction(s, k)
		}
	} else {
		if s[i] == '\'' {
			if k := contraction(s, i); k > 0 {
				return i + k
			}
		}
		if isLetter(j) {
			return run(j, func(c byte) bool { return c == clUpper || c == clLower })
		}
	}
	switch c {
	case clDigit:
		k := i + 1
		for k < n && k < i+3 && cls(k) == clDigit {
			k++
		}
		return k
	case clOther:
		return punctuation(s, i, o200k)
	}
	// White space: a space may lead punctuation.
	if s[i] == ' ' && i+1 < n && cls(i+1) == clOther {
		return punctuation(s, i+1, o200k)
	}
	end := run(i, func(c byte) bool { return c == clSpace || c == clBreak })
	for k := end - 1; k >= i; k-- { // \s*[\r\n]+: up to the last line break of the run
		if cls(k) == clBreak {
			return k + 1
		}
	}
	if end == n || end-i == 1 { // \s+(?!\S) at the end, or the \s+ of one character
		return end
	}
	return end - 1 // \s+(?!\S): leave the last space to the next pre-token
}

// punctuation returns the end of [^\sLN]+[\r\n]* ([\r\n/]* for o200k_base) at i.
func punctuation(s string, i int, o200k bool) int {
	n := len(s)
	for i < n && asciiClass[s[i]] == clOther {
		i++
	}
	for i < n && (asciiClass[s[i]] == clBreak || o200k && s[i] == '/') {
		i++
	}
	return i
}

// contraction returns the length of the contraction (?i:'s|'t|'re|'ve|'m|'ll|'d) at i, 0
// if there is none.
func contraction(s string, i int) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return 0
	}
	switch s[i+1] | 0x20 { // lower case
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if i+2 < len(s) && s[i+2]|0x20 == 'e' {
			return 3
		}
	case 'l':
		if i+2 < len(s) && s[i+2]|0x20 == 'l' {
			return 3
		}
	}
	return 0
}
