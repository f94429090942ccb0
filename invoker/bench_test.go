package invoker

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/builtin"
)

func benchFunction(b *testing.B, cfg Config) *Function {
	b.Helper()
	h, _ := builtin.Lookup("noop")
	f, err := New("bench", cfg, builtin.NewWorker("bench", h, nil), Deps{})
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close(context.Background()) })
	return f
}

// BenchmarkCallInline is one caller at a time: every call takes the inline
// fast path on the caller's goroutine.
func BenchmarkCallInline(b *testing.B) {
	f := benchFunction(b, Config{})
	ev := &plugins.Event{ID: "x", Source: "bench", Type: "bench", Data: []byte(`{}`)}
	b.ReportAllocs()
	for b.Loop() {
		if o := f.Call(&Item{Event: ev, Trigger: "bench"}); o.Err != nil {
			b.Fatal(o.Err)
		}
	}
}

// BenchmarkCallParallel has many callers contending for 4 slots, so calls
// queue: by default each goes to the worker alone (sync_items=1); with
// sync_items=100 they share batches, the ceiling the default is measured
// against.
func BenchmarkCallParallel(b *testing.B) {
	for _, syncItems := range []int{1, 100} {
		b.Run(fmt.Sprintf("sync_items=%d", syncItems), func(b *testing.B) {
			f := benchFunction(b, Config{Concurrency: 4, Queue: 1 << 16, Batch: BatchConfig{SyncItems: syncItems}})
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				ev := &plugins.Event{ID: "x", Source: "bench", Type: "bench", Data: []byte(`{}`)}
				for pb.Next() {
					if o := f.Call(&Item{Event: ev, Trigger: "bench"}); o.Err != nil {
						b.Fatal(o.Err)
					}
				}
			})
		})
	}
}
