package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
)

// The Pool under the invoker, as the gateway runs it: a timeout is the
// invoker's TimeoutError with Lambda's wording, and an event whose runtime
// crashed is retried per the function's retry policy on a fresh runtime.
func TestUnderTheInvoker(t *testing.T) {
	t.Parallel()
	const instances = 2
	newFunction := func(t *testing.T, name, bin string, cfg invoker.Config) *invoker.Function {
		t.Helper()
		p, err := New(name, Config{Command: []string{fn(t, bin)}, Instances: instances, Timeout: cfg.Timeout}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Concurrency = instances // one batch per runtime instance
		f, err := invoker.New(name, cfg, p, invoker.Deps{})
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
				t.Error(err)
			}
		})
		return f
	}

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		f := newFunction(t, "sleepy", "sleep", invoker.Config{Timeout: 500 * time.Millisecond})
		o := f.Call(&invoker.Item{Event: invokeEvent(`{"ms":60000}`), Trigger: "invoke"})
		var te *invoker.TimeoutError
		if !errors.As(o.Err, &te) || te.Error() != "Task timed out after 0.50 seconds" {
			t.Fatalf("outcome err = %v", o.Err)
		}
		o = f.Call(&invoker.Item{Event: invokeEvent(`{"ms":1}`), Trigger: "invoke"})
		var out struct {
			SleptMS int `json:"slept_ms"`
		}
		if o.Err != nil || json.Unmarshal(o.Output, &out) != nil || out.SleptMS != 1 {
			t.Fatalf("after the timeout: %+v", o)
		}
	})

	t.Run("crash is retried", func(t *testing.T) {
		t.Parallel()
		f := newFunction(t, "crashy", "crash", invoker.Config{Retry: invoker.RetryConfig{Attempts: 3, Backoff: time.Millisecond}})
		marker := filepath.Join(t.TempDir(), "crashed")
		done := make(chan invoker.Outcome, 1)
		it := &invoker.Item{
			Event:   invokeEvent(`{"crash_once":"` + marker + `"}`),
			Trigger: "async",
			Done:    func(_ *invoker.Item, o invoker.Outcome) { done <- o },
		}
		if err := f.Submit(it); err != nil {
			t.Fatal(err)
		}
		select {
		case o := <-done:
			if o.Err != nil || o.Attempts != 2 || string(o.Output) != `{"ok":true}` {
				t.Fatalf("outcome = %+v", o)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no outcome")
		}
	})

	t.Run("a sync crash is the runtime's error", func(t *testing.T) {
		t.Parallel()
		f := newFunction(t, "crashy-sync", "crash", invoker.Config{})
		o := f.Call(&invoker.Item{Event: invokeEvent(`{"crash":true}`), Trigger: "invoke"})
		var we *invoker.WorkerError
		var fe *plugins.FunctionError
		if !errors.As(o.Err, &we) || !errors.As(o.Err, &fe) || fe.Type != "Runtime.ExitError" {
			t.Fatalf("outcome err = %#v", o.Err)
		}
	})
}
