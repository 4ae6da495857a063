package sim

import (
	"encoding/json"
)

// completionsRequest is what the simulator reads of a (legacy) completions request.
type completionsRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	MaxTokens     *int64          `json:"max_tokens"`
	N             *int64          `json:"n"`
	BestOf        *int64          `json:"best_of"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
}

// decodeCompletions reads a completions request and counts its prompts.
func (j *job) decodeCompletions(body []byte) *apiError {
	var req completionsRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return decodeError(err)
	}
	if e := j.setModel(req.Model); e != nil {
		return e
	}
	if first(req.Prompt) == 0 {
		return missingParam("prompt")
	}
	if e := j.setStream(req.Stream, req.StreamOptions); e != nil {
		return e
	}
	texts, counts, e := j.textsOrTokens(req.Prompt, "prompt")
	if e != nil {
		return e
	}
	if len(texts) == 0 {
		texts, counts = []string{""}, []int{0}
	}
	for i, t := range texts {
		j.prompt += int64(counts[i])
		j.echoes = append(j.echoes, echo{text: t, tokens: counts[i]})
	}
	if e := j.setLimit(req.MaxTokens, "max_tokens", defaultCompletionsMax); e != nil {
		return e
	}
	generated, e := j.setChoices(req.N, req.BestOf)
	if e != nil {
		return e
	}
	j.bound = mulSat(mulSat(j.limit, generated), int64(len(j.echoes)))
	return nil
}

// appendCompletion appends a text_completion object.
func (j *job) appendCompletion(b []byte, out *outcome, created int64) []byte {
	b = j.appendHead(append(b, '{'), "cmpl-", "text_completion", created)
	b = append(appendKey(b, "choices"), '[')
	for i, c := range out.choices {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStringField(append(b, '{'), "text", c.text)
		b = appendIntField(b, "index", int64(i))
		b = append(appendKey(b, "logprobs"), "null"...)
		b = append(appendStringField(b, "finish_reason", c.finish), '}')
	}
	b = append(b, ']')
	b = j.appendUsage(b, out)
	return append(b, '}')
}
