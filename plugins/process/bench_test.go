package process_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/process"
)

// BenchmarkPoolInvoke measures one batch's round trip through a procecho
// process: encoding, two pipe hops, procecho's own work, decoding.
func BenchmarkPoolInvoke(b *testing.B) {
	bin := procecho(b)
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			p := startPool(b, process.Config{Command: []string{bin}}, nil)
			evs := make([]*plugins.Event, n)
			size := 0
			for i := range evs {
				evs[i] = httpLikeEvent(i)
				size += evs[i].Size()
			}
			batch := &plugins.Batch{ID: plugins.NewID(), Function: "f", Events: evs, Results: make([]plugins.Result, n)}
			// One context for the run, so that allocations are Invoke's own.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			batch.Deadline, _ = ctx.Deadline()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := p.Invoke(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

// httpLikeEvent is the size and shape of a small HTTP request's envelope.
func httpLikeEvent(i int) *plugins.Event {
	return &plugins.Event{
		ID: plugins.NewID(), Source: "sluice/http", Type: plugins.TypeHTTPRequest,
		Time: time.Now(), DataContentType: "application/json",
		Data: fmt.Appendf(nil, `{"version":"2.0","routeKey":"POST /echo/{id}","rawPath":"/echo/%d","rawQueryString":"",`+
			`"headers":{"content-type":"application/json","user-agent":"wrk"},"pathParameters":{"id":"%d"},`+
			`"requestContext":{"http":{"method":"POST","path":"/echo/%d","sourceIp":"127.0.0.1","userAgent":"wrk"}},`+
			`"body":"{\"hello\":\"world\"}","isBase64Encoded":false}`, i, i, i),
	}
}
