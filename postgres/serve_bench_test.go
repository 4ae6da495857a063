package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkSaveObject saves new files of one owner from parallel goroutines (each insert
// takes the owner's advisory lock), then saves new versions of them (updates, no lock).
func BenchmarkSaveObject(b *testing.B) {
	st := openStore(b)
	var n atomic.Int64
	doc := []byte(`{"id":"file-x","object":"file","bytes":1000,"purpose":"batch","filename":"in.jsonl"}`)
	b.Run("new", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := st.SaveObject(b.Context(), "file", fmt.Sprint("f", n.Add(1)), "alice", "", doc); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("update", func(b *testing.B) {
		var i atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := fmt.Sprint("f", i.Add(1)%max(n.Load(), 1)+1)
				if err := st.SaveObject(b.Context(), "file", id, "alice", "processed", doc); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkListObjects pages through 10,000 files of one owner, 20 at a time, with the
// purpose filter (half the files are outputs).
func BenchmarkListObjects(b *testing.B) {
	st := openStore(b)
	const total = 10_000
	for i := range total {
		purpose := "batch"
		if i%2 == 1 {
			purpose = "batch_output"
		}
		doc := fmt.Appendf(nil, `{"id":"f%d","purpose":%q}`, i, purpose)
		if err := st.SaveObject(b.Context(), "file", fmt.Sprint("f", i), "alice", "", doc); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		after := ""
		if i%100 != 0 {
			after = fmt.Sprint("f", (i*97)%total)
		}
		if _, _, err := st.ListObjects(b.Context(), "file", "alice", after, "batch", false, 20); err != nil {
			b.Fatal(err)
		}
	}
}
