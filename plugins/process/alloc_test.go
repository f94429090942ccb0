package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/process"
)

// TestInvokeAllocations keeps the per-batch path lean: a fixed handful of
// allocations per batch (the context hook, the outputs), none per event.
func TestInvokeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	p := startPool(t, process.Config{Command: []string{procecho(t)}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range []int{1, 50} {
		evs := make([]*plugins.Event, n)
		for i := range evs {
			evs[i] = httpLikeEvent(i)
		}
		b := &plugins.Batch{ID: "allocs", Events: evs, Results: make([]plugins.Result, n)}
		b.Deadline, _ = ctx.Deadline()
		allocs := testing.AllocsPerRun(50, func() {
			if err := p.Invoke(ctx, b); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%d events: %.1f allocations per batch", n, allocs)
		if allocs > 4 {
			t.Errorf("%d events: %.1f allocations per batch, want at most 4", n, allocs)
		}
	}
}
