package invoker

import "time"

// failBatch settles the events of a batch that failed as a whole. Events
// the worker finished before the batch failed (a Lambda pool's
// invocations that answered, a Go function's events before the deadline)
// get their own results. Of the rest, synchronous events fail with err at
// once, as they are tried only once; the others are bisected or retried.
func (f *Function) failBatch(items []*Item, err error, outcome string, at attempt) {
	dur, b := at.dur, at.batch
	var rest []*Item
	for i, it := range items {
		r := b.Results[i]
		switch {
		case r.Err == errPending && !it.Sync:
			rest = append(rest, it)
		case r.Err == errPending:
			it.attempts++
			f.finish(it, Outcome{Err: err, Attempts: it.attempts, Duration: at.dur}, outcome, at)
		case r.Err == nil:
			it.attempts++
			f.finish(it, Outcome{Output: r.Output, Attempts: it.attempts, Duration: dur}, "success", at)
		default:
			it.attempts++
			f.failItem(it, r.Err, "error", at)
		}
	}
	if f.shouldBisect(rest) {
		// Logged first: once queued, the halves may run at once.
		f.logBatch(rest, outcome, err, at)
		f.bisect(rest)
		return
	}
	for _, it := range rest {
		it.attempts++
		f.failItem(it, err, outcome, at)
	}
}

// shouldBisect reports whether to split the failed events of a batch, none
// of them synchronous, rather than retry them together.
func (f *Function) shouldBisect(items []*Item) bool {
	if !f.cfg.Retry.Splits(len(items)) || f.isAbandoning() {
		return false
	}
	for _, it := range items {
		if it.group > 1 || it.grouped {
			// A group's order is its submitter's to keep: it settles the
			// whole group and splits it itself if it wants to.
			return false
		}
	}
	return true
}

func (f *Function) isAbandoning() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.abandon
}

// bisect queues the two halves of a batch that failed as a whole.
func (f *Function) bisect(items []*Item) {
	// Cut in the middle: shouldBisect never splits a batch holding a group
	// (SubmitGroup), so every item here stands alone.
	cut := len(items) / 2
	f.m.bisects.Inc()
	a := append([]*Item(nil), items[:cut]...)
	b := append([]*Item(nil), items[cut:]...)
	now := time.Now()
	for _, it := range items {
		it.enqueued = now // back in the queue: its wait starts again
	}
	f.mu.Lock()
	f.halves = append(f.halves, a, b)
	f.mu.Unlock()
	f.wake()
}

// failItem retries it after a backoff when the retry policy (Next) allows,
// or finishes it as failed. it.attempts already counts the failed attempt.
func (f *Function) failItem(it *Item, err error, outcome string, at attempt) {
	maxAttempts := f.cfg.Retry.Attempts
	if it.Attempts > 0 {
		maxAttempts = it.Attempts
	}
	if it.Sync {
		maxAttempts = 1
	}
	v := f.cfg.Retry.Next(it.attempts, maxAttempts, it.Since, time.Now(), err)
	switch {
	case v.Step == Retry && !f.isAbandoning():
		f.logItem(it, outcome, err, at)
		f.retry(it, v.Delay)
		return
	case v.Step == Final:
		err = v.Err
	}
	f.finish(it, Outcome{Err: err, Attempts: it.attempts, Duration: at.dur}, outcome, at)
}

// retry puts it back after its backoff d; at shutdown at once.
func (f *Function) retry(it *Item, d time.Duration) {
	f.m.retries.Inc()
	f.mu.Lock()
	if f.closing {
		d = 0
	}
	f.timers++
	f.mu.Unlock()
	time.AfterFunc(d, func() {
		f.mu.Lock()
		f.timers--
		it.enqueued = time.Now() // the backoff is not time in the queue
		f.retryReady = append(f.retryReady, it)
		f.mu.Unlock()
		f.wake()
	})
}
