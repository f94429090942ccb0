package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// Pool runs one function as Config.Instances long-lived processes, each
// serving one batch at a time. Create it with New, start it with Start.
// All methods are safe for concurrent use.
type Pool struct {
	function string
	cfg      Config
	logs     plugins.LogFunc
	command  string   // the command as messages show it
	env      []string // the processes' whole environment

	// rssInterval is how often a process's peak memory is read: reading
	// /proc/PID/status costs several microseconds, as much as a whole small
	// batch, so it is sampled rather than read after every batch.
	rssInterval time.Duration

	closeCtx    context.Context // cancelled by Close: aborts starts in progress
	cancelClose context.CancelFunc

	mu       sync.Mutex
	started  bool
	closed   bool
	idle     []*instance
	live     map[*instance]struct{} // every process not yet cleaned up
	waiters  int                    // Invoke calls waiting for an idle process
	wake     chan struct{}          // closed and replaced when waiters should look again
	failing  int                    // slots whose replacement keeps failing to start
	startErr error                  // the latest start failure

	wg       sync.WaitGroup // process goroutines and restart loops
	restarts atomic.Int64
	probes   atomic.Int64
}

var _ plugins.Worker = (*Pool)(nil)

// New returns a Pool for function that runs cfg.Command; logs receives the
// processes' stderr lines (nil discards them). It validates cfg and returns
// its errors; it starts nothing.
func New(function string, cfg Config, logs plugins.LogFunc) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("function %q: %w", function, err)
	}
	cfg = cfg.withDefaults()
	if logs == nil {
		logs = func(string, []byte) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		function:    function,
		cfg:         cfg,
		logs:        logs,
		command:     quoteCommand(cfg.Command),
		env:         environ(cfg.Env, os.Getenv),
		rssInterval: 20 * time.Millisecond,
		closeCtx:    ctx,
		cancelClose: cancel,
		live:        make(map[*instance]struct{}),
		wake:        make(chan struct{}),
	}, nil
}

// inherited are the variables a process gets from the gateway's environment.
var inherited = []string{"PATH", "HOME", "LANG", "TZ"}

