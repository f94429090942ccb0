package lambda

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/internal/scale"
	"github.com/sluicehq/sluice/internal/subproc"
	"github.com/sluicehq/sluice/plugins"
)

// ErrorTypeOOM is the error type of an invocation whose runtime ran out of
// memory under an enforced limit, Lambda's.
const ErrorTypeOOM = "Runtime.OutOfMemory"

// Errors of the Pool.
var (
	// ErrClosed fails invocations after Close began.
	ErrClosed = errors.New("lambda: pool closed")
	// ErrNotStarted fails invocations before Start succeeded.
	ErrNotStarted = errors.New("lambda: pool not started")
)

// Pool runs one function as unmodified AWS Lambda custom runtimes: Instances
// processes, each with its own Runtime API endpoint, each handling one
// invocation at a time. It implements plugins.Worker and is safe for
// concurrent use.
//
// Invoke turns a batch into Lambda invocations: each HTTP request, storage
// notification, schedule tick or direct invocation is one invocation with
// its own Lambda-shaped event; the Kafka records and change events of the
// batch together are one invocation carrying a self-managed Kafka event. The
// invocations of a batch run in parallel on free instances, and all end by
// the batch's deadline.
type Pool struct {
	name      string
	cfg       Config
	logs      plugins.LogFunc
	path      string   // resolved Command[0]
	env       []string // environment without the per-process variables
	arn       string
	arnHeader []string

	sp      *scale.Pool[*proc]
	seq     atomic.Int64      // runtimes started, for their numbers
	crashes subproc.CrashLoop // runtimes in a row that died without serving

	mu      sync.Mutex
	procs   map[*proc]struct{} // every ready runtime not yet cleaned up
	closed  bool
	sockDir string       // the runtimes' Unix sockets, made at the first start
	sockSeq atomic.Int64 // sockets made, for their names

	startOnce sync.Once
	started   atomic.Bool
	closeOnce sync.Once
	closing   chan struct{} // closed when Close begins
	hurry     chan struct{} // closed when Close's context ends: kill, do not wait
	hurryOnce sync.Once
	restarts  atomic.Int64
}

var _ plugins.Worker = (*Pool)(nil)

// New returns a Pool for function running cfg.Command. logs receives every
// line the runtimes write to stdout or stderr, tagged with the request id
// of the invocation in progress on that instance (the envelope id for a
// single-event invocation, plugins.Batch.RequestID for a Kafka invocation;
// lines written between invocations go to the previous one, "" before the
// first), and Lambda-style platform lines ("RequestId: … Error: Runtime
// exited with error: …", "… Task timed out after …"). logs may be nil.
//
// New validates cfg and checks that the command exists and is executable;
// it starts nothing.
func New(function string, cfg Config, logs plugins.LogFunc) (*Pool, error) {
	if function == "" {
		return nil, errors.New("lambda: function name is empty")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("function %q: %w", function, err)
	}
	cfg = cfg.withDefaults()
	cfg.Command = append([]string(nil), cfg.Command...)
	cfg.BootstrapServers = append([]string(nil), cfg.BootstrapServers...)
	dir := cfg.Dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("function %q: %w", function, err)
		}
		dir = wd
	}
	path, err := resolveCommand(cfg.Command[0], dir)
	if err != nil {
		return nil, fmt.Errorf("function %q: command: %w", function, err)
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", function, err)
	}
	p := &Pool{
		name:    function,
		cfg:     cfg,
		logs:    logs,
		path:    path,
		env:     cfg.baseEnv(function, root, os.Getenv),
		arn:     "arn:aws:lambda:" + cfg.Region + ":" + cfg.Account + ":function:" + function,
		procs:   make(map[*proc]struct{}),
		closing: make(chan struct{}),
		crashes: subproc.CrashLoop{Backoff: restartBackoff},
		hurry:   make(chan struct{}),
	}
	p.arnHeader = []string{p.arn}
	p.sp = scale.New(scale.Config[*proc]{
		Min:          cfg.Min,
		Max:          cfg.Max,
		Idle:         cfg.Idle,
		StartTimeout: cfg.InitTimeout + 5*time.Second,
		Start:        p.startProc,
		Stop:         p.stopProc,
		OnStart: func(init time.Duration, err error) {
			if err == nil && cfg.OnColdStart != nil {
				cfg.OnColdStart(init)
			}
		},
	})
	return p, nil
}

// resolveCommand finds the runtime program as exec would, so a missing
// binary is a configuration error rather than a crash loop.
func resolveCommand(name, dir string) (string, error) {
	if !strings.Contains(name, "/") {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", err
		}
		return p, nil
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	fi, err := os.Stat(name)
	if err != nil {
		return "", err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", name)
	}
	return name, nil
}

