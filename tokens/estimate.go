package tokens

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"unicode/utf8"

	"github.com/sluice-llm/sluice"
)

// Fixed estimates for the parts of a prompt that cannot be measured offline.
const (
	// ImageTokens is what an image counts: OpenAI's price of a 1024×1024 image at high or
	// auto detail (85 + 4 tiles × 170). Larger images cost more, smaller ones less.
	ImageTokens = 765
	// ImageTokensLow is what an image with "detail":"low" counts, whatever its size.
	ImageTokensLow = 85
	// DefaultCompletionsMaxTokens is the output bound of a legacy completions request that
	// sets no max_tokens: OpenAI's default.
	DefaultCompletionsMaxTokens = 16
)

// OpenAI's chat formula: every message is wrapped in 3 tokens, a name costs 1 more than
// its text, and the reply is primed with 3.
const (
	tokensPerMessage = 3
	tokensPerName    = 1
	tokensPerReply   = 3
)

// Estimator estimates requests offline with the model's tokenizer. It has no state: the
// zero Estimator is ready to use and safe for concurrent use, and [Default] returns a
// shared one.
type Estimator struct{}

var _ sluice.Estimator = (*Estimator)(nil)

var defaultEstimator = &Estimator{}

// Default returns the process-wide shared Estimator.
func Default() *Estimator { return defaultEstimator }

// Estimate parses req.Body once and returns its model, its prompt tokens counted as
// OpenAI bills them (see the package documentation) and its output bound:
// max_completion_tokens, else max_tokens (chat completions); max_tokens, default
// [DefaultCompletionsMaxTokens] (completions); max_output_tokens (responses); 0 for
// embeddings. The bound is multiplied by n (and by best_of and the number of prompts for
// completions), since every choice may reach it; it is 0 when the request sets none.
//
// The error names the field at fault ("messages[2].content: want a string or an array");
// an estimate is not a validation, so a body the upstream will reject for other reasons
// (an empty messages array, say) is estimated without error.
func (e *Estimator) Estimate(req *sluice.Request) (sluice.Estimate, error) {
	var b body
	if err := decodeBody(req.Body, &b); err != nil {
		return sluice.Estimate{}, err
	}
	return e.estimate(req, &b, false)
}

// estimate is Estimate once the body is decoded into b. valid is true when the body is
// known to be valid JSON, so that its parts are read without checking them again.
func (e *Estimator) estimate(req *sluice.Request, b *body, valid bool) (sluice.Estimate, error) {
	if b.Model == "" {
		return sluice.Estimate{}, errors.New("model: missing")
	}
	c := ForModel(b.Model)
	var prompt, bound int64
	var err error
	switch req.URL {
	case sluice.EndpointChatCompletions:
		prompt, err = chatPrompt(c, b, valid)
		bound = mulSat(outputBound(b.MaxCompletionTokens, b.MaxTokens, 0), choices(b.N, nil))
	case sluice.EndpointCompletions:
		var prompts int64
		prompt, prompts, err = completionsPrompt(c, b.Prompt, valid)
		bound = mulSat(mulSat(outputBound(b.MaxTokens, nil, DefaultCompletionsMaxTokens), choices(b.N, b.BestOf)), max(prompts, 1))
	case sluice.EndpointEmbeddings:
		prompt, err = embeddingsInput(c, b.Input, valid)
	case sluice.EndpointResponses:
		prompt, err = responsesPrompt(c, b, valid)
		bound = outputBound(b.MaxOutputTokens, nil, 0)
	default:
		return sluice.Estimate{}, fmt.Errorf("url: unsupported endpoint %q", req.URL)
	}
	if err != nil {
		return sluice.Estimate{}, err
	}
	return sluice.Estimate{Model: b.Model, PromptTokens: prompt, MaxOutputTokens: bound}, nil
}

// outputBound is the first of two output bounds that is set, else def; never negative.
func outputBound(first, second *int64, def int64) int64 {
	bound := def
	switch {
	case first != nil:
		bound = *first
	case second != nil:
		bound = *second
	}
	return max(bound, 0)
}

// mulSat is a × b for non-negative a and b, saturating at the largest int64 instead of
// overflowing.
func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// choices is how many choices a request asks for: n, or best_of when larger (the upstream
// generates best_of and returns the best n).
func choices(n, bestOf *int64) int64 {
	c := int64(1)
	if n != nil && *n > c {
		c = *n
	}
	if bestOf != nil && *bestOf > c {
		c = *bestOf
	}
	return c
}

// body holds the fields of every endpoint's request body that an estimate needs.
// Polymorphic fields stay raw and are read by the endpoint's counting function.
type body struct {
	Model string `json:"model"`

	Messages  []message       `json:"messages"` // chat
	Tools     json.RawMessage `json:"tools"`    // chat, responses
	Functions json.RawMessage `json:"functions"`
	Prompt    json.RawMessage `json:"prompt"` // completions
	Input     json.RawMessage `json:"input"`  // embeddings, responses

	Instructions *string `json:"instructions"` // responses

	MaxTokens           *int64 `json:"max_tokens"`
	MaxCompletionTokens *int64 `json:"max_completion_tokens"`
	MaxOutputTokens     *int64 `json:"max_output_tokens"`
	N                   *int64 `json:"n"`
	BestOf              *int64 `json:"best_of"`
}

