package invoker

import (
	"sync"
	"time"
)

// Submit queues one event. It never blocks: it returns ErrQueueFull when
// the queue is full and ErrClosed after Close began. On nil, it.Done will be
// called exactly once.
func (f *Function) Submit(it *Item) error {
	it.one[0] = it
	return f.submit(it.one[:])
}

// SubmitGroup queues events that must be dispatched together, in order, in
// one batch (a stream trigger's records of one partition). The group is
// accepted whole or not at all. A group larger than batch.max_items or
// batch.max_bytes still goes out as one batch.
func (f *Function) SubmitGroup(items []*Item) error {
	if len(items) == 0 {
		return nil
	}
	return f.submit(items)
}

func (f *Function) submit(items []*Item) error {
	now := time.Now()
	for _, it := range items {
		if it.Done == nil {
			panic("BUG: invoker item without Done")
		}
		it.enqueued = now
		if it.Since.IsZero() {
			it.Since = now
		}
		it.size = it.Size
		if it.size <= 0 {
			it.size = it.Event.Size()
		}
		it.group = 0
		it.grouped = len(items) > 1
	}
	items[0].group = len(items)
	f.mu.Lock()
	if f.closing || !f.started {
		f.mu.Unlock()
		return ErrClosed
	}
	if f.queue.n+len(items) > f.cfg.Queue {
		f.mu.Unlock()
		f.m.throttles.Inc()
		return ErrQueueFull
	}
	for _, it := range items {
		f.queue.push(it)
	}
	f.depth.Store(int64(f.queue.n))
	f.mu.Unlock()
	f.wake()
	return nil
}

// Call runs a synchronous event and waits for its outcome; it sets
// it.Sync and it.Done. With nothing queued and a free slot the event runs
// on the caller's goroutine, sparing two goroutine hand-offs; otherwise it
// waits in the queue for a slot (and shares a batch with its neighbours
// only up to batch.sync_items). It returns
// ErrQueueFull or ErrClosed in Outcome.Err when the event was not accepted.
func (f *Function) Call(it *Item) Outcome {
	it.Sync = true
	w := waiterPool.Get().(*waiter)
	it.Done = w.fn
	if f.tryInline(it) {
		// A batch of one sync event settles it before run returns, on
		// this goroutine: no channel needed.
		w.inline = true
		f.run(it.one[:], it.enqueued)
		if w.inline {
			panic("BUG: invoker: inline call not settled by run")
		}
		o := w.o
		w.o = Outcome{}
		waiterPool.Put(w)
		return o
	}
	if err := f.Submit(it); err != nil {
		waiterPool.Put(w)
		return Outcome{Err: err}
	}
	o := <-w.ch
	waiterPool.Put(w)
	return o
}

type waiter struct {
	ch     chan Outcome
	fn     func(*Item, Outcome)
	inline bool // Call runs the event on its own goroutine: fn stores o
	o      Outcome
}

var waiterPool = sync.Pool{New: func() any {
	w := &waiter{ch: make(chan Outcome, 1)}
	// Bound once, so Call does not allocate a closure.
	w.fn = func(_ *Item, o Outcome) {
		if w.inline {
			w.o, w.inline = o, false
			return
		}
		w.ch <- o
	}
	return w
}}

// tryInline takes a concurrency slot for it when nothing waits before it.
func (f *Function) tryInline(it *Item) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing || !f.started || f.queue.n > 0 || len(f.retryReady) > 0 || len(f.halves) > 0 {
		return false
	}
	select {
	case f.sem <- struct{}{}:
	default:
		return false
	}
	now := time.Now()
	it.enqueued, it.size, it.group, it.grouped = now, it.Event.Size(), 1, false
	if it.Since.IsZero() {
		it.Since = now
	}
	it.one[0] = it
	f.inflight++
	f.running.Add(1)
	return true
}
