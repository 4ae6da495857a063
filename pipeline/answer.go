package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sluice-llm/sluice"
)

// errTruncated marks an answer cut off at its output limit.
var errTruncated = errors.New("truncated")

// answer is what a task needs of a chat completion.
type answer struct {
	Model   string
	Text    string
	Finish  string
	Usage   sluice.Usage
	Refusal string
}

// parseAnswer reads a chat completion body.
func parseAnswer(body []byte) (*answer, error) {
	var b struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
				Refusal *string `json:"refusal"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *struct {
			PromptTokens        int64 `json:"prompt_tokens"`
			CompletionTokens    int64 `json:"completion_tokens"`
			PromptTokensDetails *struct {
				CachedTokens int64 `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("the answer is not a chat completion: %w", err)
	}
	if len(b.Choices) == 0 {
		return nil, errors.New("the answer has no choices")
	}
	c := b.Choices[0]
	a := &answer{Model: b.Model, Finish: c.FinishReason}
	if c.Message.Content != nil {
		a.Text = *c.Message.Content
	}
	if c.Message.Refusal != nil {
		a.Refusal = *c.Message.Refusal
	}
	if u := b.Usage; u != nil {
		a.Usage = sluice.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
		if u.PromptTokensDetails != nil {
			a.Usage.CachedTokens = u.PromptTokensDetails.CachedTokens
		}
	}
	return a, nil
}

// useLedger takes the usage the ledger recorded for the answer (Result.Usage), when there
// is one, over the body's: the upstream read it from its provider's own fields (DeepSeek's
// prompt_cache_hit_tokens, say), which parseAnswer does not know.
func (a *answer) useLedger(u *sluice.Usage) {
	if u != nil && *u != (sluice.Usage{}) {
		a.Usage = *u
	}
}

// errorMessage describes a failed request's last answer or error.
func errorMessage(res *sluice.Result) string {
	if res.StatusCode != 0 {
		var b struct {
			Error struct {
				Message string `json:"message"`
				Code    any    `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(res.Body, &b) == nil && b.Error.Message != "" {
			return fmt.Sprintf("upstream status %d: %s", res.StatusCode, b.Error.Message)
		}
		return fmt.Sprintf("upstream status %d", res.StatusCode)
	}
	if res.ErrorMessage != "" {
		return res.ErrorMessage
	}
	return res.ErrorCode
}

// check validates an answer for a task and returns the cell value for a JSON task (the
// compacted JSON; nil for a text task). A JSON answer must be complete (not cut off at
// max_tokens), JSON, and match the task's schema; a text answer is taken as it is.
func (t *Task) check(a *answer, maxTokens int64) (value json.RawMessage, err error) {
	if a.Refusal != "" {
		return nil, fmt.Errorf("refused: %s", a.Refusal)
	}
	if !t.JSON {
		return nil, nil // a text answer cut at max_tokens is what the task asked for
	}
	if a.Finish == "length" {
		if maxTokens > 0 {
			return nil, fmt.Errorf("%w at max_tokens (%d)", errTruncated, maxTokens)
		}
		return nil, fmt.Errorf("%w (finish_reason length)", errTruncated)
	}
	v, err := parseJSONAnswer(a.Text)
	if err != nil {
		return nil, err
	}
	if t.schema != nil {
		if err := t.schema.validate(v); err != nil {
			return nil, fmt.Errorf("does not match the schema: %w", err)
		}
	}
	return v, nil
}
