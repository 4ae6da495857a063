package openai

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-llm/sluice"
)

// maxIndex bounds the choice and tool-call indexes a stream may use, so that a garbage
// index cannot make the assembler allocate without limit.
const maxIndex = 1024

// streamError is an error the upstream reported inside a stream.
type streamError struct{ info errorInfo }

func (e *streamError) Error() string { return "stream error: " + e.info.Message }

// Errors for streams that cannot be assembled.
var (
	errStreamEmpty = errors.New("empty stream")
	errStreamCut   = errors.New("stream ended before its end marker")
)

// streamKind is the API a stream comes from.
type streamKind int

const (
	streamUnknown     streamKind = iota
	streamChat                   // chat.completion.chunk objects, then [DONE]
	streamCompletions            // text_completion objects, then [DONE]
	streamResponses              // typed response.* events, ending in response.completed
)

// assembleStream turns a whole server-sent event stream into the JSON object the same
// request would have answered without "stream": true, and reads its usage:
//
//   - Chat Completions chunks become one chat.completion: per choice, the content,
//     reasoning, refusal and tool-call arguments concatenated, the role, finish_reason
//     and log probabilities; usage from the last chunk that had one;
//   - Completions chunks become one text_completion, the text concatenated per choice
//     (log probabilities are dropped);
//   - Responses events give the response object of the final response.completed (or
//     response.incomplete) event.
//
// A stream that ends before its end marker ([DONE], or the final Responses event), that
// has an event that is not JSON, or that reports an error, is an error.
func assembleStream(data []byte) (json.RawMessage, sluice.Usage, error) {
	var a assembler
	if err := forEachEvent(data, a.event); err != nil {
		return nil, sluice.Usage{}, err
	}
	return a.result()
}

// assembler collects a stream's events.
type assembler struct {
	kind    streamKind
	done    bool // the end marker was seen
	content bool // an event carried generated content (for the time to first token)
	events  int
	head    chunkHead
	usage   json.RawMessage
	choices []*choiceAcc
	final   json.RawMessage // Responses: the final response object
}

// chunkHead are the fields of a chunk that describe the whole completion.
type chunkHead struct {
	ID                json.RawMessage `json:"id"`
	Created           json.RawMessage `json:"created"`
	Model             json.RawMessage `json:"model"`
	SystemFingerprint json.RawMessage `json:"system_fingerprint"`
	ServiceTier       json.RawMessage `json:"service_tier"`
}

// chunk is one streamed event's data, for every API sluice assembles.
type chunk struct {
	chunkHead
	Object   string          `json:"object"`
	Type     string          `json:"type"` // Responses events
	Choices  []chunkChoice   `json:"choices"`
	Usage    json.RawMessage `json:"usage"`
	Error    json.RawMessage `json:"error"`
	Response json.RawMessage `json:"response"` // Responses events
}

