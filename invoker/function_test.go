package invoker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/plugins"
)

// funcWorker adapts a function to plugins.Worker for tests of the invoker's
// own policy; the real workers have their own tests and integration tests.
type funcWorker struct {
	invoke  func(ctx context.Context, b *plugins.Batch) error
	batches atomic.Int64
}

func (w *funcWorker) Start(context.Context) error { return nil }
func (w *funcWorker) Close(context.Context) error { return nil }
func (w *funcWorker) Invoke(ctx context.Context, b *plugins.Batch) error {
	w.batches.Add(1)
	return w.invoke(ctx, b)
}

func okWorker() *funcWorker {
	return &funcWorker{invoke: func(_ context.Context, b *plugins.Batch) error {
		for i, ev := range b.Events {
			b.Results[i] = plugins.Result{Output: []byte(`"` + ev.ID + `"`)}
		}
		return nil
	}}
}

func newEvent(id string) *plugins.Event {
	return &plugins.Event{ID: id, Source: "test", Type: "test", Data: []byte(`{}`)}
}

func startFunction(t *testing.T, cfg Config, w plugins.Worker, deps Deps) *Function {
	t.Helper()
	f, err := New("f", cfg, w, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	return f
}

// collector gathers outcomes of submitted items.
type collector struct {
	mu   sync.Mutex
	got  map[string]Outcome
	done chan struct{}
	want int
}

func newCollector(want int) *collector {
	return &collector{got: map[string]Outcome{}, done: make(chan struct{}), want: want}
}

func (c *collector) Done(it *Item, o Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.got[it.Event.ID]; dup {
		panic("Done called twice for " + it.Event.ID)
	}
	c.got[it.Event.ID] = o
	if len(c.got) == c.want {
		close(c.done)
	}
}

func (c *collector) wait(t *testing.T) map[string]Outcome {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("only %d of %d outcomes arrived", len(c.got), c.want)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got
}

func TestCallInline(t *testing.T) {
	f := startFunction(t, Config{}, okWorker(), Deps{})
	o := f.Call(&Item{Event: newEvent("a"), Trigger: "http"})
	if o.Err != nil || string(o.Output) != `"a"` || o.Attempts != 1 {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestBatchingPolicy(t *testing.T) {
	tests := []struct {
		name        string
		cfg         BatchConfig
		n           int
		wantBatches int64
	}{
		{"max_items splits", BatchConfig{MaxItems: 10, MaxWait: time.Hour}, 30, 3},
		{"max_bytes splits", BatchConfig{MaxItems: 1000, MaxBytes: 5 * newEvent("00").Size(), MaxWait: time.Hour}, 20, 4},
		{"max_wait flushes a partial batch", BatchConfig{MaxItems: 1000, MaxWait: 20 * time.Millisecond}, 7, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := okWorker()
			gate := make(chan struct{})
			inner := w.invoke
			w.invoke = func(ctx context.Context, b *plugins.Batch) error {
				<-gate
				return inner(ctx, b)
			}
			f := startFunction(t, Config{Concurrency: 4, Batch: tt.cfg}, w, Deps{})
			c := newCollector(tt.n)
			for i := 0; i < tt.n; i++ {
				if err := f.Submit(&Item{Event: newEvent(fmt.Sprintf("%02d", i)), Done: c.Done}); err != nil {
					t.Fatal(err)
				}
			}
			close(gate)
			for id, o := range c.wait(t) {
				if o.Err != nil {
					t.Errorf("%s: %v", id, o.Err)
				}
			}
			if got := w.batches.Load(); got != tt.wantBatches {
				t.Errorf("batches = %d, want %d", got, tt.wantBatches)
			}
		})
	}
}

func TestQueueFullIsImmediate(t *testing.T) {
	block := make(chan struct{})
	w := &funcWorker{invoke: func(ctx context.Context, b *plugins.Batch) error {
		<-block
		return nil
	}}
	f := startFunction(t, Config{Concurrency: 1, Queue: 3, Batch: BatchConfig{MaxItems: 1}}, w, Deps{})
	c := newCollector(4)
	accepted := 0
	for i := 0; i < 10; i++ {
		err := f.Submit(&Item{Event: newEvent(fmt.Sprint(i)), Done: c.Done})
		if errors.Is(err, ErrQueueFull) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted++
	}
	// One batch may have been taken by the worker before the queue filled.
	if accepted < 3 || accepted > 4 {
		t.Fatalf("accepted %d of 10 with queue 3 and one slot", accepted)
	}
	c.want = accepted
	close(block)
	if len(c.wait(t)) != accepted {
		t.Fatal("lost accepted events")
	}
}

func TestRetriesThenDeadLetter(t *testing.T) {
	var calls atomic.Int64
	w := &funcWorker{invoke: func(ctx context.Context, b *plugins.Batch) error {
		for i, ev := range b.Events {
			calls.Add(1)
			if ev.ID == "bad" {
				b.Results[i] = plugins.Result{Err: errors.New("boom")}
			}
		}
		return nil
	}}
	dl := &memDeadLetter{}
	f := startFunction(t, Config{Retry: RetryConfig{Attempts: 3, Backoff: time.Millisecond}}, w, Deps{DeadLetter: dl})
	c := newCollector(2)
	for _, id := range []string{"good", "bad"} {
		if err := f.Submit(&Item{Event: newEvent(id), Done: c.Done, DeadLetter: true}); err != nil {
			t.Fatal(err)
		}
	}
	got := c.wait(t)
	if got["good"].Err != nil || got["good"].Attempts != 1 {
		t.Errorf("good: %+v", got["good"])
	}
	bad := got["bad"]
	if bad.Err == nil || bad.Attempts != 3 || !bad.DeadLettered {
		t.Errorf("bad: %+v", bad)
	}
	if n := len(dl.records()); n != 1 {
		t.Fatalf("dead letters = %d", n)
	}
	if r := dl.records()[0]; r.Attempts != 3 || r.Event.ID != "bad" || r.Err.Error() != "boom" {
		t.Errorf("record = %+v", r)
	}
	if calls.Load() != 4 {
		t.Errorf("calls = %d, want 4 (good once, bad three times)", calls.Load())
	}
}

func TestBisectIsolatesPoison(t *testing.T) {
	w := &funcWorker{invoke: func(ctx context.Context, b *plugins.Batch) error {
		for i, ev := range b.Events {
			if ev.ID == "37" {
				return errors.New("process crashed")
			}
			b.Results[i] = plugins.Result{Output: []byte("1")}
		}
		return nil
	}}
	f := startFunction(t, Config{Batch: BatchConfig{MaxItems: 100, MaxWait: time.Hour}, Retry: RetryConfig{Attempts: 2, Backoff: time.Millisecond, Bisect: true}}, w, Deps{})
	c := newCollector(100)
	for i := 0; i < 100; i++ {
		if err := f.Submit(&Item{Event: newEvent(fmt.Sprint(i)), Done: c.Done}); err != nil {
			t.Fatal(err)
		}
	}
	for id, o := range c.wait(t) {
		if (id == "37") != (o.Err != nil) {
			t.Errorf("%s: %v", id, o.Err)
		}
		var werr *WorkerError
		if id == "37" && (!errors.As(o.Err, &werr) || o.Attempts != 2) {
			t.Errorf("poison outcome %+v", o)
		}
	}
}

func TestTimeout(t *testing.T) {
	w := &funcWorker{invoke: func(ctx context.Context, b *plugins.Batch) error {
		<-ctx.Done()
		return ctx.Err()
	}}
	f := startFunction(t, Config{Timeout: 20 * time.Millisecond}, w, Deps{})
	o := f.Call(&Item{Event: newEvent("slow")})
	if !errors.Is(o.Err, ErrTimeout) || o.Err.Error() != "Task timed out after 0.02 seconds" {
		t.Fatalf("err = %v", o.Err)
	}
}

func TestCloseDrains(t *testing.T) {
	w := okWorker()
	f, err := New("f", Config{Concurrency: 2}, w, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := newCollector(500)
	for i := 0; i < 500; i++ {
		if err := f.Submit(&Item{Event: newEvent(fmt.Sprint(i)), Done: c.Done}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.wait(t)) != 500 {
		t.Fatal("lost events")
	}
	if err := f.Submit(&Item{Event: newEvent("late"), Done: c.Done}); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
}

// TestConcurrentCallsShareBatches: concurrent callers queued behind a busy
// slot share batches only when the function opts in with batch.sync_items.
func TestConcurrentCallsShareBatches(t *testing.T) {
	tests := []struct {
		name      string
		syncItems int
		check     func(largest int64) bool
	}{
		{"default: each call alone", 0, func(largest int64) bool { return largest == 1 }},
		{"sync_items: 50", 50, func(largest int64) bool { return largest >= 2 && largest <= 50 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := okWorker()
			inner := w.invoke
			var maxSize atomic.Int64
			w.invoke = func(ctx context.Context, b *plugins.Batch) error {
				time.Sleep(time.Millisecond) // hold the single slot so callers pile up
				if n := int64(len(b.Events)); n > maxSize.Load() {
					maxSize.Store(n)
				}
				return inner(ctx, b)
			}
			f := startFunction(t, Config{Concurrency: 1, Batch: BatchConfig{SyncItems: tt.syncItems}}, w, Deps{})
			var wg sync.WaitGroup
			for i := 0; i < 200; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprint(i)
					o := f.Call(&Item{Event: newEvent(id)})
					if o.Err != nil || string(o.Output) != `"`+id+`"` {
						t.Errorf("%s: %+v", id, o)
					}
				}()
			}
			wg.Wait()
			if !tt.check(maxSize.Load()) {
				t.Errorf("largest batch %d", maxSize.Load())
			}
		})
	}
}

type memDeadLetter struct {
	mu sync.Mutex
	rs []*DeadLetterRecord
}

func (m *memDeadLetter) DeadLetter(_ context.Context, r *DeadLetterRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rs = append(m.rs, r)
	return nil
}

func (m *memDeadLetter) records() []*DeadLetterRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*DeadLetterRecord(nil), m.rs...)
}