// Name returns the function's name.
func (p *Pool) Name() string { return p.name }

// ARN returns the function ARN the runtimes see as their invoked function.
func (p *Pool) ARN() string { return p.arn }

// Restarts returns how many times a runtime was replaced since Start.
func (p *Pool) Restarts() int64 { return p.restarts.Load() }

// Start starts every instance and returns once each runtime has polled
// /invocation/next (is ready), or the first failure: a runtime that exits
// first (the error carries its exit status and last output lines), reports
// /init/error (an *InitError), or does not poll within InitTimeout. On
// failure every runtime is stopped. Start may be called once.
func (p *Pool) Start(ctx context.Context) error {
	err := errors.New("lambda: Start called twice")
	p.startOnce.Do(func() { err = p.start(ctx) })
	return err
}

func (p *Pool) start(ctx context.Context) error {
	if err := p.sp.Start(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), stopGrace)
		_ = p.Close(cctx)
		cancel()
		if errors.Is(err, scale.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	p.started.Store(true)
	return nil
}

// Instances returns how many runtimes are busy, idle and starting, for the
// gauge sluice_instances.
func (p *Pool) Instances() (busy, idle, starting int) { return p.sp.Counts() }

// Close stops the runtimes: SIGTERM to each process group, SIGKILL after 2s
// or when ctx ends, whichever is first, then waits for them. Invocations
// still running fail. It returns ctx's error when ctx ended first. Safe to
// call more than once.
func (p *Pool) Close(ctx context.Context) error {
	p.closeOnce.Do(func() { close(p.closing) })
	p.sp.Close()
	p.mu.Lock()
	p.closed = true
	procs := make([]*proc, 0, len(p.procs))
	for pr := range p.procs {
		procs = append(procs, pr)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, pr := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.stopProc(pr)
			}()
		}
		wg.Wait()
		p.sp.Wait()
		p.mu.Lock()
		if p.sockDir != "" {
			os.RemoveAll(p.sockDir)
		}
		p.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		p.hurryOnce.Do(func() { close(p.hurry) })
		<-done
		return fmt.Errorf("lambda: function %q: close: %w", p.name, ctx.Err())
	}
}

// invocation is one Lambda invocation of a batch: one event, or the
// Kafka records of the batch.
type invocation struct {
	id            string
	payload       []byte
	events        []int  // indexes in the batch
	kafka         bool   // a self-managed Kafka event: item ids are topic-partition and offset
	readFailures  bool   // the response is read for batchItemFailures
	deadlineMS    int64  // Lambda-Runtime-Deadline-Ms
	traceID       string // Lambda-Runtime-Trace-Id
	clientContext string // Lambda-Runtime-Client-Context
	delivered     bool   // the runtime took it (guarded by its proc's mu)
	done          chan result
}

// result is the end of one invocation.
type result struct {
	out  []byte // the response body
	err  error  // the function's error (*plugins.FunctionError)
	fail error  // the machinery's: the runtime died, the deadline passed
	rss  int64
	took time.Duration // the invocation's own duration, billed per event
	init time.Duration // the runtime's cold start, when it was started for this invocation
}

// Invoke runs the batch's invocations on free instances and fills
// b.Results. It returns an error, failing the whole batch, when the
// deadline passes (wrapping context.DeadlineExceeded; the runtimes still
// working are killed and restarted), when the pool is closed, or when the
// batch is a single invocation whose runtime died. In a batch of several
// invocations, a runtime that dies fails only its own events, with a
// *plugins.FunctionError of type Runtime.ExitError, as Lambda reports it.
// A response or error reaches the events of its invocation: the response
// body (a batchItemFailures response fails only the items it names), or the
// runtime's error as a *plugins.FunctionError.
func (p *Pool) Invoke(ctx context.Context, b *plugins.Batch) error {
	if !p.started.Load() {
		return ErrNotStarted
	}
	invs := p.plan(ctx, b)
	switch len(invs) {
	case 0:
		return nil
	case 1:
		r := p.run(ctx, invs[0])
		b.MaxRSSBytes, b.InitDuration = r.rss, r.init
		if r.fail != nil {
			return r.fail
		}
		p.settle(b, invs[0], r)
		return nil
	}
	results := make([]result, len(invs))
	var next atomic.Int64
	var wg sync.WaitGroup
	_, maxInstances := p.sp.Limits()
	for range min(len(invs), maxInstances) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(invs) {
					return
				}
				results[i] = p.run(ctx, invs[i])
			}
		}()
	}
	wg.Wait()
	var batchErr error
	for i, r := range results {
		b.MaxRSSBytes = max(b.MaxRSSBytes, r.rss)
		b.InitDuration = max(b.InitDuration, r.init)
		var fe *plugins.FunctionError
		switch {
		case r.fail == nil:
			p.settle(b, invs[i], r)
		case errors.As(r.fail, &fe):
			for _, e := range invs[i].events {
				b.Results[e] = plugins.Result{Err: r.fail}
			}
			billEvents(b, invs[i], r.took)
		case batchErr == nil || errors.Is(r.fail, context.DeadlineExceeded):
			batchErr = r.fail
		}
	}
	return batchErr
}

