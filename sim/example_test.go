package sim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/sluice-llm/sluice/sim"
)

// The in-process transport serves requests without sockets.
func ExampleServer_Transport() {
	s := sim.New(sim.Config{Seed: 1})
	defer s.Close()
	client := &http.Client{Transport: s.Transport()}
	resp, err := client.Post("http://sim.invalid/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ask r00001"}],"max_tokens":8}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var c struct {
		Choices []struct {
			Message      struct{ Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		fmt.Println(err)
		return
	}
	// The answer echoes the message, here cut at max_tokens.
	fmt.Println(resp.StatusCode, c.Choices[0].FinishReason, c.Usage.PromptTokens, c.Usage.CompletionTokens)
	fmt.Println(strings.HasPrefix(c.Choices[0].Message.Content, "ask r00001"))
	// Output:
	// 200 length 11 8
	// true
}

// A simulator with hidden limits, served on a loopback port.
func ExampleStart() {
	l, err := sim.Start(sim.Config{RPM: 600, TPM: 100_000})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Post(l.URL+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}],"max_tokens":100}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	h := resp.Header
	fmt.Println(resp.StatusCode, h.Get("X-Ratelimit-Remaining-Requests"), h.Get("X-Ratelimit-Remaining-Tokens"))
	fmt.Println(l.Stats().OK)
	// Output:
	// 200 599 99891
	// 1
}
