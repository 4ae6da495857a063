package sim

import (
	"encoding/json"
	"strconv"
)

// chatRequest is what the simulator reads of a chat completions request.
type chatRequest struct {
	Model               string          `json:"model"`
	Messages            *[]chatMessage  `json:"messages"`
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	N                   *int64          `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	Tools               json.RawMessage `json:"tools"`
	Functions           json.RawMessage `json:"functions"`
}

// streamOptions are the stream_options of a chat or completions request.
type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatMessage is a chat message, or a Responses API input item.
type chatMessage struct {
	Type         string          `json:"type"` // Responses API items
	Role         string          `json:"role"`
	Name         string          `json:"name"`
	Content      json.RawMessage `json:"content"`
	ToolCalls    json.RawMessage `json:"tool_calls"`
	FunctionCall json.RawMessage `json:"function_call"`
	ToolCallID   string          `json:"tool_call_id"`
	Arguments    string          `json:"arguments"`
	Output       json.RawMessage `json:"output"`
}

// contentPart is an element of an array content.
type contentPart struct {
	Type     string     `json:"type"`
	Text     string     `json:"text"`
	Refusal  string     `json:"refusal"`
	Detail   string     `json:"detail"`
	ImageURL *imageSpec `json:"image_url"`
}

// imageSpec is the detail of a chat image part's image_url object (the URL is not read).
type imageSpec struct {
	Detail string `json:"detail"`
}

// UnmarshalJSON reads an image_url object, and ignores the plain URL string of the
// Responses API's input_image.
func (im *imageSpec) UnmarshalJSON(data []byte) error {
	if len(data) == 0 || data[0] != '{' {
		return nil
	}
	type fields imageSpec
	return json.Unmarshal(data, (*fields)(im))
}

// chatRoles are the roles a chat message may have.
var chatRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

// decodeChat reads a chat completions request and counts its prompt.
func (j *job) decodeChat(body []byte) *apiError {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return decodeError(err)
	}
	if e := j.setModel(req.Model); e != nil {
		return e
	}
	if req.Messages == nil {
		return missingParam("messages")
	}
	msgs := *req.Messages
	if len(msgs) == 0 {
		return invalidRequest("messages", "empty_array", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	if e := j.setStream(req.Stream, req.StreamOptions); e != nil {
		return e
	}
	j.prompt = replyPrimer
	last := echo{tokens: 0}
	for i := range msgs {
		m := &msgs[i]
		param := "messages[" + strconv.Itoa(i) + "]"
		if !chatRoles[m.Role] {
			return invalidRequest(param+".role", "invalid_value", "Invalid value: '%s'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool' and 'function'.", m.Role)
		}
		k, text, e := j.countMessage(m, param)
		if e != nil {
			return e
		}
		j.prompt += k
		if m.Role == "user" {
			last = text
		}
	}
	j.prompt += j.countJSON(req.Tools) + j.countJSON(req.Functions)
	j.echoes = []echo{last}

	limit := req.MaxCompletionTokens
	param := "max_completion_tokens"
	if limit == nil {
		limit, param = req.MaxTokens, "max_tokens"
	}
	if e := j.setLimit(limit, param, 0); e != nil {
		return e
	}
	generated, e := j.setChoices(req.N, nil)
	if e != nil {
		return e
	}
	j.bound = mulSat(j.limit, generated)
	return nil
}

// countMessage counts a chat message (or a Responses API message item) with its overhead
// and returns its text.
func (j *job) countMessage(m *chatMessage, param string) (int64, echo, *apiError) {
	n := int64(perMessage + j.codec.Count(m.Role))
	text, k, e := j.content(m.Content, param+".content")
	if e != nil {
		return 0, echo{}, e
	}
	n += k
	if m.Name != "" {
		n += int64(j.codec.Count(m.Name) + perName)
	}
	n += j.countJSON(m.ToolCalls) + j.countJSON(m.FunctionCall) + int64(j.codec.Count(m.ToolCallID))
	return n, text, nil
}

// content reads a content field (a string, an array of parts, or null): its text and its
// tokens.
func (j *job) content(raw json.RawMessage, param string) (echo, int64, *apiError) {
	switch first(raw) {
	case 0, 'n':
		return echo{}, 0, nil
	case '"':
		s := unquote(raw)
		k := j.codec.Count(s)
		return echo{text: s, tokens: k}, int64(k), nil
	case '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return echo{}, 0, invalidRequest(param, "invalid_type", "Invalid type for '%s': expected an array of content parts.", param)
		}
		var text []byte
		var n int64
		for _, p := range parts {
			switch p.Type {
			case "text", "input_text", "output_text":
				n += int64(j.codec.Count(p.Text))
				text = append(text, p.Text...)
			case "refusal":
				n += int64(j.codec.Count(p.Refusal))
			case "image_url", "input_image":
				n += imageTokens(&p)
			}
		}
		return echo{text: string(text), tokens: -1}, n, nil
	default:
		return echo{}, 0, invalidRequest(param, "invalid_type", "Invalid type for '%s': expected one of a string or an array of objects, but got %s instead.", param, kindOf(raw))
	}
}

// imageTokens is the fixed price of an image part.
func imageTokens(p *contentPart) int64 {
	if p.Detail == "low" || p.ImageURL != nil && p.ImageURL.Detail == "low" {
		return imageLow
	}
	return imageHigh
}

// appendChat appends a chat.completion object.
func (j *job) appendChat(b []byte, out *outcome, created int64) []byte {
	b = j.appendHead(append(b, '{'), "chatcmpl-", "chat.completion", created)
	b = append(appendKey(b, "choices"), '[')
	for i, c := range out.choices {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendIntField(append(b, '{'), "index", int64(i))
		b = append(appendKey(b, "message"), '{')
		b = appendStringField(b, "role", "assistant")
		b = appendStringField(b, "content", c.text)
		b = append(appendKey(b, "refusal"), "null"...)
		b = append(appendKey(b, "annotations"), "[]}"...)
		b = append(appendKey(b, "logprobs"), "null"...)
		b = append(appendStringField(b, "finish_reason", c.finish), '}')
	}
	b = append(b, ']')
	b = j.appendUsage(b, out)
	b = appendStringField(b, "service_tier", "default")
	b = appendStringField(b, "system_fingerprint", "fp_sim")
	return append(b, '}')
}
