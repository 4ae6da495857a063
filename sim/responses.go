package sim

import (
	"encoding/json"
	"strconv"
)

// responsesRequest is what the simulator reads of a Responses API request.
type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    *string         `json:"instructions"`
	MaxOutputTokens *int64          `json:"max_output_tokens"`
	Stream          bool            `json:"stream"`
	Tools           json.RawMessage `json:"tools"`
}

// decodeResponses reads a Responses API request and counts its input.
func (j *job) decodeResponses(body []byte) *apiError {
	var req responsesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return decodeError(err)
	}
	if e := j.setModel(req.Model); e != nil {
		return e
	}
	if req.Stream {
		return invalidRequest("stream", "unsupported_value", "The simulator does not stream the Responses API.")
	}
	j.prompt = replyPrimer
	if req.Instructions != nil && *req.Instructions != "" {
		j.prompt += int64(perMessage + j.codec.Count("system") + j.codec.Count(*req.Instructions))
	}
	last := echo{}
	switch first(req.Input) {
	case 0, 'n':
	case '"':
		s := unquote(req.Input)
		k := j.codec.Count(s)
		j.prompt += int64(perMessage + j.codec.Count("user") + k)
		last = echo{text: s, tokens: k}
	case '[':
		var items []chatMessage
		if err := json.Unmarshal(req.Input, &items); err != nil {
			return invalidRequest("input", "invalid_type", "Invalid type for 'input': expected an array of input items.")
		}
		for i := range items {
			k, text, e := j.countItem(&items[i], "input["+strconv.Itoa(i)+"]")
			if e != nil {
				return e
			}
			j.prompt += k
			if items[i].Role == "user" {
				last = text
			}
		}
	default:
		return invalidRequest("input", "invalid_type", "Invalid type for 'input': expected a string or an array of input items, but got %s instead.", kindOf(req.Input))
	}
	j.prompt += j.countJSON(req.Tools)
	j.echoes = []echo{last}
	if e := j.setLimit(req.MaxOutputTokens, "max_output_tokens", 0); e != nil {
		return e
	}
	j.maxOutput = req.MaxOutputTokens
	j.bound = j.limit
	return nil
}

// countItem counts a Responses API input item: a message, a function call or its output;
// other items (reasoning, item references) count nothing.
func (j *job) countItem(it *chatMessage, param string) (int64, echo, *apiError) {
	switch it.Type {
	case "", "message":
		return j.countMessage(it, param)
	case "function_call", "custom_tool_call":
		return int64(perMessage + j.codec.Count(it.Name) + j.codec.Count(it.Arguments)), echo{}, nil
	case "function_call_output", "custom_tool_call_output":
		_, k, e := j.content(it.Output, param+".output")
		return perMessage + k, echo{}, e
	default:
		return 0, echo{}, nil
	}
}

// appendResponse appends a response object with one output message.
func (j *job) appendResponse(b []byte, out *outcome, created int64) []byte {
	c := out.choices[0]
	status := "completed"
	if c.finish == "length" && j.maxOutput != nil {
		status = "incomplete"
	}
	b = append(b, `{"id":"`...)
	b = append(appendID(b, "resp_", j.n), '"')
	b = appendStringField(b, "object", "response")
	b = appendIntField(b, "created_at", created)
	b = appendStringField(b, "status", status)
	b = append(appendKey(b, "error"), "null"...)
	if status == "incomplete" {
		b = append(appendKey(b, "incomplete_details"), `{"reason":"max_output_tokens"}`...)
	} else {
		b = append(appendKey(b, "incomplete_details"), "null"...)
	}
	if j.maxOutput != nil {
		b = appendIntField(b, "max_output_tokens", *j.maxOutput)
	} else {
		b = append(appendKey(b, "max_output_tokens"), "null"...)
	}
	b = appendStringField(b, "model", j.model)
	b = append(appendKey(b, "output"), `[{"type":"message","id":"`...)
	b = append(appendID(b, "msg_", j.n), '"')
	b = appendStringField(b, "status", status)
	b = appendStringField(b, "role", "assistant")
	b = append(appendKey(b, "content"), `[{"type":"output_text","annotations":[]`...)
	b = append(appendStringField(b, "text", c.text), "}]}]"...)
	b = append(appendKey(b, "usage"), '{')
	b = appendIntField(b, "input_tokens", j.prompt)
	b = append(appendKey(b, "input_tokens_details"), `{"cached_tokens":0}`...)
	b = appendIntField(b, "output_tokens", out.tokens)
	b = append(appendKey(b, "output_tokens_details"), `{"reasoning_tokens":0}`...)
	b = appendIntField(b, "total_tokens", j.prompt+out.tokens)
	return append(b, "}}"...)
}
