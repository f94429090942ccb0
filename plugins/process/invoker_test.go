package process_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/process"
)

// startFunction runs a pool behind the real invoker.
func startFunction(t *testing.T, cfg invoker.Config, pcfg process.Config) (*invoker.Function, *process.Pool) {
	t.Helper()
	pool, err := process.New("f", pcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := invoker.New("f", cfg, pool, invoker.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f, pool
}

// outcomes collects the outcomes of submitted items by event id.
type outcomes struct {
	mu   sync.Mutex
	got  map[string]invoker.Outcome
	done chan struct{}
	want int
}

func newOutcomes(want int) *outcomes {
	return &outcomes{got: map[string]invoker.Outcome{}, done: make(chan struct{}), want: want}
}

func (o *outcomes) Done(it *invoker.Item, out invoker.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, dup := o.got[it.Event.ID]; dup {
		panic("outcome twice for " + it.Event.ID)
	}
	o.got[it.Event.ID] = out
	if len(o.got) == o.want {
		close(o.done)
	}
}

func (o *outcomes) wait(t *testing.T) map[string]invoker.Outcome {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(30 * time.Second):
		o.mu.Lock()
		defer o.mu.Unlock()
		t.Fatalf("%d of %d outcomes arrived", len(o.got), o.want)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.got
}

func TestInvokerRetriesACrash(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "crashed-once")
	pcfg := helperConfig("echo")
	pcfg.Instances = 2
	f, pool := startFunction(t, invoker.Config{
		Timeout:     10 * time.Second,
		Concurrency: 2,
		Batch:       invoker.BatchConfig{MaxItems: 10, MaxWait: 20 * time.Millisecond},
		Retry:       invoker.RetryConfig{Attempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	}, pcfg)

	const n = 40
	o := newOutcomes(n)
	for i := range n {
		data := map[string]any{}
		if i == 17 {
			data["crash_once"] = marker // the process dies on its first attempt only
		}
		if err := f.Submit(&invoker.Item{Event: event(fmt.Sprint("e", i), data), Trigger: "kafka", Done: o.Done}); err != nil {
			t.Fatal(err)
		}
	}
	got := o.wait(t)
	for i := range n {
		id := fmt.Sprint("e", i)
		out := got[id]
		if out.Err != nil {
			t.Errorf("%s: %v after %d attempts", id, out.Err, out.Attempts)
		}
	}
	if a := got["e17"].Attempts; a != 2 {
		t.Errorf("the crashing event took %d attempts, want 2", a)
	}
	if r := pool.Restarts(); r != 1 {
		t.Errorf("Restarts() = %d, want 1", r)
	}
}

func TestInvokerTimesOutAHang(t *testing.T) {
	t.Parallel()
	f, pool := startFunction(t, invoker.Config{
		Timeout:     time.Second,
		Concurrency: 1,
		Batch:       invoker.BatchConfig{MaxWait: -1},
	}, helperConfig("echo"))

	o := f.Call(&invoker.Item{Event: event("hang", map[string]any{"hang": true}), Trigger: "http"})
	var te *invoker.TimeoutError
	if !errors.As(o.Err, &te) {
		t.Fatalf("outcome err = %v, want a TimeoutError of the invocation", o.Err)
	}
	for i := range 5 {
		o := f.Call(&invoker.Item{Event: event(fmt.Sprint("after", i), nil), Trigger: "http"})
		if o.Err != nil {
			t.Fatalf("event %d after the hang: %v", i, o.Err)
		}
	}
	if r := pool.Restarts(); r != 1 {
		t.Errorf("Restarts() = %d, want 1", r)
	}
}

func TestInvokerProcechoUnderLoad(t *testing.T) {
	t.Parallel()
	f, _ := startFunction(t, invoker.Config{
		Timeout:     10 * time.Second,
		Concurrency: 2,
		Batch:       invoker.BatchConfig{MaxItems: 50, MaxWait: time.Millisecond},
	}, process.Config{Command: []string{procecho(t)}, Instances: 2})
	const n = 500
	o := newOutcomes(n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				ev := event(fmt.Sprint("e", i), map[string]any{"i": i})
				for {
					err := f.Submit(&invoker.Item{Event: ev, Trigger: "kafka", Done: o.Done})
					if !errors.Is(err, invoker.ErrQueueFull) {
						if err != nil {
							t.Error(err)
						}
						break
					}
					time.Sleep(time.Millisecond) // back off as a trigger would
				}
			}
		}()
	}
	wg.Wait()
	for id, out := range o.wait(t) {
		if out.Err != nil {
			t.Fatalf("%s: %v", id, out.Err)
		}
		var want plugins.Event
		if err := want.UnmarshalJSON(out.Output); err != nil || want.ID != id {
			t.Fatalf("%s: output %s is not its envelope", id, out.Output)
		}
	}
}