func TestMetricsRegistered(t *testing.T) {
	f := startFunction(t, Config{}, okWorker(), Deps{})
	f.Call(&Item{Event: newEvent("m"), Trigger: "metrics-test"})
	var b strings.Builder
	metrics.WritePrometheus(&b, false)
	if !strings.Contains(b.String(), `sluice_invocations_total{function="f",trigger="metrics-test",outcome="success"} 1`) {
		t.Fatalf("the function's metrics are not exported:\n%s", b.String())
	}
}

func TestDrained(t *testing.T) {
	release := make(chan struct{})
	w := &funcWorker{invoke: func(ctx context.Context, b *plugins.Batch) error {
		<-release
		return nil
	}}
	f := startFunction(t, Config{Concurrency: 1, Queue: 8, Batch: BatchConfig{MaxItems: 1, MaxWait: -1}}, w, Deps{})
	select {
	case <-f.Drained(0):
	default:
		t.Fatal("Drained(0) on an empty queue is not closed at once")
	}
	c := newCollector(5)
	for i := 0; i < 5; i++ {
		if err := f.Submit(&Item{Event: newEvent(fmt.Sprint(i)), Done: c.Done}); err != nil {
			t.Fatal(err)
		}
	}
	// One batch runs (blocked), the other four wait in the queue.
	deadline := time.Now().Add(10 * time.Second)
	for f.running.Load() != 1 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	low, zero := f.Drained(2), f.Drained(0)
	select {
	case <-low:
		t.Fatalf("Drained(2) closed with %d queued", f.depth.Load())
	default:
	}
	close(release)
	for _, ch := range []<-chan struct{}{low, zero} {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatal("Drained never closed after the queue emptied")
		}
	}
	c.wait(t)
}

