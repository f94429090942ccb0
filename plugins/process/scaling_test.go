package process_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/process"
)

func TestScalesFromZeroAndBack(t *testing.T) {
	t.Parallel()
	cfg := helperConfig("echo")
	cfg.Min, cfg.Max, cfg.Idle = 0, 2, 50*time.Millisecond
	var colds atomic.Int64
	cfg.OnColdStart = func(d time.Duration) {
		if d > 0 {
			colds.Add(1)
		}
	}
	p := startPool(t, cfg, nil)
	if busy, idle, starting := p.Instances(); busy+idle+starting != 0 {
		t.Fatalf("instances at start: %d %d %d, want none", busy, idle, starting)
	}
	// b comes while a is busy: it must start a second process.
	var wg sync.WaitGroup
	bs := []*plugins.Batch{batch(event("a", map[string]any{"sleep_ms": 1500})), batch(event("b", map[string]any{}))}
	for i, b := range bs {
		if i == 1 {
			waitFor(t, "a to run", func() bool { busy, _, _ := p.Instances(); return busy == 1 })
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := invoke(p, b, 20*time.Second); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if outputPID(t, bs[0].Results[0]) == outputPID(t, bs[1].Results[0]) {
		t.Error("two concurrent batches ran on one process")
	}
	for _, b := range bs {
		if b.InitDuration <= 0 {
			t.Errorf("batch %s: InitDuration %s, want its cold start", b.ID, b.InitDuration)
		}
	}
	if n := colds.Load(); n != 2 {
		t.Errorf("OnColdStart called %d times, want 2", n)
	}
	waitFor(t, "scale to zero", func() bool {
		busy, idle, starting := p.Instances()
		return busy+idle+starting == 0 && len(process.PIDs(p)) == 0
	})
	// And from zero again.
	b := batch(event("c", map[string]any{}))
	if err := invoke(p, b, 20*time.Second); err != nil || b.InitDuration <= 0 {
		t.Fatalf("after scaling to zero: %v, InitDuration %s", err, b.InitDuration)
	}
}

func TestOutOfMemoryUnderAnEnforcedLimit(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	script := filepath.Join(t.TempDir(), "alloc.py")
	if err := os.WriteFile(script, []byte(`import json, os, sys
for line in sys.stdin:
    b = json.loads(line)
    res = []
    for ev in b["events"]:
        n = (ev.get("data") or {}).get("alloc_mb", 0)
        x = bytearray(n << 20)
        res.append({"id": ev["id"], "ok": True, "output": {"pid": os.getpid()}})
    print(json.dumps({"batch": b["batch"], "results": res}), flush=True)
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var ooms atomic.Int64
	rec := &logRecorder{}
	p := startPool(t, process.Config{
		Command: []string{py, script}, Memory: 128 << 20, Limit: memlimit.Detect(),
		OnOOM: func() { ooms.Add(1) }, StartTimeout: 20 * time.Second,
	}, rec)
	first := batch(event("ok", map[string]any{"alloc_mb": 16}))
	if err := invoke(p, first, 20*time.Second); err != nil {
		t.Fatalf("under the limit: %v", err)
	}
	b := batch(event("big", map[string]any{"alloc_mb": 512}))
	err = invoke(p, b, 20*time.Second)
	var fe *plugins.FunctionError
	if !errors.As(err, &fe) || fe.Type != process.ErrorTypeOOM || fe.Message == "" {
		t.Fatalf("past the limit: %v, want a %s function error", err, process.ErrorTypeOOM)
	}
	if _, ok := rec.find(process.ErrorTypeOOM); !ok || ooms.Load() != 1 {
		t.Errorf("OOM logged %v, counted %d", ok, ooms.Load())
	}
	again := batch(event("again", map[string]any{}))
	if err := invoke(p, again, 20*time.Second); err != nil {
		t.Fatalf("after the OOM: %v", err)
	}
	if outputPID(t, again.Results[0]) == outputPID(t, first.Results[0]) {
		t.Error("the process that ran out of memory was not replaced")
	}
}

// TestQueuedStreamEventsScaleThePool: events waiting in the invoker's
// queue (a Kafka trigger's, a schedule's, an async queue's) are demand like
// sync callers: they start instances up to max, which then idle away.
func TestQueuedStreamEventsScaleThePool(t *testing.T) {
	t.Parallel()
	pcfg := helperConfig("echo")
	pcfg.Min, pcfg.Max, pcfg.Idle = 0, 3, 50*time.Millisecond
	var colds atomic.Int64
	pcfg.OnColdStart = func(time.Duration) { colds.Add(1) }
	f, pool := startFunction(t, invoker.Config{
		Timeout:     20 * time.Second,
		Concurrency: 3,
		Batch:       invoker.BatchConfig{MaxItems: 1, MaxWait: -1},
	}, pcfg)
	const n = 12
	o := newOutcomes(n)
	for i := range n {
		if err := f.Submit(&invoker.Item{Event: event(fmt.Sprint("k", i), map[string]any{"sleep_ms": 100}), Trigger: "kafka", Done: o.Done}); err != nil {
			t.Fatal(err)
		}
	}
	peak := 0
	waitFor(t, "the pool to grow past one", func() bool {
		busy, idle, starting := pool.Instances()
		peak = max(peak, busy+idle+starting)
		return peak > 1
	})
	for id, out := range o.wait(t) {
		if out.Err != nil {
			t.Errorf("%s: %v", id, out.Err)
		}
	}
	if c := colds.Load(); c < 2 || c > 3 {
		t.Errorf("%d cold starts for %d queued events at max 3, want 2 or 3", c, n)
	}
	waitFor(t, "scale to zero", func() bool {
		busy, idle, starting := pool.Instances()
		return busy+idle+starting == 0
	})
}
