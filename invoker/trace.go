package invoker

import (
	"context"
	"errors"
	"time"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/tracing"
)

// traceStart starts the spans of the batch b of items: their time in the
// queue, the batch, one invocation each.
// It returns nil when the batch's traces are not sampled.
func (f *Function) traceStart(items []*Item, b *plugins.Batch, start time.Time) *tracing.Batch {
	if !f.tr.Wants(b) {
		return nil
	}
	bt := f.tr.StartBatch(f.name, b, start)
	for i, it := range items {
		bt.Event(b, i, it.enqueued, it.attempts+1)
	}
	return bt
}

// traceEnd ends the spans traceStart started with the outcome of each
// event, as run settles them, and whether the batch waited for a cold
// start.
func traceEnd(bt *tracing.Batch, b *plugins.Batch, err error, timedOut bool, end time.Time) {
	bt.ColdStart(b.InitDuration)
	switch {
	case err == nil:
		for i := range b.Events {
			o := tracing.OutcomeSuccess
			if b.Results[i].Err != nil {
				o = tracing.OutcomeError
			}
			bt.End(i, o, end)
		}
		bt.Finish(tracing.OutcomeSuccess, end)
	case timedOut || errors.Is(err, context.DeadlineExceeded):
		bt.Finish(tracing.OutcomeTimeout, end)
	default:
		bt.Finish(tracing.OutcomeCrash, end)
	}
}
