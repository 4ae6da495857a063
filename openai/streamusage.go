package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/sluice-llm/sluice"
	tok "github.com/sluice-llm/sluice/tokens"
)

// includeUsage is the member added to a streamed request that does not ask for usage.
const includeUsage = `"stream_options":{"include_usage":true}`

// asksUsage reports whether sluice may add stream_options to a request to path: Chat
// Completions and Completions take it; Responses streams always carry usage.
func asksUsage(path string) bool {
	return path == sluice.EndpointChatCompletions || path == sluice.EndpointCompletions
}

// withStreamUsage returns body with "stream_options":{"include_usage":true} added when
// body is one JSON object whose top-level "stream" is true and that has no
// "stream_options"; added is false, and body is returned as it is, otherwise. Nothing
// else of body changes: its members keep their bytes and their order.
func withStreamUsage(body []byte) (out []byte, added bool) {
	if !bytes.Contains(body, []byte(`"stream`)) {
		return body, false // fast path: most bodies do not stream
	}
	m, ok := streamMembers(body)
	if !ok || !m.stream || m.hasOptions {
		return body, false
	}
	end := bytes.LastIndexByte(body, '}')
	out = make([]byte, 0, len(body)+len(includeUsage)+1)
	out = append(out, body[:end]...)
	out = append(out, ',')
	out = append(out, includeUsage...)
	return append(out, body[end:]...), true
}

// members are the top-level members of a request body that say how it streams.
type members struct {
	hasStream  bool // "stream" is present
	stream     bool // "stream" is true
	hasOptions bool // "stream_options" is present
}

// streamMembers reads the top level of a JSON object: whether "stream" is present and
// true and whether "stream_options" is present. ok is false when body is not exactly one
// valid JSON object.
func streamMembers(body []byte) (m members, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return members{}, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return members{}, false
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return members{}, false
		}
		switch key {
		case "stream":
			m.hasStream, m.stream = true, string(v) == "true"
		case "stream_options":
			m.hasOptions = true
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return members{}, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return members{}, false // something after the object
	}
	return m, true
}

// rejectsStreamOptions reports whether an answer refuses the stream_options sluice added:
// a 400 whose error names it.
func rejectsStreamOptions(resp *sluice.Response, err error) bool {
	var ue *sluice.UpstreamError
	if resp == nil || resp.StatusCode != 400 || !errors.As(err, &ue) {
		return false
	}
	return strings.Contains(ue.Message, "stream_options") || bytes.Contains(resp.Body, []byte("stream_options"))
}

// countUsage fills in the usage of a 2xx Chat Completions or Completions answer that came
// without any: the prompt as estimated from the request, the completion counted in the
// answer's text with the model's tokenizer. It marks the Response UsageCounted.
func countUsage(req *sluice.Request, resp *sluice.Response) {
	if resp.Usage != (sluice.Usage{}) || resp.StatusCode/100 != 2 || !asksUsage(req.URL) {
		return
	}
	est, err := tok.Default().Estimate(req)
	if err != nil {
		return // a body the estimator cannot read: the upstream took it, but sluice cannot count it
	}
	text := answerText(resp.Body)
	resp.Usage = sluice.Usage{PromptTokens: est.PromptTokens, CompletionTokens: int64(tok.ForModel(est.Model).Count(text))}
	resp.UsageCounted = true
}

// answerText is the generated text of a chat.completion or text_completion: every
// choice's content, reasoning, refusal, tool-call arguments and text, joined.
func answerText(body []byte) string {
	var v struct {
		Choices []struct {
			Text    string `json:"text"`
			Message struct {
				Content          any    `json:"content"`
				ReasoningContent string `json:"reasoning_content"`
				Reasoning        string `json:"reasoning"`
				Refusal          string `json:"refusal"`
				ToolCalls        []struct {
					Function struct {
						Name      string `json:"name"`
						Arguments string `json:"arguments"`
					} `json:"function"`
				} `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range v.Choices {
		m := c.Message
		b.WriteString(c.Text)
		if s, ok := m.Content.(string); ok {
			b.WriteString(s)
		}
		b.WriteString(m.ReasoningContent)
		b.WriteString(m.Reasoning)
		b.WriteString(m.Refusal)
		for _, tc := range m.ToolCalls {
			b.WriteString(tc.Function.Name)
			b.WriteString(tc.Function.Arguments)
		}
	}
	return b.String()
}