func TestFlushSkipsMaxWait(t *testing.T) {
	f := startFunction(t, Config{Batch: BatchConfig{MaxItems: 100, MaxWait: time.Hour}}, okWorker(), Deps{})
	c := newCollector(2)
	items := []*Item{{Event: newEvent("a"), Done: c.Done, Flush: true}, {Event: newEvent("b"), Done: c.Done}}
	if err := f.SubmitGroup(items); err != nil {
		t.Fatal(err)
	}
	// Without Flush the half-empty batch would wait an hour for company.
	for id, o := range c.wait(t) {
		if o.Err != nil {
			t.Errorf("%s: %v", id, o.Err)
		}
	}
}

func TestGroupThatDoesNotFitEndsTheWait(t *testing.T) {
	w := okWorker()
	gate := make(chan struct{})
	inner := w.invoke
	w.invoke = func(ctx context.Context, b *plugins.Batch) error {
		<-gate
		return inner(ctx, b)
	}
	f := startFunction(t, Config{Concurrency: 2, Batch: BatchConfig{MaxItems: 10, MaxWait: time.Hour}}, w, Deps{})
	c := newCollector(17)
	group := func(prefix string, n int) []*Item {
		items := make([]*Item, n)
		for i := range items {
			items[i] = &Item{Event: newEvent(fmt.Sprintf("%s%d", prefix, i)), Done: c.Done}
		}
		return items
	}
	// 7 + 7 > max_items: the first batch cannot take the second group, so
	// it must not wait an hour for company. The second then waits until a
	// third group fills it to max_items.
	for _, g := range [][]*Item{group("a", 7), group("b", 7)} {
		if err := f.SubmitGroup(g); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	got := 0
	deadline := time.After(20 * time.Second)
	for got < 7 {
		select {
		case <-deadline:
			t.Fatalf("the first batch waited for max_wait although the next group did not fit (%d settled)", got)
		default:
		}
		c.mu.Lock()
		got = len(c.got)
		c.mu.Unlock()
		runtime.Gosched()
	}
	if err := f.SubmitGroup(group("c", 3)); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
}

func TestRetryDelay(t *testing.T) {
	c := Config{Retry: RetryConfig{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}}.withDefaults().Retry
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second}, // capped
		{64, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for i := 0; i < 200; i++ {
			d := c.Delay(tt.attempt)
			if d < tt.min || d > tt.max {
				t.Fatalf("attempt %d: delay %s outside [%s, %s]", tt.attempt, d, tt.min, tt.max)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: only %d distinct delays in 200: no jitter", tt.attempt, len(seen))
		}
	}
}

// TestConcurrencyLimit: never more batches in flight than concurrency,
// however many events wait.
func TestConcurrencyLimit(t *testing.T) {
	var running, peak atomic.Int64
	w := &funcWorker{invoke: func(ctx context.Context, b *plugins.Batch) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond) // hold the slot while others try to take one
		running.Add(-1)
		return nil
	}}
	f := startFunction(t, Config{Concurrency: 3, Queue: 1000, Batch: BatchConfig{MaxItems: 1}}, w, Deps{})
	var wg sync.WaitGroup
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Call(&Item{Event: newEvent(fmt.Sprint(i))})
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != 3 {
		t.Errorf("peak batches in flight %d, want 3", p)
	}
}

