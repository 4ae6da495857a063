package ids_test

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/sluice-llm/sluice/internal/ids"
)

func TestHex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		n    int
		want int // length in hex digits
	}{
		{name: "none", n: 0, want: 0},
		{name: "negative is none", n: -3, want: 0},
		{name: "three bytes", n: 3, want: 6},
		{name: "sixteen bytes", n: 16, want: 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ids.Hex(tt.n)
			if len(got) != tt.want {
				t.Fatalf("Hex(%d) = %q, want %d digits", tt.n, got, tt.want)
			}
			if _, err := hex.DecodeString(got); err != nil {
				t.Fatalf("Hex(%d) = %q: not hexadecimal: %v", tt.n, got, err)
			}
		})
	}
}

func TestHexDiffers(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := ids.Hex(8)
		if seen[id] {
			t.Fatalf("Hex(8) repeated %q within 1000 calls", id)
		}
		seen[id] = true
	}
}

func ExampleHex() {
	id := "job_" + ids.Hex(4)
	fmt.Println(len(id))
	// Output: 12
}
