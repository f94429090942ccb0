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

	"github.com/sluicehq/sluice/internal/scale"
	"github.com/sluicehq/sluice/internal/subproc"
	"github.com/sluicehq/sluice/plugins"
)

// Pool runs one function as long-lived processes, each serving one batch
// at a time: Config.Instances of them, or between Config.Min and
// Config.Max, started on demand and stopped when idle. Create it with New,
// start it with Start. All methods are safe for concurrent use.
type Pool struct {
	function string
	cfg      Config
	logs     plugins.LogFunc
	command  string   // the command as messages show it
	env      []string // the processes' whole environment
	sp       *scale.Pool[*instance]

	// rssInterval is how often a process's peak memory is read: reading
	// /proc/PID/status costs several microseconds, as much as a whole small
	// batch, so it is sampled rather than read after every batch.
	rssInterval time.Duration

	mu   sync.Mutex
	live map[*instance]struct{} // every process not yet cleaned up

	wg sync.WaitGroup // process goroutines and stops
	// closing is set under mu when Close is about to wait for wg: a stop
	// after that (an Invoke that was running when Close began) runs in its
	// caller, since wg.Add may not race with wg.Wait.
	closing  bool
	restarts atomic.Int64
	probes   atomic.Int64
	// crashes holds back the start of processes while those started before
	// exited between batches without having answered one: a command that
	// answers its start probe and exits would otherwise be restarted in a
	// tight loop.
	crashes subproc.CrashLoop
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
	p := &Pool{
		function:    function,
		cfg:         cfg,
		logs:        logs,
		command:     quoteCommand(cfg.Command),
		env:         environ(cfg.Env, os.Getenv),
		rssInterval: 20 * time.Millisecond,
		live:        make(map[*instance]struct{}),
		// Half the start timeout at most, so that a start waiting it out
		// still has the other half.
		crashes: subproc.CrashLoop{Backoff: subproc.Backoff{Base: 100 * time.Millisecond, Max: min(10*time.Second, cfg.StartTimeout/2)}},
	}
	p.sp = scale.New(scale.Config[*instance]{
		Min:          cfg.Min,
		Max:          cfg.Max,
		Idle:         cfg.Idle,
		StartTimeout: cfg.StartTimeout,
		Start:        p.spawn,
		Stop:         p.stopIdle,
		OnStart: func(init time.Duration, err error) {
			if err == nil && cfg.OnColdStart != nil {
				cfg.OnColdStart(init)
			}
		},
		OnRetry: func(err error, attempt int) {
			p.restarts.Add(1)
			if cfg.OnRestart != nil {
				cfg.OnRestart(fmt.Errorf("%w (attempt %d): %w", ErrStartFailing, attempt, err))
			}
		},
	})
	return p, nil
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

// Restarts returns how many processes were replaced since New (each
// failed start retried counts too), for the metric
// sluice_worker_restarts_total.
func (p *Pool) Restarts() int64 { return p.restarts.Load() }

// Instances returns how many processes are busy, idle and starting, for
// the gauge sluice_instances.
func (p *Pool) Instances() (busy, idle, starting int) { return p.sp.Counts() }

// Start spawns Min instances (Instances for a fixed pool) and waits until
// each answered its first, empty batch. It returns an error naming the
// command when one cannot be started, exits, or does not answer within
// start_timeout (or before ctx ends); the processes already started are
// then stopped and the pool is closed for good.
func (p *Pool) Start(ctx context.Context) error {
	err := p.sp.Start(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, scale.ErrClosed):
		return ErrClosed
	case errors.Is(err, scale.ErrStartedTwice):
		return errors.New("process: pool started twice or after Close")
	}
	p.wg.Wait()
	return fmt.Errorf("process: cannot start command %s of function %q: %w", p.command, p.function, err)
}

// Invoke runs b on an idle process, starting one when none is idle and the
// pool may grow, and waiting for one until ctx ends. It fills b.Results
// and sets b.MaxRSSBytes (and b.InitDuration when the process was started
// for it), or returns an error when the batch failed as a whole: the
// process crashed (*ExitError; a *plugins.FunctionError of type
// Runtime.OutOfMemory when it ran out of memory under an enforced limit),
// broke the protocol (ErrProtocol), or missed ctx's deadline (an error
// wrapping context.DeadlineExceeded; the process and its process group are
// killed). A failed process is replaced in the background. While no
// process is live and starting them fails, Invoke fails at once with
// ErrStartFailing. It returns ErrNotStarted before Start and ErrClosed once
// Close began (or Start failed). A batch whose ctx ended before it was
// sent leaves its process be.
func (p *Pool) Invoke(ctx context.Context, b *plugins.Batch) error {
	if len(b.Results) < len(b.Events) {
		b.Results = make([]plugins.Result, len(b.Events))
	}
	in, init, err := p.acquire(ctx)
	for err == nil && in.hasExited() {
		// It exited between batches and was not retired yet.
		p.release(in, nil)
		in, init, err = p.acquire(ctx)
	}
	if err != nil {
		return err
	}
	b.InitDuration = init
	if err := in.run(ctx, b); err != nil {
		if errors.Is(err, errNotSent) {
			p.release(in, nil)
			return err
		}
		p.release(in, err)
		var ee *ExitError
		if errors.As(err, &ee) && in.outOfMemory(ee.Stderr) {
			return p.oom(b, ee.Status)
		}
		return err
	}
	in.served = true
	p.crashes.Healthy()
	reason := in.afterBatch(b)
	if reason == nil && in.proc.Limited() && in.oomResults(b) {
		reason = errors.New("process reported running out of memory")
		if p.cfg.OnOOM != nil {
			p.cfg.OnOOM()
		}
	}
	p.release(in, reason)
	return nil
}