type chunkChoice struct {
	Index        int             `json:"index"`
	Delta        *chunkDelta     `json:"delta"`
	Text         *string         `json:"text"` // Completions
	FinishReason *string         `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

type chunkDelta struct {
	Role             string          `json:"role"`
	Content          *string         `json:"content"`
	ReasoningContent *string         `json:"reasoning_content"` // DeepSeek, Qwen, vLLM
	Reasoning        *string         `json:"reasoning"`         // OpenRouter, newer vLLM
	Refusal          *string         `json:"refusal"`
	ToolCalls        []toolCallDelta `json:"tool_calls"`
}

type toolCallDelta struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// choiceAcc accumulates one choice.
type choiceAcc struct {
	seen                                          bool
	role                                          string
	content, reasoningContent, reasoning, refusal part
	finish                                        *string
	toolCalls                                     []*toolCallAcc
	logprobs, refusalLogprobs                     []json.RawMessage
	hasLogprobs                                   bool
}

// part is a text field of a message, built from deltas.
type part struct {
	b   strings.Builder
	set bool // some delta had the field, even empty
}

func (p *part) add(s *string) {
	if s != nil {
		p.b.WriteString(*s)
		p.set = true
	}
}

// value is the text, nil when no delta had the field.
func (p *part) value() *string {
	if !p.set {
		return nil
	}
	return ptr(p.b.String())
}

type toolCallAcc struct {
	id, typ, name string
	args          strings.Builder
}

// event takes one event of the stream.
func (a *assembler) event(name string, payload []byte) error {
	payload = bytes.TrimSpace(payload)
	if a.done {
		return nil // nothing after the end marker matters
	}
	if string(payload) == "[DONE]" {
		if a.kind == streamResponses {
			return nil
		}
		a.done = true
		return nil
	}
	var c chunk
	if err := decodeChunk(payload, &c); err != nil {
		return fmt.Errorf("stream event %d is not JSON (cut short?): %w", a.events+1, err)
	}
	a.events++
	if se := eventError(name, &c, payload); se != nil {
		return se
	}
	if a.kind == streamUnknown {
		a.kind = kindOf(&c)
	}
	switch a.kind {
	case streamResponses:
		return a.responseEvent(&c)
	default:
		return a.completionChunk(&c)
	}
}

// decodeChunk decodes an event's data into c. A field of an unexpected type leaves the
// rest decoded and is no error.
func decodeChunk(payload []byte, c *chunk) error {
	err := json.Unmarshal(payload, c)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}

// eventError returns the error an event named name, of data payload decoded into c,
// reports: an error event, a chunk with an error member, or a failed Responses answer;
// nil for any other event.
func eventError(name string, c *chunk, payload []byte) *streamError {
	switch {
	case isSet(c.Error) || name == "error" || c.Type == "error":
		return &streamError{info: parseErrorBody(payload)}
	case c.Type == "response.failed":
		var r struct {
			Error json.RawMessage `json:"error"`
		}
		_ = json.Unmarshal(c.Response, &r)
		ei := parseErrorBody(r.Error)
		if ei.Message == "" {
			ei.Message = "response failed"
		}
		return &streamError{info: ei}
	}
	return nil
}

// kindOf tells the stream's API from its first chunk.
func kindOf(c *chunk) streamKind {
	switch {
	case strings.HasPrefix(c.Type, "response."):
		return streamResponses
	case c.Object == "text_completion":
		return streamCompletions
	case c.Object == "" && len(c.Choices) > 0 && c.Choices[0].Delta == nil && c.Choices[0].Text != nil:
		return streamCompletions
	default:
		return streamChat
	}
}

// hasContent reports whether a chunk's choice carries generated text: content, reasoning,
// a refusal or a tool call.
func hasContent(ch *chunkChoice) bool {
	nonEmpty := func(s *string) bool { return s != nil && *s != "" }
	if nonEmpty(ch.Text) {
		return true
	}
	d := ch.Delta
	return d != nil && (nonEmpty(d.Content) || nonEmpty(d.ReasoningContent) || nonEmpty(d.Reasoning) ||
		nonEmpty(d.Refusal) || len(d.ToolCalls) > 0)
}

// responseEvent takes a Responses API event: only the final one carries the answer; the
// first delta (response.output_text.delta and the like) is the first token.
func (a *assembler) responseEvent(c *chunk) error {
	if strings.HasSuffix(c.Type, ".delta") {
		a.content = true
	}
	switch c.Type {
	case "response.completed", "response.incomplete":
		a.final, a.done = c.Response, true
	}
	return nil
}

// completionChunk takes a Chat Completions or Completions chunk.
func (a *assembler) completionChunk(c *chunk) error {
	setFirst(&a.head.ID, c.ID)
	setFirst(&a.head.Created, c.Created)
	setFirst(&a.head.Model, c.Model)
	setFirst(&a.head.SystemFingerprint, c.SystemFingerprint)
	setFirst(&a.head.ServiceTier, c.ServiceTier)
	if isSet(c.Usage) {
		a.usage = c.Usage
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		acc, err := a.choice(ch.Index)
		if err != nil {
			return err
		}
		acc.seen = true
		if ch.FinishReason != nil {
			acc.finish = ch.FinishReason
		}
		acc.content.add(ch.Text)
		if err := acc.addDelta(ch.Delta); err != nil {
			return err
		}
		a.content = a.content || hasContent(ch)
		acc.addLogprobs(ch.Logprobs)
	}
	return nil
}

// choice returns the accumulator for choice index i.
func (a *assembler) choice(i int) (*choiceAcc, error) {
	if i < 0 || i >= maxIndex {
		return nil, fmt.Errorf("stream choice index %d out of range", i)
	}
	for len(a.choices) <= i {
		a.choices = append(a.choices, &choiceAcc{})
	}
	return a.choices[i], nil
}

func (acc *choiceAcc) addDelta(d *chunkDelta) error {
	if d == nil {
		return nil
	}
	if acc.role == "" {
		acc.role = d.Role
	}
	acc.content.add(d.Content)
	acc.reasoningContent.add(d.ReasoningContent)
	acc.reasoning.add(d.Reasoning)
	acc.refusal.add(d.Refusal)
	for _, tc := range d.ToolCalls {
		if tc.Index < 0 || tc.Index >= maxIndex {
			return fmt.Errorf("stream tool call index %d out of range", tc.Index)
		}
		for len(acc.toolCalls) <= tc.Index {
			acc.toolCalls = append(acc.toolCalls, &toolCallAcc{})
		}
		t := acc.toolCalls[tc.Index]
		setFirstString(&t.id, tc.ID)
		setFirstString(&t.typ, tc.Type)
		setFirstString(&t.name, tc.Function.Name)
		t.args.WriteString(tc.Function.Arguments)
	}
	return nil
}

// addLogprobs appends a chunk's log probabilities ({"content":[...],"refusal":[...]}).
func (acc *choiceAcc) addLogprobs(raw json.RawMessage) {
	if !isSet(raw) {
		return
	}
	var lp struct {
		Content []json.RawMessage `json:"content"`
		Refusal []json.RawMessage `json:"refusal"`
	}
	if json.Unmarshal(raw, &lp) != nil {
		return
	}
	acc.hasLogprobs = true
	acc.logprobs = append(acc.logprobs, lp.Content...)
	acc.refusalLogprobs = append(acc.refusalLogprobs, lp.Refusal...)
}

func setFirst(dst *json.RawMessage, v json.RawMessage) {
	if !isSet(*dst) && isSet(v) {
		*dst = v
	}
}

func setFirstString(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// isSet reports whether a raw JSON value is present and not null.
func isSet(v json.RawMessage) bool { return len(v) > 0 && string(v) != "null" }

// result is the assembled answer.
func (a *assembler) result() (json.RawMessage, sluice.Usage, error) {
	switch {
	case a.events == 0:
		return nil, sluice.Usage{}, errStreamEmpty
	case !a.done:
		return nil, sluice.Usage{}, errStreamCut
	case a.kind == streamResponses:
		if !isSet(a.final) {
			return nil, sluice.Usage{}, errors.New("stream's final event has no response")
		}
		u, err := decodeUsage(a.final)
		return a.final, u, err
	}
	var body []byte
	var err error
	if a.kind == streamCompletions {
		body, err = marshal(a.completion())
	} else {
		body, err = marshal(a.chatCompletion())
	}
	if err != nil {
		return nil, sluice.Usage{}, fmt.Errorf("assemble stream: %w", err)
	}
	u := readUsage(a.usage)
	return body, u.usage(), nil
}

// The assembled objects, with fields in the order the API writes them.
type (
	chatCompletion struct {
		ID                json.RawMessage `json:"id"`
		Object            string          `json:"object"`
		Created           json.RawMessage `json:"created"`
		Model             json.RawMessage `json:"model"`
		Choices           []chatChoice    `json:"choices"`
		Usage             json.RawMessage `json:"usage,omitempty"`
		ServiceTier       json.RawMessage `json:"service_tier,omitempty"`
		SystemFingerprint json.RawMessage `json:"system_fingerprint,omitempty"`
	}
	chatChoice struct {
		Index        int           `json:"index"`
		Message      chatMessage   `json:"message"`
		Logprobs     *chatLogprobs `json:"logprobs"`
		FinishReason *string       `json:"finish_reason"`
	}
	chatMessage struct {
		Role             string     `json:"role"`
		Content          *string    `json:"content"`
		ReasoningContent *string    `json:"reasoning_content,omitempty"`
		Reasoning        *string    `json:"reasoning,omitempty"`
		Refusal          *string    `json:"refusal"`
		ToolCalls        []toolCall `json:"tool_calls,omitempty"`
	}
	chatLogprobs struct {
		Content []json.RawMessage `json:"content"`
		Refusal []json.RawMessage `json:"refusal"`
	}
	toolCall struct {
		ID       string       `json:"id"`
		Type     string       `json:"type"`
		Function toolFunction `json:"function"`
	}
	toolFunction struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
	textCompletion struct {
		ID                json.RawMessage `json:"id"`
		Object            string          `json:"object"`
		Created           json.RawMessage `json:"created"`
		Model             json.RawMessage `json:"model"`
		Choices           []textChoice    `json:"choices"`
		Usage             json.RawMessage `json:"usage,omitempty"`
		SystemFingerprint json.RawMessage `json:"system_fingerprint,omitempty"`
	}
	textChoice struct {
		Text         string          `json:"text"`
		Index        int             `json:"index"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	}
)

