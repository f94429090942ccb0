package invoker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/tracing"
)

// Item is one event submitted to a Function.
type Item struct {
	// Event is the envelope to deliver. The invoker never mutates it.
	Event *plugins.Event
	// Trigger names the source in logs and metrics: "http", "async",
	// "kafka", "invoke", "schedule"...
	Trigger string
	// Sync marks an event a caller is waiting for: it is dispatched without
	// waiting to fill a batch, in a batch of at most batch.sync_items events
	// (1 by default); its timeout runs from its dispatch, not from its
	// arrival in the queue. It is tried exactly once, as Lambda tries a
	// synchronous invocation: not retried after a function error, a crash
	// or a timeout, never run again in a bisected half, and never
	// dead-lettered (the caller gets the error).
	Sync bool
	// Flush dispatches the batch holding the event at once instead of
	// waiting batch.max_wait to fill it: a stream trigger sets it on
	// retries and bisected halves, which have nothing to wait for, as the
	// invoker's own retries do not wait either.
	Flush bool
	// Attempts overrides the function's retry.attempts when positive; 1
	// means no retries. A Kafka trigger uses 1: it applies the same retry
	// policy (RetryConfig.Next) itself, holding the record's place in its
	// ordering lane while it waits.
	Attempts int
	// DeadLetter sends the event to the function's dead letter once it has
	// finally failed.
	DeadLetter bool
	// Since is when the event entered the system, for retry.max_age.
	// Defaults to the time of Submit.
	Since time.Time
	// Done receives the outcome exactly once, on an invoker goroutine. It
	// must not block for long: it holds up the batch's slot. The items of
	// one group are settled one after another on the same goroutine.
	Done func(*Item, Outcome)
	// Size is the event's estimated encoded size (plugins.Event.Size), when
	// the submitter already computed it; zero lets the invoker compute it.
	// A stream trigger sizes every record to form its groups and passes
	// the figure on rather than sizing each event twice.
	Size int
	// Ref is the submitter's own reference (a stream trigger's record),
	// for Done to find its state without a map or a closure per item. The
	// invoker never reads it.
	Ref any

	attempts int
	billed   int64 // ms billed for the last attempt that ran
	enqueued time.Time
	size     int
	group    int  // on the first item of a group: its length; the rest of the group follows it in the queue
	grouped  bool // part of a group of more than one
	one      [1]*Item
}

// Outcome is the final result of an Item.
type Outcome struct {
	// Output is the function's JSON output for the event (nil: null).
	Output []byte
	// Err is nil on success; a *plugins.FunctionError for an error the
	// function reported; a *TimeoutError; a *WorkerError; or ErrClosed,
	// ErrExpired.
	Err error
	// Attempts is how many times the event was tried.
	Attempts int
	// DeadLettered reports that the event was written to the dead letter.
	DeadLettered bool
	// Duration is the duration of the last attempt's batch.
	Duration time.Duration
	// RequestID is the id the last attempt was logged under.
	RequestID string
	// Queued is how long the last attempt waited in the queue before its
	// batch was dispatched; the timeout does not count it.
	Queued time.Duration
	// InitDuration is the cold start the last attempt waited for (its
	// instance was started for it); 0 when it ran warm.
	InitDuration time.Duration
	// MaxRSSBytes is the peak resident memory of the process that ran the
	// last attempt; 0 when unknown.
	MaxRSSBytes int64
}

// DeadLetter receives events that finally failed. Implementations must be
// safe for concurrent use.
type DeadLetter interface {
	DeadLetter(ctx context.Context, r *DeadLetterRecord) error
}

// DeadLetterRecord is one finally failed event.
type DeadLetterRecord struct {
	Function string
	Trigger  string
	Event    *plugins.Event
	Err      error
	Attempts int
	Time     time.Time
}

