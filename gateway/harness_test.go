package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-llm/sluice/gateway"
	"github.com/sluice-llm/sluice/sim"
)

const clientKey = "sk-client-key-1"

// startSim serves a simulator on loopback and returns its base URL (with /v1).
func startSim(t *testing.T, cfg sim.Config) (string, *sim.Server) {
	t.Helper()
	s := sim.New(cfg)
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return hs.URL + "/v1", s
}

// startGateway serves a gateway for cfg (with clientKey added when it has no keys) and
// returns an SDK client for it. Close the server to wait for the handlers to end (their
// usage is counted after the client has its answer).
func startGateway(t *testing.T, cfg gateway.Config) (openai.Client, *gateway.Gateway, *httptest.Server) {
	t.Helper()
	if len(cfg.Keys) == 0 {
		cfg.Keys = []gateway.Key{{Name: "alice", Hash: gateway.HashKey(clientKey)}}
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := g.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return client(hs.URL, clientKey), g, hs
}

func client(url, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0),
		option.WithHTTPClient(&http.Client{Transport: &http.Transport{}}))
}

func statusOf(err error) int {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}