// message is a chat message or a Responses API input item.
type message struct {
	Type         string          `json:"type"` // responses items
	Role         string          `json:"role"`
	Name         string          `json:"name"`
	Content      json.RawMessage `json:"content"`
	ToolCalls    json.RawMessage `json:"tool_calls"`
	FunctionCall json.RawMessage `json:"function_call"`
	ToolCallID   string          `json:"tool_call_id"`
	Arguments    string          `json:"arguments"` // responses function_call
	Output       json.RawMessage `json:"output"`    // responses function_call_output
}

// part is an element of a content array.
type part struct {
	Type     string   `json:"type"`
	Text     string   `json:"text"`
	Refusal  string   `json:"refusal"`
	Detail   string   `json:"detail"` // responses input_image
	ImageURL imageURL `json:"image_url"`
}

// imageURL is a chat image part's image_url, of which only the detail matters: decoding
// it skips the URL, which may be a large data URL, instead of copying it.
type imageURL struct {
	Detail string `json:"detail"`
}

func (u *imageURL) UnmarshalJSON(data []byte) error {
	if kind(data) != '{' {
		return nil // a string (the Responses API's shape) or a malformed value
	}
	type plain imageURL
	return json.Unmarshal(data, (*plain)(u))
}

// decodeBody decodes data into b, turning decoding errors into messages that name the
// field.
func decodeBody(data []byte, b *body) error {
	if len(data) == 0 {
		return errors.New("missing")
	}
	if err := json.Unmarshal(data, b); err != nil {
		return fieldError(err)
	}
	return nil
}

// fieldError rewords a decoding error so that it names the field at fault.
func fieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("want %s, got %s", kindName(te.Type), te.Value)
		}
		return fmt.Errorf("%s: want %s, got %s", te.Field, kindName(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %w", se.Offset, err)
	}
	return err
}

// kindName describes the JSON a Go type decodes from.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	default:
		return "a " + t.Kind().String()
	}
}

// chatPrompt counts a chat completions prompt with OpenAI's formula.
func chatPrompt(c Codec, b *body, valid bool) (int64, error) {
	if b.Messages == nil {
		return 0, errors.New("messages: missing")
	}
	n := int64(tokensPerReply)
	for i := range b.Messages {
		m := &b.Messages[i]
		k, err := messageTokens(c, m, valid)
		if err != nil {
			return 0, fmt.Errorf("messages[%d].%w", i, err)
		}
		n += k
	}
	return n + rawTokens(c, b.Tools) + rawTokens(c, b.Functions), nil
}

// messageTokens counts one message with its overhead. An error names the field within
// the message.
func messageTokens(c Codec, m *message, valid bool) (int64, error) {
	n := int64(tokensPerMessage + c.Count(m.Role))
	k, err := contentTokens(c, m.Content, valid)
	if err != nil {
		return 0, fmt.Errorf("content: %w", err)
	}
	n += k
	if m.Name != "" {
		n += int64(c.Count(m.Name) + tokensPerName)
	}
	n += rawTokens(c, m.ToolCalls) + rawTokens(c, m.FunctionCall) + int64(c.Count(m.ToolCallID))
	return n, nil
}

// contentTokens counts a content field: a string, an array of parts, or null.
func contentTokens(c Codec, raw json.RawMessage, valid bool) (int64, error) {
	switch kind(raw) {
	case 0, 'n':
		return 0, nil
	case '"':
		s, err := unquote(raw)
		return int64(c.Count(s)), err
	case '[':
		var parts []part
		if !valid || !decodeValidParts(raw, &parts) {
			if err := json.Unmarshal(raw, &parts); err != nil {
				return 0, fieldError(err)
			}
		}
		var n int64
		for i := range parts {
			n += partTokens(c, &parts[i])
		}
		return n, nil
	default:
		return 0, errors.New("want a string or an array")
	}
}

// partTokens counts one content part. Parts whose cost cannot be known offline (audio,
// files) count nothing.
func partTokens(c Codec, p *part) int64 {
	switch p.Type {
	case "text", "input_text", "output_text":
		return int64(c.Count(p.Text))
	case "refusal":
		return int64(c.Count(p.Refusal))
	case "image_url", "input_image":
		if p.Detail == "low" || p.ImageURL.Detail == "low" {
			return ImageTokensLow
		}
		return ImageTokens
	default:
		return 0
	}
}

