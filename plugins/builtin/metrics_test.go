package builtin

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// TestWorkerPutMetric: a Go function's plugins.PutMetric reaches the sink
// the worker was given, tagged as the function put it.
func TestWorkerPutMetric(t *testing.T) {
	var got []plugins.Metric
	w := NewWorker("shop", func(ctx context.Context, ev *plugins.Event) ([]byte, error) {
		plugins.PutMetric(ctx, "Shop", "Orders", "Count", 2, plugins.Dimension{Name: "Service", Value: "cart"})
		return nil, nil
	}, nil)
	w.SetMetrics(func(m *plugins.Metric) {
		c := *m
		c.Values = append([]float64(nil), m.Values...)
		got = append(got, c)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b := &plugins.Batch{ID: "b", Events: []*plugins.Event{{ID: "1"}, {ID: "2"}}, Results: make([]plugins.Result, 2)}
	if err := w.Invoke(ctx, b); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Namespace != "Shop" || got[0].Values[0] != 2 || got[0].Dimensions[0].Value != "cart" {
		t.Fatalf("got %+v", got)
	}
}
