package invoker

import (
	"math"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/plugins"
)

func TestEventShareBilling(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		n    int
		want int64 // billed ms per event
	}{
		{"one event, 1.2ms", 1200 * time.Microsecond, 1, 2},
		{"one event, exactly 3ms", 3 * time.Millisecond, 1, 3},
		{"one event, 1ns", 1, 1, 1},
		{"ten events in 25ms", 25 * time.Millisecond, 10, 3},
		{"four events in 4ms", 4 * time.Millisecond, 4, 1},
		{"zero", 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := billedMS(eventShare(tt.d, tt.n)); got != tt.want {
				t.Fatalf("billed %dms, want %d", got, tt.want)
			}
		})
	}
}

func TestGBSeconds(t *testing.T) {
	tests := []struct {
		name       string
		memory     int64
		size       int
		d          time.Duration
		own        []time.Duration // the worker's own timings, per event
		billed, gb float64
	}{
		{"one event at the default 128 MiB", 0, 1, 1500 * time.Microsecond, nil, 0.002, 0.002 / 8},
		{"four events of 2.5ms at 1 GiB", 1 << 30, 4, 10 * time.Millisecond, nil, 0.012, 0.012},
		{"ten events in 1ms at 512 MiB", 512 << 20, 10, time.Millisecond, nil, 0.010, 0.005},
		{"two invocations in parallel, 9.2ms and 3ms", 1 << 30, 2, 10 * time.Millisecond, []time.Duration{9200 * time.Microsecond, 3 * time.Millisecond}, 0.013, 0.013},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Function{cfg: Config{Memory: tt.memory}.withDefaults()}
			m := newFnMetrics(metrics.NewSet(), "gb", f)
			b := &plugins.Batch{Results: make([]plugins.Result, tt.size)}
			items := make([]*Item, tt.size)
			for i := range items {
				items[i] = &Item{}
				if tt.own != nil {
					b.Results[i].Duration = tt.own[i]
				}
			}
			m.observeBatch(tt.size, tt.d, billItems(items, b, true, tt.d))
			if got := m.billed.Get(); math.Abs(got-tt.billed) > 1e-9 {
				t.Errorf("billed %v s, want %v", got, tt.billed)
			}
			if got := m.gbSeconds.Get(); math.Abs(got-tt.gb) > 1e-9 {
				t.Errorf("%v GB-s, want %v", got, tt.gb)
			}
		})
	}
}
