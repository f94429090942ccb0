package invoker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/plugins"
)

// slowWorker is a fake of a process function with instances: 2: it runs the
// events of a batch one after another, each taking perEvent, and gives up
// at the batch's deadline as a killed process does. Events whose id starts
// with "busy" first wait for gate, holding their instance.
type slowWorker struct {
	perEvent time.Duration
	gate     chan struct{}
	running  atomic.Int64
	mu       sync.Mutex
	sizes    []int // the size of every batch
}

func (w *slowWorker) Start(context.Context) error { return nil }
func (w *slowWorker) Close(context.Context) error { return nil }
func (w *slowWorker) Invoke(ctx context.Context, b *plugins.Batch) error {
	w.running.Add(1)
	defer w.running.Add(-1)
	w.mu.Lock()
	w.sizes = append(w.sizes, len(b.Events))
	w.mu.Unlock()
	for _, ev := range b.Events {
		if strings.HasPrefix(ev.ID, "busy") {
			<-w.gate
		}
	}
	// A process answers a batch in one line, when all of it is done.
	for range b.Events {
		t := time.NewTimer(w.perEvent)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("process did not answer in time: %w", ctx.Err())
		}
	}
	for i, ev := range b.Events {
		b.Results[i] = plugins.Result{Output: []byte(`"` + ev.ID + `"`)}
	}
	return nil
}

// syncBuffer is a log writer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(s.b.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %s: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// TestQueuedSyncCallsKeepTheirOwnTimeout reproduces a report: a process
// function taking 1 s per event, instances: 2, timeout: 3s and 8 concurrent
// requests; the 6 that queued behind the first two were merged into one
// batch of 6 and all failed as timed out, although each needed a third of
// the timeout. Scaled down here: 200ms per event, a timeout of 800ms, and
// 14 requests, 12 of them queued while both instances are busy. The last
// wait in the queue for about 1.2 s, longer than the timeout, which must
// not count against it: the timeout bounds an event's execution, as on
// Lambda.
func TestQueuedSyncCallsKeepTheirOwnTimeout(t *testing.T) {
	const perEvent, timeout, queued = 200 * time.Millisecond, 800 * time.Millisecond, 12
	w := &slowWorker{perEvent: perEvent, gate: make(chan struct{})}
	var logs syncBuffer
	log := zerolog.New(&logs)
	f := startFunction(t, Config{Timeout: timeout, Concurrency: 2}, w, Deps{Logger: &log})

	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]Outcome{}
	call := func(id string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := f.Call(&Item{Event: newEvent(id), Trigger: "http"})
			mu.Lock()
			got[id] = o
			mu.Unlock()
		}()
	}
	call("busy-0")
	call("busy-1")
	waitUntil(t, "both instances busy", func() bool { return w.running.Load() == 2 })
	for i := range queued {
		call(fmt.Sprint("queued-", i))
	}
	waitUntil(t, "the events queued", func() bool { d, _ := f.Load(); return d == queued })
	close(w.gate)
	wg.Wait()

	var longest time.Duration
	for id, o := range got {
		if o.Err != nil || string(o.Output) != `"`+id+`"` || o.Attempts != 1 {
			t.Errorf("%s: %+v", id, o)
		}
		if strings.HasPrefix(id, "queued") && o.Queued < perEvent {
			t.Errorf("%s: Queued = %s, want its wait in the queue, at least %s", id, o.Queued, perEvent)
		}
		if o.Duration >= timeout {
			t.Errorf("%s: Duration = %s: its execution alone should be about %s", id, o.Duration, perEvent)
		}
		longest = max(longest, o.Queued)
	}
	if longest <= timeout {
		t.Errorf("the longest wait in the queue was %s, want over the timeout %s", longest, timeout)
	}
	w.mu.Lock()
	for _, n := range w.sizes {
		if n != 1 {
			t.Errorf("batch sizes %v: a sync event shared a batch", w.sizes)
			break
		}
	}
	w.mu.Unlock()
	n := 0
	for _, l := range logs.lines(t) {
		if l["message"] != "invocation" {
			continue
		}
		n++
		q, ok := l["queue_ms"].(float64)
		if !ok {
			t.Errorf("invocation line without queue_ms: %v", l)
			continue
		}
		if want := got[fmt.Sprint(l["request_id"])].Queued; q != float64(want.Microseconds())/1000 {
			t.Errorf("queue_ms %v, want %s: %v", q, want, l)
		}
	}
	if n != queued+2 {
		t.Errorf("%d invocation lines, want %d", n, queued+2)
	}
}

