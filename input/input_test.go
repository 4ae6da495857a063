package input_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/input"
	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/tokens"
)

func TestNewSource(t *testing.T) {
	t.Parallel()
	lines := strings.Join([]string{
		testutil.ChatLine("a", "gpt-4o-mini", "hello world", 10),
		`not json`,
		testutil.ChatLine("b", "gpt-4o-mini", strings.Repeat("x", 400), 10), // longer than maxLine
		testutil.ChatLine("c", "gpt-4o-mini", "hello world", 0),
	}, "\n")
	src := input.NewSource(strings.NewReader(lines), tokens.Default(), 300)
	var got []string
	for {
		req, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if req.Err != nil {
			got = append(got, fmt.Sprintf("%d: invalid", req.Line))
			continue
		}
		got = append(got, fmt.Sprintf("%d: %s %d+%d", req.Line, req.Request.CustomID, req.Estimate.PromptTokens, req.Estimate.MaxOutputTokens))
	}
	want := []string{"1: a 9+10", "2: invalid", "3: invalid", "4: c 9+0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines %q, want %q", got, want)
	}
}

func ExampleNewSource() {
	in := strings.NewReader(`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}],"max_tokens":50}}`)
	src := input.NewSource(in, tokens.Default(), 0)
	req, err := src.Next()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(req.Line, req.Request.CustomID, req.Estimate.Model, req.Estimate.PromptTokens, req.Estimate.MaxOutputTokens)
	_, err = src.Next()
	fmt.Println(errors.Is(err, io.EOF))
	// Output:
	// 1 a gpt-4o-mini 9 50
	// true
}
