package invoker

import (
	"time"
)

func (f *Function) wake() {
	select {
	case f.signal <- struct{}{}:
	default:
	}
}

// loop is the batcher: it waits for work, takes a concurrency slot, forms a
// batch and dispatches it on its own goroutine.
func (f *Function) loop() {
	defer close(f.done)
	for {
		f.mu.Lock()
		for !f.hasWork() {
			if f.closing && f.inflight == 0 && f.timers == 0 {
				f.mu.Unlock()
				return
			}
			f.mu.Unlock()
			<-f.signal
			f.mu.Lock()
		}
		f.mu.Unlock()

		// Take the slot before forming the batch: while every slot is busy,
		// events pile up in the queue and the next batch is fuller.
		f.sem <- struct{}{}

		f.mu.Lock()
		batch, urgent, bytes := f.take(nil, 0)
		// Events left in the queue after take are a group that does not
		// fit: the batch cannot grow in FIFO order, so waiting would only
		// delay it.
		if len(batch) > 0 && !urgent && !f.closing && f.cfg.Batch.MaxWait > 0 && f.queue.n == 0 &&
			len(batch) < f.cfg.Batch.MaxItems && bytes < f.cfg.Batch.MaxBytes {
			batch = f.fill(batch, bytes)
		}
		if len(batch) == 0 {
			f.mu.Unlock()
			<-f.sem
			continue
		}
		f.inflight++
		f.running.Add(1)
		f.mu.Unlock()
		f.dispatch(batch)
	}
}

// dispatch hands batch to an idle runner, or starts one.
func (f *Function) dispatch(batch []*Item) {
	select {
	case r := <-f.idle:
		r <- batch
	default:
		r := make(chan []*Item, 1)
		r <- batch
		go f.runner(r)
	}
}

// runner runs the batches dispatch hands it, waiting in the idle pool
// between them; it exits when the pool is full or the Function closed.
// Reusing goroutines spares each batch a goroutine's start and the growth
// of its stack, which cost more than a batch of a hundred noop events.
// There are at most as many runners as batches ever ran at once.
func (f *Function) runner(r chan []*Item) {
	for {
		select {
		case batch := <-r:
			f.run(batch, time.Time{})
		case <-f.quit:
			return
		}
		select {
		case f.idle <- r:
		default:
			return
		}
	}
}

// fill waits up to batch.max_wait from the first event's arrival for more
// events. Called and returns with f.mu held.
func (f *Function) fill(batch []*Item, bytes int) []*Item {
	deadline := batch[0].enqueued.Add(f.cfg.Batch.MaxWait)
	var t *time.Timer
	for len(batch) < f.cfg.Batch.MaxItems && bytes < f.cfg.Batch.MaxBytes && !f.closing {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		f.mu.Unlock()
		if t == nil {
			t = time.NewTimer(wait)
		} else {
			t.Reset(wait)
		}
		select {
		case <-f.signal:
		case <-t.C:
		}
		f.mu.Lock()
		var urgent bool
		batch, urgent, bytes = f.take(batch, bytes)
		if urgent || f.queue.n > 0 {
			break
		}
	}
	if t != nil {
		t.Stop()
	}
	return batch
}

func (f *Function) hasWork() bool {
	return f.queue.n > 0 || len(f.retryReady) > 0 || len(f.halves) > 0
}

// take appends to batch what fits: a bisected half alone, else ready
// retries, then queued events, whole groups at a time. A batch holding a
// synchronous event holds at most batch.sync_items events. It reports
// whether the batch holds an event that must not wait (synchronous,
// flushed or a retry). Called with f.mu held.
func (f *Function) take(batch []*Item, bytes int) ([]*Item, bool, int) {
	maxItems, maxBytes, syncItems := f.cfg.Batch.MaxItems, f.cfg.Batch.MaxBytes, f.cfg.Batch.SyncItems
	urgent := false
	for _, it := range batch {
		urgent = urgent || it.Sync || it.Flush
		if it.Sync {
			maxItems = min(maxItems, syncItems)
		}
	}
	if len(batch) == 0 && len(f.halves) > 0 {
		// A bisected half goes out alone and at once: mixing it with other
		// events would defeat the isolation it is for.
		batch = f.halves[0]
		f.halves[0] = nil
		f.halves = f.halves[1:]
		return batch, true, 0
	}
	for len(f.retryReady) > 0 && len(batch) < maxItems && (len(batch) == 0 || bytes+f.retryReady[0].size <= maxBytes) {
		it := f.retryReady[0]
		f.retryReady[0] = nil
		f.retryReady = f.retryReady[1:]
		batch = append(batch, it)
		bytes += it.size
		// A retry has waited its backoff already; holding it for max_wait
		// too would only delay it.
		urgent = true
	}
	for f.queue.n > 0 {
		head := f.queue.peek()
		n, size, limit := head.group, 0, maxItems
		if n < 1 {
			panic("BUG: queue head is not the start of a group")
		}
		for i := 0; i < n; i++ {
			it := f.queue.at(i)
			size += it.size
			if it.Sync {
				limit = min(limit, syncItems)
			}
		}
		if len(batch) > 0 && (len(batch)+n > limit || bytes+size > maxBytes) {
			break
		}
		maxItems = limit
		switch {
		case batch == nil && limit == 1:
			// A batch of one, as every sync event is by default: the
			// item's own array holds it, as on the inline path, sparing
			// an allocation per event.
			batch = head.one[:0]
		case batch == nil:
			batch = make([]*Item, 0, min(maxItems, f.queue.n))
		}
		for i := 0; i < n; i++ {
			it := f.queue.pop()
			batch = append(batch, it)
			urgent = urgent || it.Sync || it.Flush
		}
		bytes += size
	}
	f.depth.Store(int64(f.queue.n))
	f.wakeDrained()
	return batch, urgent, bytes
}