// plan builds the batch's invocations. An event whose Lambda event cannot
// be built fails alone, in b.Results.
func (p *Pool) plan(ctx context.Context, b *plugins.Batch) []*invocation {
	deadline := b.Deadline
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(p.cfg.Timeout)
	}
	dms := deadline.UnixMilli()
	invs := make([]*invocation, 0, len(b.Events))
	var stream []int
	for i, ev := range b.Events {
		if isStream(ev) {
			stream = append(stream, i)
			continue
		}
		payload, err := p.appendPayload(make([]byte, 0, len(ev.Data)+64), ev)
		if err != nil {
			b.Results[i] = plugins.Result{Err: err}
			continue
		}
		invs = append(invs, &invocation{
			id:            ev.ID,
			payload:       payload,
			events:        []int{i},
			readFailures:  reportsItemFailures(ev),
			deadlineMS:    dms,
			traceID:       xrayTraceID(b.TraceParent(i)),
			clientContext: clientContext(ev),
			done:          make(chan result, 1),
		})
	}
	if len(stream) > 0 {
		evs := make([]*plugins.Event, len(stream))
		keys := make([]string, len(stream))
		size := 128
		for j, i := range stream {
			evs[j] = b.Events[i]
			keys[j] = kafkaKey(evs[j])
			size += 160 + len(keys[j]) + len(evs[j].Data)*4/3
		}
		id := b.RequestID()
		if len(stream) != len(b.Events) {
			id = b.ID
		}
		invs = append(invs, &invocation{
			id:           id,
			payload:      p.appendKafka(make([]byte, 0, size), evs, keys),
			events:       stream,
			kafka:        true,
			readFailures: true,
			deadlineMS:   dms,
			traceID:      xrayTraceID(b.TraceParent(stream[0])),
			done:         make(chan result, 1),
		})
	}
	return invs
}

// run runs one invocation on the next free instance. An invocation the
// runtime never took (it died first) moves to another instance.
func (p *Pool) run(ctx context.Context, inv *invocation) result {
	for {
		pr, init, err := p.acquire(ctx, inv)
		if err != nil {
			return result{fail: err}
		}
		if pr.dead() {
			p.sp.Release(pr, false)
			continue
		}
		began := time.Now()
		r, delivered := pr.invoke(ctx, inv)
		r.took = time.Since(began)
		r.rss = pr.maxRSS()
		if pr.dead() || pr.isKilled() {
			p.sp.Release(pr, false)
		} else if p.sp.Release(pr, true) {
			go p.stopProc(pr)
		}
		if delivered {
			r.init = init
			return r
		}
	}
}

// acquire waits for a free instance, starting one when none is free and
// the pool may grow, until ctx ends or the pool closes.
func (p *Pool) acquire(ctx context.Context, inv *invocation) (*proc, time.Duration, error) {
	pr, init, err := p.sp.Acquire(ctx)
	if err == nil {
		return pr, init, nil
	}
	var se *scale.StartError
	switch {
	case errors.Is(err, scale.ErrClosed):
		return nil, 0, ErrClosed
	case errors.Is(err, scale.ErrNotStarted):
		return nil, 0, ErrNotStarted
	case errors.As(err, &se):
		return nil, 0, fmt.Errorf("lambda: function %q: request %s: no runtime could be started, retrying with backoff: %w", p.name, inv.id, se.Err)
	}
	return nil, 0, fmt.Errorf("lambda: function %q: request %s: no runtime instance was free before the deadline: %w", p.name, inv.id, err)
}

