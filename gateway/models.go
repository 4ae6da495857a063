package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tidwall/gjson"
)

// modelList is the models the upstreams serve, fetched from those that list none in the
// config, kept for a while.
type modelList struct {
	ttl time.Duration

	mu   sync.Mutex
	at   time.Time
	list []modelObject
}

// modelObject is a model as GET /v1/models lists it.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// models returns the models clients may ask for: the upstreams', then the aliases.
func (g *Gateway) models(ctx context.Context) []modelObject {
	m := &g.modelCache
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.list != nil && time.Since(m.at) < m.ttl {
		return m.list
	}
	seen := map[string]bool{}
	list := []modelObject{}
	add := func(id, owner string) {
		if !seen[id] {
			seen[id] = true
			list = append(list, modelObject{ID: id, Object: "model", OwnedBy: owner})
		}
	}
	for _, u := range g.ups {
		ids := u.Models
		if len(ids) == 0 {
			var err error
			if ids, err = g.fetchModels(ctx, u); err != nil {
				g.cfg.Logger.Warn("gateway: list models", "upstream", u.Name, "err", err)
				continue
			}
		}
		for _, id := range ids {
			add(id, u.Name)
		}
	}
	for from := range g.cfg.Aliases {
		add(from, "sluice")
	}
	slices.SortStableFunc(list, func(a, b modelObject) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	m.list, m.at = list, time.Now()
	return list
}

// fetchModels asks an upstream that serves every model which models it has.
func (g *Gateway) fetchModels(ctx context.Context, u *upstream) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.base+"/models", nil)
	if err != nil {
		return nil, err
	}
	if u.auth != nil {
		req.Header["Authorization"] = u.auth
	}
	resp, err := u.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &httpStatusError{resp.StatusCode}
	}
	var ids []string
	for _, m := range gjson.GetBytes(data, "data").Array() {
		if id := m.Get("id").String(); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

type httpStatusError struct{ status int }

func (e *httpStatusError) Error() string { return "status " + http.StatusText(e.status) }

// serveModels serves GET /v1/models.
func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request) {
	if _, ok := g.authenticate(r); !ok {
		writeError(w, errUnauthorized)
		return
	}
	writeJSON(w, struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}{"list", g.models(r.Context())})
}

// serveModel serves GET /v1/models/{model}.
func (g *Gateway) serveModel(w http.ResponseWriter, r *http.Request) {
	if _, ok := g.authenticate(r); !ok {
		writeError(w, errUnauthorized)
		return
	}
	id := r.PathValue("model")
	for _, m := range g.models(r.Context()) {
		if m.ID == id {
			writeJSON(w, m)
			return
		}
	}
	writeError(w, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found", param: "model",
		msg: "The model `" + id + "` does not exist or you do not have access to it."})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v) // plain structs: cannot fail
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
