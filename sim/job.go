package sim

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/tokens"
)

// The simulator counts prompts itself, from what it receives, with OpenAI's documented
// chat formula: every message costs 3 tokens plus the tokens of its role, content, name
// (and 1 more for having one), tool calls (their JSON) and tool_call_id; the reply is
// primed with 3; tool and function definitions count as their JSON. Images count 765
// tokens, 85 at low detail (a 1024×1024 image's price). The Responses API gets the same
// formula, its instructions counting as a system message. Completions and embeddings
// prompts count their tokens, with no overhead.
const (
	perMessage  = 3
	perName     = 1
	replyPrimer = 3
	imageHigh   = 765
	imageLow    = 85
	// defaultCompletionsMax is the max_tokens of a completions request without one.
	defaultCompletionsMax = 16
)

// job is a decoded generation request.
type job struct {
	n     uint64 // the request's sequence number
	ep    endpoint
	model string
	codec tokens.Codec
	// prompt is the prompt's tokens; bound its output bound (max tokens times choices),
	// which together count against TPM.
	prompt, bound int64
	// limit is the output cap of each choice, 0 for none; choices per prompt.
	limit   int64
	choices int
	// echoes are what the answers echo: the last user message, or each prompt.
	echoes               []echo
	stream, includeUsage bool

	// Embeddings.
	inputs []string
	dims   int
	base64 bool

	// Responses.
	maxOutput *int64
}

// reserve is what the request counts against TPM: its prompt and its output bound.
func (j *job) reserve() int64 {
	return min(j.prompt, math.MaxInt64-j.bound) + j.bound
}

// echo is a text to echo and its tokens (-1 when not counted yet).
type echo struct {
	text   string
	tokens int
}

// decode reads the body of a request to ep into j.
func (j *job) decode(ep endpoint, body []byte) *apiError {
	j.ep = ep
	j.choices = 1
	switch ep {
	case epChat:
		return j.decodeChat(body)
	case epCompletions:
		return j.decodeCompletions(body)
	case epEmbeddings:
		return j.decodeEmbeddings(body)
	default:
		return j.decodeResponses(body)
	}
}

// appendAnswer appends the JSON answer of a job to b.
func (j *job) appendAnswer(b []byte, out *outcome, created int64) []byte {
	switch j.ep {
	case epChat:
		return j.appendChat(b, out, created)
	case epCompletions:
		return j.appendCompletion(b, out, created)
	case epEmbeddings:
		return j.appendEmbeddings(b)
	default:
		return j.appendResponse(b, out, created)
	}
}

func (j *job) setModel(model string) *apiError {
	if model == "" {
		return invalidRequest("", "", "you must provide a model parameter")
	}
	j.model, j.codec = model, tokens.ForModel(model)
	return nil
}

func (j *job) setStream(stream bool, opts *streamOptions) *apiError {
	if opts != nil && !stream {
		return invalidRequest("stream_options", "invalid_value", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	j.stream = stream
	j.includeUsage = opts != nil && opts.IncludeUsage
	return nil
}

// setLimit sets the output cap from a max_tokens-like parameter, def when absent.
func (j *job) setLimit(v *int64, param string, def int64) *apiError {
	j.limit = def
	if v == nil {
		return nil
	}
	if *v < 1 {
		return invalidRequest(param, "integer_below_min_value", "Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", param, *v)
	}
	j.limit = *v
	return nil
}

// setChoices sets the number of choices from n. It returns how many the upstream
// generates: n, or best_of when larger (generated in full, the best n returned).
func (j *job) setChoices(n, bestOf *int64) (int64, *apiError) {
	if n != nil {
		if *n < 1 || *n > 128 {
			return 0, invalidRequest("n", "invalid_value", "Invalid 'n': expected a value between 1 and 128, but got %d instead.", *n)
		}
		j.choices = int(*n)
	}
	generated := int64(j.choices)
	if bestOf != nil {
		if *bestOf < generated || *bestOf > 20 {
			return 0, invalidRequest("best_of", "invalid_value", "Invalid 'best_of': expected a value between n and 20, but got %d instead.", *bestOf)
		}
		generated = *bestOf
	}
	return generated, nil
}

// textsOrTokens reads a prompt or input: a string, an array of strings, an array of token
// ids or an array of arrays of token ids. It returns the texts (empty for token arrays)
// and their tokens.
func (j *job) textsOrTokens(raw json.RawMessage, param string) ([]string, []int, *apiError) {
	wrong := invalidRequest(param, "invalid_type", "Invalid type for '%s': expected a string, an array of strings, an array of integers or an array of arrays of integers.", param)
	switch first(raw) {
	case '"':
		s := unquote(raw)
		return []string{s}, []int{j.codec.Count(s)}, nil
	case '[':
	default:
		return nil, nil, wrong
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, nil, wrong
	}
	if len(items) > 0 && first(items[0]) != '"' && first(items[0]) != '[' {
		var ids []int64
		if err := json.Unmarshal(raw, &ids); err != nil {
			return nil, nil, wrong
		}
		return []string{""}, []int{len(ids)}, nil
	}
	texts, counts := make([]string, len(items)), make([]int, len(items))
	for i, it := range items {
		switch first(it) {
		case '"':
			texts[i] = unquote(it)
			counts[i] = j.codec.Count(texts[i])
		case '[':
			var ids []int64
			if err := json.Unmarshal(it, &ids); err != nil {
				return nil, nil, wrong
			}
			texts[i], counts[i] = tokenText(ids), len(ids)
		default:
			return nil, nil, wrong
		}
	}
	return texts, counts, nil
}

// tokenText stands for a token-id input in places that need a text (an embedding's seed).
func tokenText(ids []int64) string {
	b := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		b = strconv.AppendInt(append(b, ' '), id, 10)
	}
	return string(b)
}

// countJSON counts a JSON value as its text; null and absent count nothing.
func (j *job) countJSON(raw json.RawMessage) int64 {
	if k := first(raw); k == 0 || k == 'n' {
		return 0
	}
	return int64(j.codec.Count(string(raw)))
}

// appendHead appends the fields every completion object starts with.
func (j *job) appendHead(b []byte, prefix, object string, created int64) []byte {
	b = append(appendKey(b, "id"), '"')
	b = append(appendID(b, prefix, j.n), '"')
	b = appendStringField(b, "object", object)
	b = appendIntField(b, "created", created)
	return appendStringField(b, "model", j.model)
}

// appendUsage appends a chat or completions usage object.
func (j *job) appendUsage(b []byte, out *outcome) []byte {
	b = append(appendKey(b, "usage"), '{')
	b = appendIntField(b, "prompt_tokens", j.prompt)
	b = appendIntField(b, "completion_tokens", out.tokens)
	b = appendIntField(b, "total_tokens", j.prompt+out.tokens)
	if j.ep == epChat {
		b = append(appendKey(b, "prompt_tokens_details"), `{"cached_tokens":0,"audio_tokens":0}`...)
		b = append(appendKey(b, "completion_tokens_details"), `{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}`...)
	}
	return append(b, '}')
}

// mulSat is a × b for non-negative a and b, saturating instead of overflowing.
func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// first is the first byte of a decoded JSON value, 0 for none.
func first(raw json.RawMessage) byte {
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// kindOf names the JSON type of raw for messages.
func kindOf(raw json.RawMessage) string {
	switch first(raw) {
	case '"':
		return "a string"
	case '[':
		return "an array"
	case '{':
		return "an object"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// unquote decodes a JSON string value; without escapes (the common case) it is a slice.
func unquote(raw json.RawMessage) string {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(raw, &s) // the decoder has already checked it
	return s
}
