package lambda

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"
)

func TestScaleFromZeroAndBack(t *testing.T) {
	t.Parallel()
	var colds atomic.Int64
	p, _ := startPool(t, "scaling", Config{
		Command: []string{fn(t, "sleep")}, Min: 0, Max: 2, Idle: 50 * time.Millisecond,
		OnColdStart: func(d time.Duration) {
			if d > 0 {
				colds.Add(1)
			}
		},
	})
	if busy, idle, starting := p.Instances(); busy+idle+starting != 0 {
		t.Fatalf("instances at start: %d %d %d, want none", busy, idle, starting)
	}
	// Two invocations at once from zero: two runtimes start, each
	// invocation on its own.
	b, err := invoke(p, 20*time.Second, invokeEvent(`{"ms":300}`), invokeEvent(`{"ms":300}`))
	if err != nil {
		t.Fatal(err)
	}
	pids := map[int]bool{}
	for _, r := range b.Results {
		var out struct{ PID int }
		if r.Err != nil || json.Unmarshal(r.Output, &out) != nil {
			t.Fatalf("result %+v", r)
		}
		pids[out.PID] = true
	}
	if len(pids) != 2 || b.InitDuration <= 0 || colds.Load() != 2 {
		t.Errorf("%d runtimes, InitDuration %s, %d cold starts; want 2, > 0, 2", len(pids), b.InitDuration, colds.Load())
	}
	waitUntil(t, "scale to zero", func() bool {
		busy, idle, starting := p.Instances()
		return busy+idle+starting == 0
	})
	b, err = invoke(p, 20*time.Second, invokeEvent(`{"ms":1}`))
	if err != nil || b.Results[0].Err != nil || b.InitDuration <= 0 {
		t.Fatalf("from zero again: %v %+v, InitDuration %s", err, b.Results, b.InitDuration)
	}
	if p.Restarts() != 0 {
		t.Errorf("Restarts() = %d: idle runtimes stopped by the pool are no restarts", p.Restarts())
	}
}
