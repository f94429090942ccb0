package invoker

import (
	"testing"
	"time"
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
