package invoker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/tracing"
)

// run invokes the worker with one batch and settles every item. start is
// now, or zero for run to read the clock.
func (f *Function) run(items []*Item, start time.Time) {
	defer func() {
		<-f.sem
		f.running.Add(-1)
		f.mu.Lock()
		f.inflight--
		closing := f.closing
		f.mu.Unlock()
		// A batcher waiting for a slot is woken by the slot itself; only a
		// closing batcher waits for the last batch to end.
		if closing {
			f.wake()
		}
	}()
	if start.IsZero() {
		start = time.Now()
	}

	// The timeout starts now, at dispatch: how long an event waited in the
	// queue is its own figure (queue_ms), as on Lambda.
	b := batchPool.Get().(*plugins.Batch)
	defer putBatch(b)
	b.Function, b.Deadline = f.name, start.Add(f.cfg.Timeout)
	if len(items) == 1 {
		b.ID = items[0].Event.ID
	} else {
		b.ID = plugins.NewID()
	}
	for _, it := range items {
		b.Events = append(b.Events, it.Event)
	}
	for range items {
		b.Results = append(b.Results, plugins.Result{Err: errPending})
	}
	var bt *tracing.Batch
	if f.tr != nil {
		bt = f.traceStart(items, b, start)
	}
	ctx := newDeadlineCtx(f.baseCtx, b.Deadline)
	err := f.invoke(ctx, b)
	timedOut := err != nil && ctx.Err() == context.DeadlineExceeded
	ctx.release()
	dur := time.Since(start)
	if bt != nil {
		traceEnd(bt, b, err, timedOut, start.Add(dur))
	}
	f.m.observeBatch(len(items), dur, billItems(items, b, err == nil, dur))
	at := attempt{start: start, dur: dur, batch: b}

	switch {
	case err == nil:
		for i := range b.Results {
			if b.Results[i].Err == errPending {
				b.Results[i] = plugins.Result{} // not filled: null, as before results were marked
			}
		}
		counted := f.countSuccesses(items, b)
		for i, it := range items {
			it.attempts++
			r := b.Results[i]
			if r.Err == nil {
				f.settle(it, Outcome{Output: r.Output, Attempts: it.attempts, Duration: dur}, "success", at, counted)
			} else {
				f.failItem(it, r.Err, "error", at)
			}
		}
	case timedOut || errors.Is(err, context.DeadlineExceeded):
		f.failBatch(items, &TimeoutError{After: f.cfg.Timeout}, "timeout", at)
	default:
		f.failBatch(items, &WorkerError{Err: err}, "crash", at)
	}
}

// attempt is one invocation of a batch, as its events are settled and
// logged: when it began, how long it ran, and its batch (nil for an event
// that never reached a worker).
type attempt struct {
	start time.Time
	dur   time.Duration
	batch *plugins.Batch
}

// errPending marks the result of an event its worker has not finished: the
// invoker sets it before Invoke and a worker overwrites it once the event
// is done.
var errPending = errors.New("invoker: BUG: no result")

// billItems sets the ms each item is billed for this attempt: what the
// worker measured for the event when it did (plugins.Result.Duration),
// else its share of the batch's duration, rounded up to 1 ms; and returns
// their sum, counted once per batch since every item is logged once.
func billItems(items []*Item, b *plugins.Batch, ok bool, dur time.Duration) int64 {
	share := billedMS(eventShare(dur, len(items)))
	var total int64
	for i, it := range items {
		it.billed = share
		if ok && b.Results[i].Duration > 0 {
			it.billed = billedMS(b.Results[i].Duration)
		}
		total += it.billed
	}
	return total
}

// batchPool recycles batches: workers must not keep a Batch after Invoke
// returns (plugins.Worker's contract), so a batch is free once settled.
var batchPool = sync.Pool{New: func() any { return new(plugins.Batch) }}

func putBatch(b *plugins.Batch) {
	clear(b.Events)
	clear(b.Results)
	*b = plugins.Batch{Events: b.Events[:0], Results: b.Results[:0]}
	batchPool.Put(b)
}

// invoke calls the worker, turning a panic into an error: a broken worker
// must fail its batch, not the gateway.
func (f *Function) invoke(ctx context.Context, b *plugins.Batch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("worker panicked: %v", p)
		}
	}()
	return f.worker.Invoke(ctx, b)
}

// countSuccesses adds the successes of a batch whose events all came from
// one trigger to its counter at once, before any Done runs, and reports
// whether it did. Per event, the counter's lookup and its atomic add, on a
// cache line every worker shares, cost more than the noop function.
func (f *Function) countSuccesses(items []*Item, b *plugins.Batch) bool {
	trigger := items[0].Trigger
	n := 0
	for i, it := range items {
		if it.Trigger != trigger {
			return false
		}
		if b.Results[i].Err == nil {
			n++
		}
	}
	if n > 0 {
		f.m.invocation(trigger, "success").Add(n)
	}
	return true
}

// eventShare is one event's share of a batch of n that took d: what each
// event of the batch is billed for.
func eventShare(d time.Duration, n int) time.Duration {
	if n <= 1 {
		return d
	}
	return d / time.Duration(n)
}

func batchLen(b *plugins.Batch) int {
	if b == nil {
		return 1
	}
	return len(b.Events)
}