// oom is the error of a batch whose process ran out of memory, as Lambda
// reports it.
func (p *Pool) oom(b *plugins.Batch, status string) error {
	if p.cfg.OnOOM != nil {
		p.cfg.OnOOM()
	}
	msg := "RequestId: " + b.RequestID() + " Error: Runtime exited with error: " + status
	p.logs(b.RequestID(), []byte(msg))
	p.logs(b.RequestID(), []byte(ErrorTypeOOM))
	return &plugins.FunctionError{Type: ErrorTypeOOM, Message: msg}
}

// ErrorTypeOOM is the error type of an invocation whose process ran out of
// memory, Lambda's.
const ErrorTypeOOM = "Runtime.OutOfMemory"

// acquire takes an idle process.
func (p *Pool) acquire(ctx context.Context) (*instance, time.Duration, error) {
	in, init, err := p.sp.Acquire(ctx)
	if err == nil {
		p.mu.Lock()
		in.state = stateBusy
		p.mu.Unlock()
		return in, init, nil
	}
	var se *scale.StartError
	switch {
	case errors.Is(err, scale.ErrClosed):
		return nil, 0, ErrClosed
	case errors.Is(err, scale.ErrNotStarted):
		return nil, 0, ErrNotStarted
	case errors.As(err, &se):
		return nil, 0, fmt.Errorf("%w for function %q (command %s), retrying with backoff: %w", ErrStartFailing, p.function, p.command, se.Err)
	}
	return nil, 0, fmt.Errorf("process: no idle process of function %q (%s): %w", p.function, p.sp, err)
}

// release returns in after a batch; a non-nil reason retires it and starts
// its replacement.
func (p *Pool) release(in *instance, reason error) {
	// It may have answered, then exited (or met the OOM killer): retire it
	// then, and let the retirement describe the exit once stderr is drained.
	exited := reason == nil && in.hasExited()
	if reason != nil || exited {
		p.mu.Lock()
		in.state = stateRetired
		p.mu.Unlock()
		p.retire(in, reason)
		p.sp.Release(in, false)
		return
	}
	p.mu.Lock()
	in.state = stateIdle
	p.mu.Unlock()
	if p.sp.Release(in, true) {
		p.mu.Lock()
		in.state = stateRetired
		p.mu.Unlock()
		// Close waits for it to exit at EOF, or kills it.
		_ = in.stdin.Close()
	}
}

// retire stops in in the background and reports why it was replaced; a
// nil reason means it exited.
func (p *Pool) retire(in *instance, reason error) {
	p.restarts.Add(1)
	stop := func() {
		in.stop(true)
		if reason == nil {
			reason = in.exitError()
		}
		if p.cfg.OnRestart != nil {
			p.cfg.OnRestart(reason)
		}
	}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		stop()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		stop()
	}()
}

// exitedIdle retires a process that exited between batches.
func (p *Pool) exitedIdle(in *instance) {
	if !p.sp.Remove(in) {
		return // its batch, its start or Close deals with it
	}
	if !in.served {
		p.crashes.Crashed()
	}
	p.mu.Lock()
	in.state = stateRetired
	p.mu.Unlock()
	p.retire(in, nil)
}

// stopIdle stops a process the pool no longer needs: idle for too long.
// Closing its stdin asks it to exit; it is killed if it does not.
func (p *Pool) stopIdle(in *instance) {
	p.mu.Lock()
	in.state = stateRetired
	p.mu.Unlock()
	_ = in.stdin.Close()
	t := time.NewTimer(exitGrace)
	select {
	case <-in.exited:
		t.Stop()
		in.stop(false)
	case <-t.C:
		in.stop(true)
	}
}

// Close stops the pool: it closes every idle process's stdin (a process
// should exit at EOF), does the same for busy ones once their batch is done,
// and waits for them to exit until ctx ends; then it kills what is left,
// process groups included. It returns an error wrapping ctx's error when it
// had to kill. Invoke fails with ErrClosed once Close began; Close is
// idempotent.
func (p *Pool) Close(ctx context.Context) error {
	idle := p.sp.Close()
	p.mu.Lock()
	for _, in := range idle {
		in.state = stateRetired
	}
	p.mu.Unlock()
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
	p.sp.Wait()
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
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