func (a *assembler) chatCompletion() *chatCompletion {
	out := &chatCompletion{
		ID: a.head.ID, Object: "chat.completion", Created: a.head.Created, Model: a.head.Model,
		Choices: make([]chatChoice, 0, len(a.choices)), Usage: a.usage,
		ServiceTier: a.head.ServiceTier, SystemFingerprint: a.head.SystemFingerprint,
	}
	for i, acc := range a.choices {
		if !acc.seen {
			continue
		}
		m := chatMessage{
			Role:             cmp.Or(acc.role, "assistant"),
			ReasoningContent: acc.reasoningContent.value(),
			Reasoning:        acc.reasoning.value(),
			Refusal:          acc.refusal.value(),
		}
		// Like a non-streamed answer, content is null beside tool calls or a refusal.
		if acc.content.b.Len() > 0 || (len(acc.toolCalls) == 0 && !acc.refusal.set) {
			m.Content = ptr(acc.content.b.String())
		}
		for _, t := range acc.toolCalls {
			m.ToolCalls = append(m.ToolCalls, toolCall{ID: t.id, Type: cmp.Or(t.typ, "function"),
				Function: toolFunction{Name: t.name, Arguments: t.args.String()}})
		}
		c := chatChoice{Index: i, Message: m, FinishReason: acc.finish}
		if acc.hasLogprobs {
			c.Logprobs = &chatLogprobs{Content: acc.logprobs, Refusal: acc.refusalLogprobs}
		}
		out.Choices = append(out.Choices, c)
	}
	return out
}

func (a *assembler) completion() *textCompletion {
	out := &textCompletion{
		ID: a.head.ID, Object: "text_completion", Created: a.head.Created, Model: a.head.Model,
		Choices: make([]textChoice, 0, len(a.choices)), Usage: a.usage,
		SystemFingerprint: a.head.SystemFingerprint,
	}
	for i, acc := range a.choices {
		if acc.seen {
			out.Choices = append(out.Choices, textChoice{Text: acc.content.b.String(), Index: i, FinishReason: acc.finish})
		}
	}
	return out
}

// marshal encodes v without escaping <, > and &, so that the text reads as the upstream
// wrote it.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return slices.Clip(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

func ptr[T any](v T) *T { return &v }
