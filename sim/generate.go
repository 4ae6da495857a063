package sim

import (
	"strings"

	"github.com/sluice-llm/sluice/tokens"
)

// Answer lengths: an answer echoes its prompt, padded with filler words to a length drawn
// between these bounds (from the seed, the model and the text echoed), and cut at the
// request's output cap.
const (
	minAnswerTokens = 16
	maxAnswerTokens = 64
)

// fillerWords pad answers. Each is one token in o200k_base and cl100k_base, and starts a
// new pre-token (a space then letters), so a padded answer counts exactly the echo's
// tokens plus one per word.
var fillerWords = [...]string{
	" and", " the", " model", " will", " answer", " with", " a", " short", " reply",
	" based", " on", " what", " it", " was", " asked", " so", " that", " you", " can",
	" check", " it",
}

// choice is one generated answer.
type choice struct {
	text   string
	tokens int64
	finish string // "stop" or "length"
}

// outcome is everything generated for a request.
type outcome struct {
	// choices are the answers in order: for each echo, the request's n choices.
	choices []choice
	// tokens is the completion tokens of all choices; maxTokens the longest choice's,
	// which sets the latency (choices are generated in parallel).
	tokens, maxTokens int64
	one               [1]choice // storage for the common case of one choice
}

// complete generates the answers of a job. The n choices of a prompt are the same.
func (s *Server) complete(j *job) *outcome {
	out := &outcome{}
	if j.ep == epEmbeddings {
		return out
	}
	out.choices = out.one[:0]
	if n := len(j.echoes) * j.choices; n > 1 {
		out.choices = make([]choice, 0, n)
	}
	for _, e := range j.echoes {
		h := mix(uint64(s.cfg.Seed) ^ hashString(hashString(0, j.model), e.text))
		c := generate(j.codec, e, j.limit, h)
		for range j.choices {
			out.choices = append(out.choices, c)
		}
		out.tokens += c.tokens * int64(j.choices)
		out.maxTokens = max(out.maxTokens, c.tokens)
	}
	return out
}

// generate answers e: the echo, padded to a length drawn from h, or cut at limit (0: no
// limit).
func generate(c tokens.Codec, e echo, limit int64, h uint64) choice {
	if e.tokens < 0 {
		e.tokens = c.Count(e.text)
	}
	have := int64(e.tokens)
	if limit > 0 && have > limit {
		text, k := c.Truncate(e.text, int(limit))
		return choice{text: text, tokens: int64(k), finish: "length"}
	}
	want := max(have, minAnswerTokens+int64(h%(maxAnswerTokens-minAnswerTokens+1)))
	finish := "stop"
	if limit > 0 && want >= limit {
		want, finish = limit, "length"
	}
	pad := int(want - have)
	if pad == 0 {
		return choice{text: e.text, tokens: want, finish: finish}
	}
	var b strings.Builder
	b.Grow(len(e.text) + 7*pad)
	b.WriteString(e.text)
	for i := range pad {
		b.WriteString(fillerWords[(int(h>>32)+i)%len(fillerWords)])
	}
	return choice{text: b.String(), tokens: want, finish: finish}
}

// size is about the length of the JSON answer to j with out, to allocate it once.
func (out *outcome) size(j *job) int {
	n := 640
	for _, c := range out.choices {
		n += len(c.text) + len(c.text)/8 + 160
	}
	if j.ep == epEmbeddings {
		per := 12 * j.dims
		if j.base64 {
			per = 6 * j.dims
		}
		n += len(j.inputs) * (per + 64)
	}
	return n
}