// invoke hands inv to the runtime and waits for its end. delivered is false
// when the runtime died before it took inv.
func (pr *proc) invoke(ctx context.Context, inv *invocation) (r result, delivered bool) {
	p := pr.pool
	pr.deliver(inv)
	select {
	case r = <-inv.done:
		pr.logs.sync(inv.id)
		if pr.sp.Limited() && r.err != nil && memlimit.Looks([]byte(r.err.Error())) {
			// It caught the failed allocation (Python's MemoryError) and
			// reported it: as on Lambda, the sandbox is not reused.
			pr.kill()
			if p.cfg.OnOOM != nil {
				p.cfg.OnOOM()
			}
			msg := "RequestId: " + inv.id + " Error: " + r.err.Error()
			p.platformLog(inv.id, msg)
			p.platformLog(inv.id, ErrorTypeOOM)
			r.err = &plugins.FunctionError{Type: ErrorTypeOOM, Message: msg}
		}
		return r, true
	case <-pr.exited:
		select {
		case r = <-inv.done:
			// It answered, then exited (aws-lambda-go exits after
			// reporting a panic).
			pr.logs.sync(inv.id)
			return r, true
		default:
		}
		pr.mu.Lock()
		// A poll still being served must not take inv now: it may run
		// on another instance next.
		pr.killed = true
		delivered = pr.withdraw(inv)
		pr.mu.Unlock()
		if !delivered {
			return result{}, false
		}
		pr.logs.sync(inv.id)
		msg := "RequestId: " + inv.id + " Error: Runtime exited"
		if err := pr.sp.ExitErr(); err != nil {
			msg += " with error: " + err.Error()
		}
		typ := "Runtime.ExitError"
		if pr.outOfMemory() {
			typ = ErrorTypeOOM
			if p.cfg.OnOOM != nil {
				p.cfg.OnOOM()
			}
		}
		p.platformLog(inv.id, msg)
		p.platformLog(inv.id, typ)
		return result{fail: &plugins.FunctionError{Type: typ, Message: msg}}, true
	case <-ctx.Done():
		pr.kill()
		pr.mu.Lock()
		pr.withdraw(inv)
		pr.mu.Unlock()
		pr.logs.sync(inv.id)
		err := ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			p.platformLog(inv.id, "RequestId: "+inv.id+" Error: Task timed out after "+
				strconv.FormatFloat(p.cfg.Timeout.Seconds(), 'f', 2, 64)+" seconds")
		}
		return result{fail: fmt.Errorf("lambda: function %q: request %s: the runtime did not respond in time and was killed: %w", p.name, inv.id, err)}, true
	}
}

// platformLog writes a line of Sluice's own about a runtime, as Lambda
// writes its platform lines into the function's log stream.
func (p *Pool) platformLog(requestID, line string) {
	if p.logs != nil {
		p.logs(requestID, []byte(line))
	}
}

// itemFailure is the error of an item a function named in its
// batchItemFailures.
var itemFailure = &plugins.FunctionError{
	Type:    "BatchItemFailure",
	Message: "the function reported this item in batchItemFailures",
}

// settle gives the result of an invocation to its events.
func (p *Pool) settle(b *plugins.Batch, inv *invocation, r result) {
	defer billEvents(b, inv, r.took)
	if r.err != nil {
		for _, e := range inv.events {
			b.Results[e] = plugins.Result{Err: r.err}
		}
		return
	}
	out := r.out
	if len(out) == 0 {
		out = nil
	}
	for _, e := range inv.events {
		b.Results[e] = plugins.Result{Output: out}
	}
	if !inv.readFailures {
		return
	}
	ids, present, err := parseItemFailures(out)
	if !present || (err == nil && len(ids) == 0) {
		return
	}
	if err == nil {
		err = p.applyFailures(b, inv, ids)
	}
	if err != nil {
		fe := &plugins.FunctionError{Type: "InvalidBatchItemFailures", Message: err.Error()}
		for _, e := range inv.events {
			b.Results[e] = plugins.Result{Err: fe}
		}
	}
}

// billEvents gives each event of inv its share of the invocation's own
// duration, which the invoker bills: as on Lambda, each invocation is
// billed for itself however many ran in parallel.
func billEvents(b *plugins.Batch, inv *invocation, took time.Duration) {
	for _, e := range inv.events {
		b.Results[e].Duration = took / time.Duration(len(inv.events))
	}
}

// applyFailures fails the items ids names. An id naming no item of the
// invocation fails them all, as Lambda treats an invalid identifier.
func (p *Pool) applyFailures(b *plugins.Batch, inv *invocation, ids []itemID) error {
	failed := make([]int, 0, len(ids))
	for _, id := range ids {
		found := -1
		for _, e := range inv.events {
			ev := b.Events[e]
			if id.id != "" && ev.ID == id.id ||
				id.id == "" && inv.kafka && ev.KafkaOffset == id.offset && kafkaKey(ev) == id.partition {
				found = e
				break
			}
		}
		if found < 0 {
			return fmt.Errorf("%w: %s names no item of the invocation", ErrItemFailures, id)
		}
		failed = append(failed, found)
	}
	for _, e := range failed {
		b.Results[e] = plugins.Result{Err: itemFailure}
	}
	return nil
}