// completionsPrompt counts a completions prompt: a string, an array of strings, an array
// of token ids or an array of such arrays. It also returns the number of prompts.
func completionsPrompt(c Codec, raw json.RawMessage, valid bool) (tokens, prompts int64, err error) {
	if kind(raw) == 0 {
		return 0, 0, errors.New("prompt: missing")
	}
	tokens, prompts, err = textOrTokens(c, raw, valid)
	if err != nil {
		return 0, 0, fmt.Errorf("prompt: %w", err)
	}
	return tokens, prompts, nil
}

// embeddingsInput counts an embeddings input, which has the shapes of a completions
// prompt.
func embeddingsInput(c Codec, raw json.RawMessage, valid bool) (int64, error) {
	if kind(raw) == 0 {
		return 0, errors.New("input: missing")
	}
	n, _, err := textOrTokens(c, raw, valid)
	if err != nil {
		return 0, fmt.Errorf("input: %w", err)
	}
	return n, nil
}

// textOrTokens counts a string, an array of strings, an array of token ids or an array of
// arrays of token ids, and returns how many inputs it held.
func textOrTokens(c Codec, raw json.RawMessage, valid bool) (tokens, inputs int64, err error) {
	switch kind(raw) {
	case '"':
		s, err := unquote(raw)
		return int64(c.Count(s)), 1, err
	case '[':
	default:
		return 0, 0, errors.New("want a string or an array")
	}
	var items []json.RawMessage
	if valid {
		items = validElements(raw)
	} else if err := json.Unmarshal(raw, &items); err != nil {
		return 0, 0, fieldError(err)
	}
	if len(items) == 0 {
		return 0, 0, nil
	}
	if kind(items[0]) != '"' && kind(items[0]) != '[' {
		// One prompt as token ids: its length is its count.
		n, err := countIDs(raw, valid)
		if err != nil {
			return 0, 0, errors.New("want an array of strings, of token ids, or of arrays of token ids")
		}
		return n, 1, nil
	}
	for i, item := range items {
		switch kind(item) {
		case '"':
			s, err := unquote(item)
			if err != nil {
				return 0, 0, fmt.Errorf("[%d]: %w", i, err)
			}
			tokens += int64(c.Count(s))
		case '[':
			n, err := countIDs(item, valid)
			if err != nil {
				return 0, 0, fmt.Errorf("[%d]: want an array of token ids", i)
			}
			tokens += n
		default:
			return 0, 0, fmt.Errorf("[%d]: want a string or an array of token ids", i)
		}
	}
	return tokens, int64(len(items)), nil
}

// responsesPrompt counts a Responses API prompt: instructions as a system message, input
// as one user message (a string) or as items (an array), with the chat formula.
func responsesPrompt(c Codec, b *body, valid bool) (int64, error) {
	n := int64(tokensPerReply)
	if b.Instructions != nil && *b.Instructions != "" {
		n += int64(tokensPerMessage + c.Count("system") + c.Count(*b.Instructions))
	}
	switch kind(b.Input) {
	case 0, 'n':
	case '"':
		s, err := unquote(b.Input)
		if err != nil {
			return 0, fmt.Errorf("input: %w", err)
		}
		n += int64(tokensPerMessage + c.Count("user") + c.Count(s))
	case '[':
		var items []message
		if !valid || !decodeMessages(b.Input, &items) {
			if err := json.Unmarshal(b.Input, &items); err != nil {
				return 0, fmt.Errorf("input: %w", fieldError(err))
			}
		}
		for i := range items {
			k, err := itemTokens(c, &items[i], valid)
			if err != nil {
				return 0, fmt.Errorf("input[%d].%w", i, err)
			}
			n += k
		}
	default:
		return 0, errors.New("input: want a string or an array")
	}
	return n + rawTokens(c, b.Tools), nil
}

// itemTokens counts one Responses API input item. Items other than messages, function
// calls and their outputs (reasoning, references to stored items) count nothing.
func itemTokens(c Codec, it *message, valid bool) (int64, error) {
	switch it.Type {
	case "", "message":
		return messageTokens(c, it, valid)
	case "function_call", "custom_tool_call":
		return int64(tokensPerMessage + c.Count(it.Name) + c.Count(it.Arguments)), nil
	case "function_call_output", "custom_tool_call_output":
		k, err := contentTokens(c, it.Output, valid)
		if err != nil {
			return 0, fmt.Errorf("output: %w", err)
		}
		return tokensPerMessage + k, nil
	default:
		return 0, nil
	}
}

// rawTokens counts JSON as the text it is (tool definitions, tool calls); null and absent
// count nothing.
func rawTokens(c Codec, raw json.RawMessage) int64 {
	if k := kind(raw); k == 0 || k == 'n' {
		return 0
	}
	return int64(c.Count(string(raw)))
}

// kind is the first byte of a JSON value (its type), 0 when there is none. Values come
// from the decoder, so they carry no leading space.
func kind(raw json.RawMessage) byte {
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// unquote decodes a JSON string. Strings without escapes, the common case, are sliced.
func unquote(raw json.RawMessage) (string, error) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldError(err)
	}
	return s, nil
}
