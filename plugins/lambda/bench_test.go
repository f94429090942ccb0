package lambda

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// BenchmarkLambdaEcho measures one HTTP event's round trip through the Pool
// and the shipped lambda-echo runtime (aws-lambda-go): with one instance
// one event at a time, and with four instances under as many concurrent
// callers.
func BenchmarkLambdaEcho(b *testing.B) {
	for _, instances := range []int{1, 4} {
		b.Run(fmt.Sprintf("instances=%d", instances), func(b *testing.B) {
			p, err := New("lambda-echo", Config{Command: []string{fn(b, "lambda-echo")}, Instances: instances}, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer p.Close(context.Background())
			template := httpEvent()
			b.ReportAllocs()
			b.SetParallelism(instances) // GOMAXPROCS × instances callers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ev := *template
					ev.ID = plugins.NewID()
					batch := &plugins.Batch{
						ID: ev.ID, Function: "lambda-echo", Deadline: time.Now().Add(10 * time.Second),
						Events: []*plugins.Event{&ev}, Results: make([]plugins.Result, 1),
					}
					ctx, cancel := context.WithDeadline(context.Background(), batch.Deadline)
					err := p.Invoke(ctx, batch)
					cancel()
					if err != nil || batch.Results[0].Err != nil {
						b.Errorf("invoke: %v %v", err, batch.Results[0].Err)
						return
					}
				}
			})
		})
	}
}
