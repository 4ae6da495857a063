package batch

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/sluice-llm/sluice"
)

// Phase is where a part stands, in one word: "collected", the batch's status at the
// provider, "uploaded" before its batch exists, or "preparing" before its file is.
func Phase(p *sluice.Part) string {
	switch {
	case p.Collected:
		return "collected"
	case p.Status != "":
		return string(p.Status)
	case p.FileID != "":
		return "uploaded"
	default:
		return "preparing"
	}
}

// Missing is a request of a job that has no result yet, and where it is.
type Missing struct {
	Line     int64  `json:"line"`
	CustomID string `json:"custom_id"`
	// Where is "part N (phase)" for a request in a batch (Phase), "pending" for one
	// waiting to be submitted again.
	Where string `json:"where"`
}

// MissingRequests lists the requests of the job that are not final, in line order, with
// where each is; parts are the job's parts (Progress.Parts).
func MissingRequests(ctx context.Context, st Store, jobID string, parts []*sluice.Part) ([]Missing, error) {
	missing := []Missing{}
	for _, p := range parts {
		if p.Collected {
			continue
		}
		where := fmt.Sprintf("part %d (%s)", p.Number, Phase(p))
		err := st.PartItems(ctx, jobID, p.Number, func(it *sluice.Item) error {
			missing = append(missing, Missing{Line: it.Line, CustomID: it.Request.CustomID, Where: where})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	err := st.Pending(ctx, jobID, 0, 0, func(it *sluice.Item) error {
		missing = append(missing, Missing{Line: it.Line, CustomID: it.Request.CustomID, Where: "pending"})
		return nil
	})
	slices.SortFunc(missing, func(a, b Missing) int { return cmp.Compare(a.Line, b.Line) })
	return missing, err
}
