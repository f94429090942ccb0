package invoker

import (
	"context"
	"time"
)

// finish settles it: dead letter when final and asked for, log, Done.
func (f *Function) finish(it *Item, o Outcome, outcome string, at attempt) {
	f.settle(it, o, outcome, at, false)
}

// settle is finish for an event whose invocation was counted already when
// counted is set.
func (f *Function) settle(it *Item, o Outcome, outcome string, at attempt, counted bool) {
	start, b := at.start, at.batch
	if o.Err != nil && it.DeadLetter && !it.Sync {
		o.DeadLettered = f.deadLetter(it, o.Err)
	}
	o.RequestID = it.Event.ID
	if b != nil {
		o.RequestID = b.RequestID()
		o.InitDuration, o.MaxRSSBytes = b.InitDuration, b.MaxRSSBytes
	}
	o.Queued = queued(it, start)
	if !counted {
		f.m.invocation(it.Trigger, outcome).Inc()
	}
	f.logLine(it, outcome, o.Err, at)
	it.Done(it, o)
}

func (f *Function) deadLetter(it *Item, err error) bool {
	r := &DeadLetterRecord{Function: f.name, Trigger: it.Trigger, Event: it.Event, Err: err, Attempts: it.attempts, Time: time.Now()}
	if f.dlq == nil {
		f.log.Error().Str("trigger", it.Trigger).Int("attempts", it.attempts).Err(err).
			RawJSON("event", it.Event.AppendJSON(nil)).Msg("event failed and no dead_letter is configured")
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if derr := f.dlq.DeadLetter(ctx, r); derr != nil {
		f.log.Error().Str("trigger", it.Trigger).Int("attempts", it.attempts).Err(err).AnErr("dead_letter_error", derr).
			RawJSON("event", it.Event.AppendJSON(nil)).Msg("cannot write dead letter")
		return false
	}
	f.m.deadLetters.Inc()
	return true
}

func (f *Function) logBatch(items []*Item, outcome string, err error, at attempt) {
	for _, it := range items {
		f.logItem(it, outcome, err, at)
	}
}

// logItem writes the one line per invocation of an event and counts it.
func (f *Function) logItem(it *Item, outcome string, err error, at attempt) {
	f.m.invocation(it.Trigger, outcome).Inc()
	f.logLine(it, outcome, err, at)
}

// logLine writes the one line per invocation of an event.
func (f *Function) logLine(it *Item, outcome string, err error, at attempt) {
	start, dur, b := at.start, at.dur, at.batch
	// An event settled without running (expired in the queue, abandoned)
	// has no batch and costs nothing.
	billed := int64(0)
	if b != nil {
		billed = it.billed
	}
	if f.onInv != nil {
		f.onInv(Invocation{Function: f.name, RequestID: it.Event.ID, Trigger: it.Trigger, Outcome: outcome, Err: err,
			Start: start, Duration: dur, BilledMS: billed, Attempt: it.attempts, BatchSize: batchLen(b)})
	}
	ev := f.log.Info()
	if err != nil {
		ev = f.log.Warn()
	}
	if !ev.Enabled() {
		return
	}
	ev = ev.Str("request_id", it.Event.ID).Str("trigger", it.Trigger).
		Float64("queue_ms", float64(queued(it, start).Microseconds())/1000).
		Float64("duration_ms", float64(dur.Microseconds())/1000).
		Int64("billed_ms", billed).
		Str("outcome", outcome).
		Int("attempt", it.attempts)
	if b != nil {
		ev = ev.Str("batch_id", b.ID).Int("batch_size", len(b.Events))
		if b.MaxRSSBytes > 0 {
			ev = ev.Float64("max_rss_mb", float64(b.MaxRSSBytes)/(1<<20))
		}
		if b.InitDuration > 0 {
			ev = ev.Bool("cold_start", true).Float64("init_ms", float64(b.InitDuration.Microseconds())/1000)
		}
	}
	if err != nil {
		ev = ev.Str("error", err.Error())
	}
	ev.Msg("invocation")
}

// queued is how long it waited in the queue before the attempt that began
// at start.
func queued(it *Item, start time.Time) time.Duration {
	return max(start.Sub(it.enqueued), 0)
}

// billedMS rounds a duration up to the next millisecond, as Lambda bills.
func billedMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