// environ builds a process environment: env plus the inherited variables
// getenv has and env does not set.
func environ(env map[string]string, getenv func(string) string) []string {
	out := make([]string, 0, len(env)+len(inherited))
	for _, k := range inherited {
		if _, set := env[k]; set {
			continue
		}
		if v := getenv(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func quoteCommand(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// Restarts returns how many processes were started to replace others since
// New (each failed start retried counts too), for the metric
// sluice_worker_restarts_total.
func (p *Pool) Restarts() int64 { return p.restarts.Load() }

// Start spawns every instance and waits until each answered its first,
// empty batch. It returns an error naming the command when one cannot be
// started, exits, or does not answer within start_timeout (or before ctx
// ends); the processes already started are then stopped and the pool is
// closed for good.
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.started || p.closed {
		p.mu.Unlock()
		return errors.New("process: pool started twice or after Close")
	}
	p.started = true
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	type started struct {
		in  *instance
		err error
	}
	ch := make(chan started, p.cfg.Instances)
	for range p.cfg.Instances {
		go func() {
			in, err := p.spawn(ctx)
			ch <- started{in, err}
		}()
	}
	var ins []*instance
	var errs []error
	for range p.cfg.Instances {
		s := <-ch
		if s.err != nil {
			errs = append(errs, s.err)
			continue
		}
		ins = append(ins, s.in)
	}
	if len(errs) > 0 {
		for _, in := range ins {
			in.stop(true)
		}
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancelClose()
		p.wg.Wait()
		return fmt.Errorf("process: cannot start command %s of function %q: %w", p.command, p.function, errs[0])
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, in := range ins {
			go in.stop(true)
		}
		return ErrClosed
	}
	for _, in := range ins {
		in.state = stateIdle
		p.idle = append(p.idle, in)
	}
	return nil
}

// Invoke runs b on an idle process, waiting for one until ctx ends. It
// fills b.Results and sets b.MaxRSSBytes, or returns an error when the batch
// failed as a whole: the process crashed (*ExitError), broke the protocol
// (ErrProtocol), or missed ctx's deadline (an error wrapping
// context.DeadlineExceeded; the process and its process group are killed).
// A failed process is replaced in the background. While every instance is
// failing to start, Invoke fails at once with ErrStartFailing. It returns
// ErrNotStarted before Start and ErrClosed once Close began (or Start
// failed). A batch whose ctx ended before it was sent leaves its process
// be.
func (p *Pool) Invoke(ctx context.Context, b *plugins.Batch) error {
	if len(b.Results) < len(b.Events) {
		b.Results = make([]plugins.Result, len(b.Events))
	}
	in, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	if err := in.run(ctx, b); err != nil {
		if errors.Is(err, errNotSent) {
			p.release(in, nil)
		} else {
			p.release(in, err)
		}
		return err
	}
	p.release(in, in.afterBatch(b))
	return nil
}

// acquire takes an idle process.
func (p *Pool) acquire(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	for {
		switch {
		case p.closed:
			p.mu.Unlock()
			return nil, ErrClosed
		case !p.started:
			p.mu.Unlock()
			return nil, ErrNotStarted
		}
		if n := len(p.idle); n > 0 {
			// The most recently used process is the warmest.
			in := p.idle[n-1]
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			in.state = stateBusy
			p.mu.Unlock()
			return in, nil
		}
		if p.failing == p.cfg.Instances {
			err := p.startErr
			p.mu.Unlock()
			return nil, fmt.Errorf("%w for function %q (command %s), retrying with backoff: %w", ErrStartFailing, p.function, p.command, err)
		}
		p.waiters++
		wake := p.wake
		p.mu.Unlock()
		var err error
		select {
		case <-wake:
		case <-ctx.Done():
			err = ctx.Err()
		}
		p.mu.Lock()
		p.waiters--
		if err != nil {
			p.mu.Unlock()
			return nil, fmt.Errorf("process: no idle process of function %q (instances: %d): %w", p.function, p.cfg.Instances, err)
		}
	}
}

// notify wakes Invoke calls waiting in acquire. Called with p.mu held.
func (p *Pool) notify() {
	if p.waiters > 0 {
		close(p.wake)
		p.wake = make(chan struct{})
	}
}

// release returns in after a batch; a non-nil reason retires it and starts
// its replacement.
func (p *Pool) release(in *instance, reason error) {
	// It may have answered, then exited (or met the OOM killer): retire it
	// then, and let replace describe the exit once stderr is drained.
	exited := reason == nil && in.hasExited()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		in.state = stateRetired
		// Close waits for it to exit at EOF, or kills it.
		_ = in.stdin.Close()
	case reason != nil || exited:
		p.retire(in, reason)
	default:
		in.state = stateIdle
		p.idle = append(p.idle, in)
		p.notify()
	}
}

// retire marks in as done with and starts a replacement; a nil reason
// means it exited. Called with p.mu held.
func (p *Pool) retire(in *instance, reason error) {
	in.state = stateRetired
	if p.closed {
		return
	}
	p.restarts.Add(1)
	p.wg.Add(1)
	go p.replace(in, reason)
}

// exitedIdle retires a process that exited between batches.
func (p *Pool) exitedIdle(in *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in.state != stateIdle {
		return // its batch, its start or Close deals with it
	}
	for i, x := range p.idle {
		if x == in {
			last := len(p.idle) - 1
			p.idle[i] = p.idle[last]
			p.idle[last] = nil
			p.idle = p.idle[:last]
			break
		}
	}
	p.retire(in, nil)
}

// replace stops old and starts a process in its place, retrying with
// exponential backoff while the new one fails to start.
func (p *Pool) replace(old *instance, reason error) {
	defer p.wg.Done()
	old.stop(true)
	if reason == nil {
		reason = old.exitError()
	}
	if p.cfg.OnRestart != nil {
		p.cfg.OnRestart(reason)
	}
	failures := 0
	for {
		ctx, cancel := context.WithTimeout(p.closeCtx, p.cfg.StartTimeout)
		in, err := p.spawn(ctx)
		cancel()
		p.mu.Lock()
		if err == nil {
			if failures > 0 {
				p.failing--
			}
			if p.closed {
				p.mu.Unlock()
				in.stop(true)
				return
			}
			in.state = stateIdle
			p.idle = append(p.idle, in)
			p.notify()
			p.mu.Unlock()
			return
		}
		if failures == 0 {
			p.failing++
		}
		failures++
		p.startErr = err
		p.notify() // waiters fail fast once every slot is failing
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return
		}
		t := time.NewTimer(backoff(failures))
		select {
		case <-t.C:
		case <-p.closeCtx.Done():
			t.Stop()
			return
		}
		p.restarts.Add(1)
		if p.cfg.OnRestart != nil {
			p.cfg.OnRestart(fmt.Errorf("%w (attempt %d): %w", ErrStartFailing, failures, err))
		}
	}
}

// backoff is the wait before the n-th retry of a failed start: 100ms
// doubling up to 30s.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n-1, 9)
	return min(d, 30*time.Second)
}

// Close stops the pool: it closes every idle process's stdin (a process
// should exit at EOF), does the same for busy ones once their batch is done,
// and waits for them to exit until ctx ends; then it kills what is left,
// process groups included. It returns an error wrapping ctx's error when it
// had to kill. Invoke fails with ErrClosed once Close began; Close is
// idempotent.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	close(p.wake) // waiters see closed
	p.wake = make(chan struct{})
	idle := p.idle
	p.idle = nil
	for _, in := range idle {
		in.state = stateRetired
	}
	p.mu.Unlock()
	p.cancelClose()
	for _, in := range idle {
		_ = in.stdin.Close()
	}

	var err error
	for _, in := range p.liveInstances() {
		select {
		case <-in.exited:
		case <-ctx.Done():
		}
	}
	killed := 0
	for _, in := range p.liveInstances() {
		select {
		case <-in.exited:
		default:
			killed++
		}
		in.stop(true) // also kills what the process left behind in its group
	}
	if killed > 0 {
		err = fmt.Errorf("process: function %q: killed %d processes that had not exited: %w", p.function, killed, ctx.Err())
	}
	p.wg.Wait()
	return err
}

func (p *Pool) liveInstances() []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	ins := make([]*instance, 0, len(p.live))
	for in := range p.live {
		ins = append(ins, in)
	}
	return ins
}
