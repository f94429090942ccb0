package plugins

import (
	"context"
	"time"
)

// Handler is the signature of a Go function: builtins registered by name and
// the exported Handle symbol of a Go plugin. It receives one event and returns
// its output as JSON (nil means JSON null). A returned error fails only this
// event. ctx carries the invocation deadline.
//
// A Handler may be called concurrently from several goroutines. The event
// is the function's until it returns: it must not keep ev, nor hand it to
// a goroutine that outlives the call, as a trigger may reuse the Event for
// a later event once the invocation is over (a Kafka trigger does). The
// values the event holds (Data, its strings, its headers) are never reused
// and may be kept.
type Handler func(ctx context.Context, ev *Event) ([]byte, error)

// Batch is one invocation of a function: events dispatched together, and the
// results the worker fills in.
type Batch struct {
	// ID identifies the invocation in logs and worker protocols.
	ID string
	// Function is the configured function name.
	Function string
	// Deadline is when the invocation times out; ctx carries it too.
	Deadline time.Time
	// Events are the events of the batch, in dispatch order.
	Events []*Event

	// Results has one entry per event, in the order of Events. Invoker sizes
	// it before Invoke; the worker fills it.
	Results []Result
	// TraceParents, when not nil, has one W3C traceparent per event: the
	// invocation's span, which the worker passes on to the function (see
	// TraceParent). The invoker sets it when tracing is on.
	TraceParents []string
	// MaxRSSBytes is the peak resident memory of the process that ran the
	// batch, set by subprocess workers; 0 when unknown.
	MaxRSSBytes int64
	// InitDuration is set by workers that start instances on demand when
	// the batch ran on an instance started for it: how long the start (the
	// cold start) took. 0 for a warm instance.
	InitDuration time.Duration
}

// RequestID returns the id to tag the batch's logs with: the event's id for a
// batch of one, the batch id otherwise.
func (b *Batch) RequestID() string {
	if len(b.Events) == 1 {
		return b.Events[0].ID
	}
	return b.ID
}

// Result is the outcome of one event of a batch.
type Result struct {
	// Output is the JSON the function returned; nil means null.
	Output []byte
	// Err is non-nil when the function failed this event.
	Err error
	// Duration is how long the event's own invocation took, for a worker
	// that runs each event (or a few) as an invocation of its own, as a
	// Lambda runtime does; an invocation of several events gives each its
	// share. Zero means the event's share of the batch's duration. The
	// invoker bills it rounded up to the millisecond, as Lambda bills.
	Duration time.Duration
}

// Worker runs batches for one function. Shaped like benthos' BatchOutput:
// start, invoke a batch under a context carrying its deadline, close.
//
// Invoke must be safe for concurrent use; the invoker bounds how many batches
// are in flight at once. It fills b.Results (one per event) and returns nil,
// or returns an error when the batch as a whole failed (the process crashed,
// the deadline passed, the protocol broke). The invoker then keeps the
// results the worker filled — events it finished before the failure — and
// retries or fails the others, so a worker writes an event's result only
// once that event is done, never a placeholder. A worker must
// not touch b or its events after Invoke returns (the invoker recycles
// batches, triggers their events): one that gives up on a batch at its
// deadline must first make sure nothing it started can still read b.Events
// or write to b.Results.
type Worker interface {
	// Start prepares the worker (spawns processes, opens plugins). It returns
	// once the worker can take batches, or an error.
	Start(ctx context.Context) error
	// Invoke runs one batch.
	Invoke(ctx context.Context, b *Batch) error
	// Close stops the worker, waiting for in-flight batches until ctx is done.
	Close(ctx context.Context) error
}

// LogFunc receives one line a function wrote (a subprocess's stderr, a
// runtime's log output), tagged with the request id of the batch it belongs
// to ("" when the line came between batches). It must be safe for
// concurrent use and must not retain line.
type LogFunc func(requestID string, line []byte)

// FunctionError is an error a function reported for an event, as opposed to a
// failure of the machinery that ran it. Type is the error's type name when the
// runtime reports one (Lambda's errorType).
type FunctionError struct {
	Message string
	Type    string
	// Trace is the stack trace reported by the runtime, if any.
	Trace []string
}

func (e *FunctionError) Error() string {
	if e.Type != "" {
		return e.Type + ": " + e.Message
	}
	return e.Message
}