// TestItemSize checks that a submitter's Item.Size is what batch.max_bytes
// counts: items claiming 600 bytes go one per 1000-byte batch, though
// their events are tiny.
func TestItemSize(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int
		ok   func(batches int64) bool
	}{
		// About 170 bytes each: the batch waiting max_wait takes several.
		{"computed", 0, func(b int64) bool { return b < 4 }},
		{"given", 600, func(b int64) bool { return b == 4 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := okWorker()
			f := startFunction(t, Config{Concurrency: 1, Batch: BatchConfig{MaxItems: 10, MaxBytes: 1000, MaxWait: 50 * time.Millisecond}}, w, Deps{})
			c := newCollector(4)
			items := make([]*Item, 4)
			for i := range items {
				items[i] = &Item{Event: newEvent(fmt.Sprint(i)), Trigger: "kafka", Done: c.Done, Size: tt.size}
			}
			for _, it := range items {
				if err := f.SubmitGroup([]*Item{it}); err != nil {
					t.Fatal(err)
				}
			}
			c.wait(t)
			if got := w.batches.Load(); !tt.ok(got) {
				t.Fatalf("4 items of size %d went in %d batches", tt.size, got)
			}
		})
	}
}

// TestRunnersExitOnClose checks that the goroutines that run batches are
// reused while the Function runs and all gone once it closed.
func TestRunnersExitOnClose(t *testing.T) {
	runners := func() int {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "invoker.(*Function).runner(")
	}
	noRunners := func(when string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for runners() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d runners left %s", runners(), when)
			}
			runtime.Gosched()
		}
	}
	// The runners of the Functions earlier tests closed exit on their own.
	noRunners("by earlier tests")
	slow := &funcWorker{invoke: func(ctx context.Context, b *plugins.Batch) error {
		time.Sleep(time.Millisecond)
		return nil
	}}
	f, err := New("f", Config{Concurrency: 4, Batch: BatchConfig{MaxItems: 1}}, slow, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 40
	c := newCollector(n)
	for i := range n {
		if err := f.Submit(&Item{Event: newEvent(fmt.Sprint(i)), Trigger: "kafka", Done: c.Done}); err != nil {
			t.Fatal(err)
		}
	}
	c.wait(t)
	if got := runners(); got == 0 || got > 4 {
		t.Fatalf("%d runners for %d batches at concurrency 4, want 1 to 4", got, n)
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	noRunners("after Close")
}

// failStartWorker is a worker whose Start fails, counting its Close calls.
type failStartWorker struct {
	funcWorker
	closed atomic.Int64
}

func (w *failStartWorker) Start(context.Context) error { return errors.New("no start") }
func (w *failStartWorker) Close(context.Context) error { w.closed.Add(1); return nil }

// TestCloseAfterFailedStart: a Function whose worker failed to start closes
// at once (closing what the worker may have started), with or without
// time left on its context, rather than waiting for a loop that never ran.
func TestCloseAfterFailedStart(t *testing.T) {
	for _, expired := range []bool{false, true} {
		w := &failStartWorker{}
		f, err := New("f", Config{}, w, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Start(context.Background()); err == nil {
			t.Fatal("Start succeeded")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if expired {
			cancel()
		}
		done := make(chan error, 1)
		go func() { done <- f.Close(ctx) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Close (context expired: %t) still waits", expired)
		}
		cancel()
		if w.closed.Load() != 1 || f.Ready() {
			t.Errorf("worker closed %d times, ready %t", w.closed.Load(), f.Ready())
		}
	}
}