// Deps are what a Function needs that is not configuration.
type Deps struct {
	// Logger receives one line per invocation of each event. Defaults to a
	// disabled logger.
	Logger *zerolog.Logger
	// Metrics receives the function's metrics; the caller registers it and
	// can unregister it as one. Defaults to a set of the Function's own,
	// registered for export (metrics.RegisterSet) until Close.
	Metrics *metrics.Set
	// DeadLetter receives finally failed events of items with DeadLetter
	// set. When nil they are logged at error level, event included.
	DeadLetter DeadLetter
	// OnInvocation, when set, receives what each invocation log line says,
	// on the invoker goroutine that settles the event (a status page keeps
	// the last ones). It must be quick. Passed by value so that it costs no
	// allocation.
	OnInvocation func(inv Invocation)
	// Tracer records each event's queueing and each batch and invocation
	// as spans. Defaults to nil: tracing off.
	Tracer *tracing.Tracer
}

// Invocation is one invocation of one event, as its log line tells it.
type Invocation struct {
	Function  string
	RequestID string
	Trigger   string
	// Outcome is success, error, timeout, crash or abandoned.
	Outcome   string
	Err       error
	Start     time.Time
	Duration  time.Duration
	BilledMS  int64
	Attempt   int
	BatchSize int
}

// Function is the invocation machinery of one function. Create it with New,
// start it with Start, submit with Submit, SubmitGroup or Call, and stop it
// with Close. All methods are safe for concurrent use.
type Function struct {
	name   string
	cfg    Config
	worker plugins.Worker
	log    zerolog.Logger
	dlq    DeadLetter
	m      *fnMetrics
	onInv  func(Invocation)
	tr     *tracing.Tracer

	baseCtx context.Context
	cancel  context.CancelFunc

	sem    chan struct{}     // one token per batch in flight
	signal chan struct{}     // wakes the batcher; capacity 1
	done   chan struct{}     // closed when the batcher has exited
	idle   chan chan []*Item // runners waiting for a batch
	quit   chan struct{}     // closed after the batcher exited: idle runners exit

	mu         sync.Mutex
	queue      fifo      // submitted events, at most cfg.Queue
	retryReady []*Item   // retries whose backoff elapsed; already accepted, so not bounded by cfg.Queue
	halves     [][]*Item // halves of bisected batches, dispatched alone and as they are
	timers     int       // retries waiting for their backoff
	inflight   int
	started    bool
	closing    bool
	abandon    bool          // Close's context expired: finish everything now
	drained    []drainWaiter // Drained callers, woken when depth falls to their mark
	depth      atomic.Int64
	running    atomic.Int64
	accepting  atomic.Bool // started and not closing: what Ready reports
}

type drainWaiter struct {
	mark int
	ch   chan struct{}
}

// New returns a Function named name that invokes w under cfg. It validates
// cfg and returns its errors; it starts nothing.
func New(name string, cfg Config, w plugins.Worker, deps Deps) (*Function, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("function %q: %w", name, err)
	}
	if w == nil {
		panic("BUG: invoker.New without a worker")
	}
	cfg = cfg.withDefaults()
	log := zerolog.Nop()
	if deps.Logger != nil {
		log = *deps.Logger
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Function{
		name:    name,
		cfg:     cfg,
		worker:  w,
		log:     log.With().Str("function", name).Logger(),
		dlq:     deps.DeadLetter,
		onInv:   deps.OnInvocation,
		tr:      deps.Tracer,
		baseCtx: ctx,
		cancel:  cancel,
		sem:     make(chan struct{}, cfg.Concurrency),
		signal:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		idle:    make(chan chan []*Item, cfg.Concurrency),
		quit:    make(chan struct{}),
	}
	f.queue.init(cfg.Queue)
	f.m = newFnMetrics(deps.Metrics, name, f)
	return f, nil
}

// Name returns the function's name.
func (f *Function) Name() string { return f.name }

// Config returns the function's policy with defaults applied.
func (f *Function) Config() Config { return f.cfg }

