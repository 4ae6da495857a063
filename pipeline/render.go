package pipeline

import (
	"bufio"
	"encoding/json"
	"io"

	"github.com/sluice-llm/sluice"
)

// RenderCounts says what WriteBatch wrote.
type RenderCounts struct {
	// Requests is the lines written; Skipped names the tasks left out because they use
	// other tasks' outputs, which only exist once those have run.
	Requests int
	Skipped  []string
}

// WriteBatch writes the requests of the plan's runnable documents as OpenAI Batch API
// input lines, custom_id "ID/task", for every task of the first stage.
func WriteBatch(w io.Writer, p *Plan) (RenderCounts, error) {
	var counts RenderCounts
	bw := bufio.NewWriterSize(w, 256<<10)
	for _, t := range p.Spec.Tasks {
		if t.Stage > 1 {
			counts.Skipped = append(counts.Skipped, t.Name)
		}
	}
	for _, d := range p.Docs {
		if d.Err != nil {
			continue
		}
		for _, t := range p.Spec.Tasks {
			if t.Stage > 1 {
				continue
			}
			fields, err := d.fields()
			if err != nil {
				return counts, err
			}
			body, err := t.render(fields, nil, t.Model, t.MaxTokens)
			if err != nil {
				return counts, err
			}
			line, err := json.Marshal(sluice.Request{
				CustomID: CustomID(d.ID, t.Name), Method: "POST",
				URL: sluice.EndpointChatCompletions, Body: body,
			})
			if err != nil {
				return counts, err
			}
			if _, err := bw.Write(append(line, '\n')); err != nil {
				return counts, err
			}
			counts.Requests++
		}
	}
	return counts, bw.Flush()
}
