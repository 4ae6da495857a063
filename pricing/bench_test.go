package pricing

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkLoadLiteLLM loads a LiteLLM-shaped file the size of the real one (about 2,500
// models, 1.6 MB).
func BenchmarkLoadLiteLLM(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"sample_spec": {"input_cost_per_token": 0.0, "mode": "one of: chat, embedding"}`)
	for i := range 2500 {
		fmt.Fprintf(&buf, `,
    "provider%d/model-%d": {
        "cache_read_input_token_cost": 1.25e-07,
        "input_cost_per_token": %g,
        "input_cost_per_token_batches": 1.25e-06,
        "litellm_provider": "provider%d",
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
        "mode": "chat",
        "output_cost_per_token": 1e-05,
        "output_cost_per_token_batches": 5e-06,
        "supported_endpoints": ["/v1/chat/completions", "/v1/batch"],
        "supports_function_calling": true,
        "supports_prompt_caching": true,
        "supports_vision": true
    }`, i%40, i, float64(i+1)*1e-8, i%40)
	}
	buf.WriteString("\n}\n")
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	t := Default()
	for _, name := range []string{"gpt-4o-mini", "openai/gpt-4o-mini-2024-07-18", "no-such-model"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t.Lookup(name)
			}
		})
	}
}
