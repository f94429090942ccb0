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
	// means no retries. Stream triggers that keep order themselves use 1.
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

	mu       sync.Mutex
	queue    fifo      // submitted events, at most cfg.Queue
	ready    []*Item   // retries whose backoff elapsed; already accepted, so not bounded by cfg.Queue
	forms    [][]*Item // halves of bisected batches, dispatched as they are
	timers   int       // retries waiting for their backoff
	inflight int
	started  bool
	closing  bool
	abandon  bool          // Close's context expired: finish everything now
	drained  []drainWaiter // Drained callers, woken when depth falls to their mark
	depth    atomic.Int64
	running  atomic.Int64
	ready1   atomic.Bool
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
	f.ready1.Store(true)
	return nil
}

// Ready reports whether the worker started and the Function is not closing.
func (f *Function) Ready() bool { return f.ready1.Load() }

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
	if f.closing || !f.started || f.queue.n > 0 || len(f.ready) > 0 || len(f.forms) > 0 {
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
	return f.queue.n > 0 || len(f.ready) > 0 || len(f.forms) > 0
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
	if len(batch) == 0 && len(f.forms) > 0 {
		// A bisected half goes out alone and at once: mixing it with other
		// events would defeat the isolation it is for.
		batch = f.forms[0]
		f.forms[0] = nil
		f.forms = f.forms[1:]
		return batch, true, 0
	}
	for len(f.ready) > 0 && len(batch) < maxItems && (len(batch) == 0 || bytes+f.ready[0].size <= maxBytes) {
		it := f.ready[0]
		f.ready[0] = nil
		f.ready = f.ready[1:]
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
				f.settle(it, Outcome{Output: r.Output, Attempts: it.attempts, Duration: dur}, "success", start, dur, b, counted)
			} else {
				f.failItem(it, r.Err, "error", start, dur, b)
			}
		}
	case timedOut || errors.Is(err, context.DeadlineExceeded):
		f.failBatch(items, &TimeoutError{After: f.cfg.Timeout}, "timeout", start, dur, b)
	default:
		f.failBatch(items, &WorkerError{Err: err}, "crash", start, dur, b)
	}
}

// errPending marks the result of an event its worker has not finished: the
// invoker sets it before Invoke and a worker overwrites it once the event
// is done.
var errPending = errors.New("invoker: BUG: no result")

// failBatch settles the events of a batch that failed as a whole. Events
// the worker finished before the batch failed (a Lambda pool's
// invocations that answered, a Go function's events before the deadline)
// get their own results. Of the rest, synchronous events fail with err at
// once, as they are tried only once; the others are bisected or retried.
func (f *Function) failBatch(items []*Item, err error, outcome string, start time.Time, dur time.Duration, b *plugins.Batch) {
	var rest []*Item
	for i, it := range items {
		r := b.Results[i]
		switch {
		case r.Err == errPending && !it.Sync:
			rest = append(rest, it)
		case r.Err == errPending:
			it.attempts++
			f.finish(it, Outcome{Err: err, Attempts: it.attempts, Duration: dur}, outcome, start, dur, b)
		case r.Err == nil:
			it.attempts++
			f.finish(it, Outcome{Output: r.Output, Attempts: it.attempts, Duration: dur}, "success", start, dur, b)
		default:
			it.attempts++
			f.failItem(it, r.Err, "error", start, dur, b)
		}
	}
	if f.shouldBisect(rest) {
		// Logged first: once queued, the halves may run at once.
		f.logBatch(rest, outcome, err, start, dur, b)
		f.bisect(rest)
		return
	}
	for _, it := range rest {
		it.attempts++
		f.failItem(it, err, outcome, start, dur, b)
	}
}

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

// shouldBisect reports whether to split the failed events of a batch, none
// of them synchronous, rather than retry them together.
func (f *Function) shouldBisect(items []*Item) bool {
	if !f.cfg.Retry.Bisect || len(items) < 2 || f.isAbandoning() {
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
	// Keep groups whole: cut at the group boundary nearest the middle.
	cut := len(items) / 2
	f.m.bisects.Inc()
	a := append([]*Item(nil), items[:cut]...)
	b := append([]*Item(nil), items[cut:]...)
	now := time.Now()
	for _, it := range items {
		it.enqueued = now // back in the queue: its wait starts again
	}
	f.mu.Lock()
	f.forms = append(f.forms, a, b)
	f.mu.Unlock()
	f.wake()
}

// failItem retries it after a backoff when its policy allows, or finishes
// it as failed. it.attempts already counts the failed attempt.
func (f *Function) failItem(it *Item, err error, outcome string, start time.Time, dur time.Duration, b *plugins.Batch) {
	attempts := f.cfg.Retry.Attempts
	if it.Attempts > 0 {
		attempts = it.Attempts
	}
	if it.Sync {
		attempts = 1
	}
	now := time.Now()
	expired := now.Sub(it.Since) > f.cfg.Retry.MaxAge
	if it.attempts < attempts && !expired && !f.isAbandoning() {
		f.logItem(it, outcome, err, start, dur, b)
		f.retry(it)
		return
	}
	if expired && it.attempts < attempts {
		err = fmt.Errorf("%w: %w", ErrExpired, err)
	}
	f.finish(it, Outcome{Err: err, Attempts: it.attempts, Duration: dur}, outcome, start, dur, b)
}

// retry puts it back after an exponential backoff with jitter; at shutdown
// at once.
func (f *Function) retry(it *Item) {
	f.m.retries.Inc()
	d := f.cfg.Retry.Delay(it.attempts)
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
		f.ready = append(f.ready, it)
		f.mu.Unlock()
		f.wake()
	})
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

// finish settles it: dead letter when final and asked for, log, Done.
func (f *Function) finish(it *Item, o Outcome, outcome string, start time.Time, dur time.Duration, b *plugins.Batch) {
	f.settle(it, o, outcome, start, dur, b, false)
}

// settle is finish for an event whose invocation was counted already when
// counted is set.
func (f *Function) settle(it *Item, o Outcome, outcome string, start time.Time, dur time.Duration, b *plugins.Batch, counted bool) {
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
	f.logLine(it, outcome, o.Err, start, dur, b)
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

func (f *Function) logBatch(items []*Item, outcome string, err error, start time.Time, dur time.Duration, b *plugins.Batch) {
	for _, it := range items {
		f.logItem(it, outcome, err, start, dur, b)
	}
}

// logItem writes the one line per invocation of an event and counts it.
func (f *Function) logItem(it *Item, outcome string, err error, start time.Time, dur time.Duration, b *plugins.Batch) {
	f.m.invocation(it.Trigger, outcome).Inc()
	f.logLine(it, outcome, err, start, dur, b)
}

// logLine writes the one line per invocation of an event.
func (f *Function) logLine(it *Item, outcome string, err error, start time.Time, dur time.Duration, b *plugins.Batch) {
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

// billedMS rounds a duration up to the next millisecond, as Lambda bills.
func billedMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
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
	f.ready1.Store(false)
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
		left = append(left, f.ready...)
		f.ready = nil
		for _, form := range f.forms {
			left = append(left, form...)
		}
		f.forms = nil
		f.depth.Store(0)
		f.wakeDrained()
		f.mu.Unlock()
		for _, it := range left {
			f.finish(it, Outcome{Err: ErrClosed, Attempts: it.attempts}, "abandoned", time.Now(), 0, nil)
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
