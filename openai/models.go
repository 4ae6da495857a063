package openai

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sluice-llm/sluice"
)

// modelsPath is the model list endpoint, joined to the base URL like any request URL.
const modelsPath = "/v1/models"

// Models lists the ids of the models the upstream serves (GET /models), in the order the
// upstream gave them. It reads OpenAI's {"data":[{"id":...}]} and the {"models":[...]}
// form some servers use. Failures are *sluice.UpstreamError, as from Do.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	ep := c.endpoints[modelsPath]
	hreq, err := c.newRequest(ctx, http.MethodGet, ep.url, nil)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	start := time.Now()
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", c.noAnswer(ctx, "GET "+ep.display, err, start))
	}
	defer hresp.Body.Close()
	raw, err := readBody(hresp, c.maxBody)
	defer raw.release()
	if err != nil && !errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("list models: %w", c.noAnswer(ctx, "read answer from "+ep.display, err, start))
	}
	resp := &sluice.Response{StatusCode: hresp.StatusCode}
	var ue *sluice.UpstreamError
	if err != nil {
		ue = c.tooLarge(resp, hresp.Header)
	} else {
		ue = c.interpret(resp, hresp.Header, &raw)
	}
	if ue != nil {
		return nil, fmt.Errorf("list models: %w", ue)
	}
	ids, err := modelIDs(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	return ids, nil
}

// modelIDs reads the ids from a model list body.
func modelIDs(body []byte) ([]string, error) {
	type model struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	var list struct {
		Data   []model `json:"data"`
		Models []model `json:"models"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("read model list: %w", err)
	}
	ids := make([]string, 0, len(list.Data)+len(list.Models))
	for _, m := range append(list.Data, list.Models...) {
		if id := cmp.Or(m.ID, m.Name); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