// TestSyncBatchAnswersFinishedEvents: a function opted in to batches of
// sync events (batch.sync_items) whose batch times out on its third event
// still answers the two that finished.
func TestSyncBatchAnswersFinishedEvents(t *testing.T) {
	gate := make(chan struct{})
	var sizes []int
	var mu sync.Mutex
	var running atomic.Int64
	w := &funcWorker{invoke: func(ctx context.Context, b *plugins.Batch) error {
		running.Add(1)
		mu.Lock()
		sizes = append(sizes, len(b.Events))
		mu.Unlock()
		for i, ev := range b.Events {
			switch ev.ID {
			case "busy":
				<-gate
			case "hang":
				<-ctx.Done()
				return ctx.Err()
			}
			b.Results[i] = plugins.Result{Output: []byte(`"` + ev.ID + `"`)}
		}
		return nil
	}}
	f := startFunction(t, Config{Timeout: 300 * time.Millisecond, Concurrency: 1, Batch: BatchConfig{SyncItems: 3}}, w, Deps{})
	got := make(chan struct {
		id string
		o  Outcome
	}, 4)
	call := func(id string) {
		go func() {
			o := f.Call(&Item{Event: newEvent(id), Trigger: "http"})
			got <- struct {
				id string
				o  Outcome
			}{id, o}
		}()
	}
	call("busy")
	waitUntil(t, "the slot busy", func() bool { return running.Load() == 1 })
	for i, id := range []string{"a", "b", "hang"} {
		call(id) // in this order, one after another, to keep the batch's order
		waitUntil(t, id+" queued", func() bool { d, _ := f.Load(); return d == i+1 })
	}
	close(gate)
	outs := map[string]Outcome{}
	for range 4 {
		r := <-got
		outs[r.id] = r.o
	}
	for _, id := range []string{"busy", "a", "b"} {
		if o := outs[id]; o.Err != nil || string(o.Output) != `"`+id+`"` {
			t.Errorf("%s: %+v", id, o)
		}
	}
	if o := outs["hang"]; !errors.Is(o.Err, ErrTimeout) || o.Attempts != 1 {
		t.Errorf("hang: %+v", o)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[1] != 3 {
		t.Errorf("batch sizes %v, want [1 3]", sizes)
	}
}

// TestSyncEventsAreTriedOnce: as Lambda does not retry synchronous
// invocations, a sync event is tried once whatever ends its batch — a
// function error, a crash or a timeout — with retry.attempts and
// retry.bisect set; an async event of the same function is retried.
func TestSyncEventsAreTriedOnce(t *testing.T) {
	tests := []struct {
		name    string
		invoke  func(ctx context.Context, b *plugins.Batch) error
		wantErr func(error) bool
	}{
		{"function error", func(_ context.Context, b *plugins.Batch) error {
			for i := range b.Results {
				b.Results[i] = plugins.Result{Err: &plugins.FunctionError{Message: "boom"}}
			}
			return nil
		}, func(err error) bool { var fe *plugins.FunctionError; return errors.As(err, &fe) }},
		{"crash", func(context.Context, *plugins.Batch) error { return errors.New("process exited") },
			func(err error) bool { var we *WorkerError; return errors.As(err, &we) }},
		{"timeout", func(ctx context.Context, _ *plugins.Batch) error { <-ctx.Done(); return ctx.Err() },
			func(err error) bool { return errors.Is(err, ErrTimeout) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			w := &funcWorker{invoke: func(ctx context.Context, b *plugins.Batch) error {
				calls.Add(int64(len(b.Events)))
				return tt.invoke(ctx, b)
			}}
			f := startFunction(t, Config{
				Timeout: 50 * time.Millisecond,
				Batch:   BatchConfig{SyncItems: 10, MaxItems: 10, MaxWait: time.Hour},
				Retry:   RetryConfig{Attempts: 3, Backoff: time.Millisecond, Bisect: true},
			}, w, Deps{})
			o := f.Call(&Item{Event: newEvent("sync"), Trigger: "http"})
			if !tt.wantErr(o.Err) || o.Attempts != 1 || calls.Load() != 1 {
				t.Errorf("sync: %+v after %d calls, want one attempt", o, calls.Load())
			}
			calls.Store(0)
			c := newCollector(1)
			if err := f.Submit(&Item{Event: newEvent("async"), Trigger: "async", Done: c.Done, Flush: true}); err != nil {
				t.Fatal(err)
			}
			if o := c.wait(t)["async"]; !tt.wantErr(o.Err) || o.Attempts != 3 || calls.Load() != 3 {
				t.Errorf("async: %+v after %d calls, want three attempts", o, calls.Load())
			}
		})
	}
}

// TestSyncEventsNeverBisected: a batch of sync events (opted in with
// batch.sync_items) that crashes fails its sync events at once, without
// running them again in halves, while the async events of the same batch
// are bisected and retried.
func TestSyncEventsNeverBisected(t *testing.T) {
	var runs sync.Map // event id → *atomic.Int64
	gate := make(chan struct{})
	var running atomic.Int64
	w := &funcWorker{invoke: func(ctx context.Context, b *plugins.Batch) error {
		running.Add(1)
		for _, ev := range b.Events {
			n, _ := runs.LoadOrStore(ev.ID, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			if ev.ID == "busy" {
				<-gate
			}
		}
		for _, ev := range b.Events {
			if ev.ID == "s-poison" {
				return errors.New("process exited")
			}
		}
		for i := range b.Events {
			b.Results[i] = plugins.Result{Output: []byte("1")}
		}
		return nil
	}}
	f := startFunction(t, Config{
		Concurrency: 1,
		Batch:       BatchConfig{SyncItems: 10, MaxItems: 10, MaxWait: -1},
		Retry:       RetryConfig{Attempts: 1, Bisect: true},
	}, w, Deps{})
	c := newCollector(1)
	if err := f.Submit(&Item{Event: newEvent("busy"), Done: c.Done}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the slot busy", func() bool { return running.Load() == 1 })
	c2 := newCollector(4)
	for _, id := range []string{"a-1", "a-2"} {
		if err := f.Submit(&Item{Event: newEvent(id), Done: c2.Done}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, id := range []string{"s-ok", "s-poison"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := f.Call(&Item{Event: newEvent(id)})
			c2.Done(&Item{Event: newEvent(id)}, o)
		}()
	}
	waitUntil(t, "four events queued", func() bool { d, _ := f.Load(); return d == 4 })
	close(gate)
	wg.Wait()
	got := c2.wait(t)
	for _, id := range []string{"s-ok", "s-poison"} {
		var we *WorkerError
		if o := got[id]; !errors.As(o.Err, &we) || o.Attempts != 1 {
			t.Errorf("%s: %+v", id, o)
		}
		if n, _ := runs.Load(id); n.(*atomic.Int64).Load() != 1 {
			t.Errorf("%s ran %d times, want once", id, n.(*atomic.Int64).Load())
		}
	}
	for _, id := range []string{"a-1", "a-2"} {
		if o := got[id]; o.Err != nil {
			t.Errorf("%s: %+v (should have been bisected away from the crash)", id, o)
		}
	}
}

func TestValidateSyncItems(t *testing.T) {
	tests := []struct {
		name string
		cfg  BatchConfig
		want string // "" for valid
	}{
		{"default", BatchConfig{}, ""},
		{"up to max_items", BatchConfig{MaxItems: 5, SyncItems: 5}, ""},
		{"up to the default max_items", BatchConfig{SyncItems: DefaultMaxItems}, ""},
		{"negative", BatchConfig{SyncItems: -1}, "batch.sync_items: must not be negative, got -1"},
		{"above max_items", BatchConfig{MaxItems: 5, SyncItems: 6}, "batch.sync_items: (6) must not be above batch.max_items (5)"},
		{"above the default max_items", BatchConfig{SyncItems: DefaultMaxItems + 1}, "batch.sync_items: (101) must not be above batch.max_items (100)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Batch: tt.cfg}.Validate()
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