// Start starts the worker and the batcher. It returns the worker's start
// error; the Function is ready (Ready) once it returns nil.
func (f *Function) Start(ctx context.Context) error {
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return errors.New("invoker: started twice")
	}
	f.started = true
	f.mu.Unlock()
	if err := f.worker.Start(ctx); err != nil {
		close(f.done) // no loop will run: Close must not wait for one
		return fmt.Errorf("cannot start worker of function %q: %w", f.name, err)
	}
	go f.loop()
	f.accepting.Store(true)
	return nil
}

// Ready reports whether the worker started and the Function is not closing.
func (f *Function) Ready() bool { return f.accepting.Load() }

// Load returns how many events wait in the queue and the queue's capacity,
// for triggers that pause their sources above a high-water mark.
func (f *Function) Load() (depth, capacity int) {
	return int(f.depth.Load()), f.cfg.Queue
}

// Drained returns a channel that is closed once at most mark events wait in
// the queue, or when the Function closes: a trigger refused with
// ErrQueueFull, or paused above its high-water mark, waits on it instead of
// polling Load. The channel is closed at once when the queue is already at
// or below mark. Each call registers one waiter until it fires, so call it
// again only after the previous channel was closed.
func (f *Function) Drained(mark int) <-chan struct{} {
	ch := make(chan struct{})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.queue.n <= mark || f.closing {
		close(ch)
		return ch
	}
	f.drained = append(f.drained, drainWaiter{mark: mark, ch: ch})
	return ch
}

// wakeDrained closes the channels of Drained waiters whose mark the queue
// has fallen to. Called with f.mu held.
func (f *Function) wakeDrained() {
	if len(f.drained) == 0 {
		return
	}
	keep := f.drained[:0]
	for _, w := range f.drained {
		if f.queue.n <= w.mark || f.closing {
			close(w.ch)
			continue
		}
		keep = append(keep, w)
	}
	clear(f.drained[len(keep):])
	f.drained = keep
}

// AddDeadLetters counts n events that a trigger dead-lettered itself (a
// Kafka trigger writes its own dead-letter topic) in the function's
// sluice_dead_letters_total, so that one series counts every dead letter of
// the function. It is safe for concurrent use.
func (f *Function) AddDeadLetters(n int) {
	f.m.deadLetters.Add(n)
}

// Close stops accepting events, dispatches what is queued (retries without
// their backoff), waits for in-flight batches, then closes the worker. When
// ctx ends first, in-flight invocations are cancelled and every event not
// yet settled ends with ErrClosed (and is dead-lettered when asked for).
func (f *Function) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		<-f.done
		return nil
	}
	f.closing = true
	started := f.started
	f.wakeDrained()
	f.mu.Unlock()
	f.accepting.Store(false)
	if !started {
		return nil
	}
	f.wake()
	var err error
	select {
	case <-f.done:
	case <-ctx.Done():
		err = fmt.Errorf("function %q: drain: %w", f.name, ctx.Err())
		f.mu.Lock()
		f.abandon = true
		var left []*Item
		for f.queue.n > 0 {
			left = append(left, f.queue.pop())
		}
		left = append(left, f.retryReady...)
		f.retryReady = nil
		for _, half := range f.halves {
			left = append(left, half...)
		}
		f.halves = nil
		f.depth.Store(0)
		f.wakeDrained()
		f.mu.Unlock()
		for _, it := range left {
			f.finish(it, Outcome{Err: ErrClosed, Attempts: it.attempts}, "abandoned", attempt{start: time.Now()})
		}
		f.cancel()
		f.wake()
		<-f.done
	}
	// The batcher exited once nothing was in flight: every runner is idle.
	close(f.quit)
	f.cancel()
	wctx := ctx
	if ctx.Err() != nil {
		var c context.CancelFunc
		wctx, c = context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
	}
	if cerr := f.worker.Close(wctx); cerr != nil {
		err = errors.Join(err, fmt.Errorf("function %q: close worker: %w", f.name, cerr))
	}
	f.m.unregister()
	return err
}
