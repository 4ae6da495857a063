package jsonl_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonl"
)

func Example() {
	input := `{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[]}}

{"custom_id":"r2","method":"GET","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini"}}
{"custom_id":"r3","method":"POST","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":"` + strings.Repeat("x", 200) + `"}}
`
	r := jsonl.NewReader(strings.NewReader(input), 150)
	for {
		line, data, err := r.Next()
		if errors.Is(err, io.EOF) {
			fmt.Println("lines read:", line)
			break
		}
		if le, ok := errors.AsType[*sluice.LineError](err); ok {
			fmt.Println("error:", le)
			continue
		}
		if err != nil {
			fmt.Println("read:", err)
			return
		}
		req, lerr := jsonl.ParseRequest(line, data)
		if lerr != nil {
			fmt.Printf("error for %s: %v\n", req.CustomID, lerr)
			continue
		}
		fmt.Printf("line %d: %s %s\n", line, req.CustomID, req.URL)
	}
	// Output:
	// line 1: r1 /v1/chat/completions
	// error for r2: line 3: method: must be "POST", got "GET"
	// error: line 4: line is longer than 150 bytes
	// lines read: 4
}
