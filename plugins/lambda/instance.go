package lambda

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/subproc"
	"github.com/sluicehq/sluice/plugins"
)

// proc is one runtime process and the Runtime API server it talks to. Each
// process gets its own listener, so a request from a killed predecessor can
// never reach its successor's invocation.
type proc struct {
	pool *Pool
	idx  int // its number in the pool, for platform lines
	cmd  *exec.Cmd
	sp   *subproc.Proc
	srv  *apiServer
	addr string
	logs *logPipe

	polled   chan struct{} // closed at the first poll of /invocation/next
	pollOnce sync.Once
	exited   <-chan struct{} // sp.Exited(): closed once the process has exited
	done     chan struct{}   // closed once it exited and was cleaned up
	stopping atomic.Bool     // stopped by the pool (idle, closing), not lost

	mu      sync.Mutex
	cur     *invocation // the invocation in progress
	pending *invocation // handed to the runtime before it polled
	poll    *apiConn    // the connection whose poll of /invocation/next waits
	last    string      // id of the last completed invocation
	killed  bool
	served  int // invocations completed
	initErr *plugins.FunctionError
}

// spawn starts a runtime process with its own Runtime API endpoint.
func (p *Pool) spawn() (*proc, error) {
	ln, err := p.listenAPI()
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the Runtime API: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("cannot create the log pipe: %w", err)
	}
	pr := &proc{
		pool:   p,
		idx:    int(p.seq.Add(1)) - 1,
		done:   make(chan struct{}),
		addr:   ln.Addr().String(),
		polled: make(chan struct{}),
	}
	cmd := exec.Command(p.path, p.cfg.Command[1:]...)
	cmd.Dir = p.cfg.Dir
	cmd.Env = append(p.env[:len(p.env):len(p.env)],
		"AWS_LAMBDA_RUNTIME_API="+pr.addr,
		"AWS_LAMBDA_LOG_STREAM_NAME="+logStream())
	if ln.path != "" {
		cmd.Env = append(cmd.Env, SocketEnv+"="+ln.path)
	}
	cmd.Stdout = w
	cmd.Stderr = w
	pr.cmd = cmd
	// Its own process group, so a kill takes whatever the runtime started
	// along with it.
	sp, err := subproc.Start(cmd, subproc.Options{Limiter: p.cfg.Limit, Memory: p.cfg.Memory})
	if err != nil {
		ln.Close()
		r.Close()
		w.Close()
		return nil, fmt.Errorf("cannot start %s: %w", p.path, err)
	}
	pr.sp, pr.exited = sp, sp.Exited()
	w.Close()
	if pr.logs, err = newLogPipe(r, p.logs, sp.Limited()); err != nil {
		pr.kill()
		<-pr.exited
		r.Close()
		ln.Close()
		return nil, fmt.Errorf("cannot read the runtime's output: %w", err)
	}
	pr.srv = newAPIServer(pr, ln)
	go pr.srv.serve()
	return pr, nil
}

// logStream is a Lambda-style log stream name: date/[$LATEST]random.
func logStream() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + hex.EncodeToString(b[:])
}

// kill kills the runtime's process group at once. Safe to call repeatedly
// and after exit.
func (pr *proc) kill() {
	pr.mu.Lock()
	pr.killed = true
	pr.mu.Unlock()
	pr.sp.Kill()
}

// terminate asks the runtime to stop (SIGTERM to its group) and kills it
// when it has not exited after grace or when stop closes.
func (pr *proc) terminate(grace time.Duration, stop <-chan struct{}) {
	pr.mu.Lock()
	pr.killed = true
	pr.mu.Unlock()
	pr.sp.Terminate(grace, stop)
}

// cleanup releases what the exited process used: its server and its log
// pipe, after reading the pipe to the end.
func (pr *proc) cleanup() {
	_ = pr.srv.Close()
	pr.logs.close()
}

// dead reports whether the process has exited.
func (pr *proc) dead() bool { return pr.sp.HasExited() }

// exitReason describes why a process ended before or between invocations.
func (pr *proc) exitReason() error {
	pr.mu.Lock()
	ie := pr.initErr
	pr.mu.Unlock()
	if ie != nil {
		return &InitError{Err: ie}
	}
	msg := "Runtime exited"
	if err := pr.sp.ExitErr(); err != nil {
		msg = "Runtime exited with error: " + err.Error()
	}
	if lines := pr.logs.lastLines(); len(lines) > 0 {
		msg += "; last output: " + strings.Join(lines, " | ")
	}
	return errors.New(msg)
}

// maxRSS returns the process's peak resident memory, read from /proc at
// most once a second: the read costs more than a fast invocation.
func (pr *proc) maxRSS() int64 { return pr.sp.PeakRSS(time.Second) }

// InitError is the error of a runtime that reported an init failure to
// /runtime/init/error.
type InitError struct {
	Err *plugins.FunctionError
}

func (e *InitError) Error() string { return "runtime init failed: " + e.Err.Error() }

// Unwrap returns the runtime's report.
func (e *InitError) Unwrap() error { return e.Err }

// restartBackoff is the crash loop's: a runtime that dies without having
// completed an invocation delays the pool's next start by a backoff that
// doubles up to 10s, so a broken binary does not spin; one that served is
// replaced at once, as Lambda starts a fresh sandbox for the next event.
var restartBackoff = subproc.Backoff{Base: 100 * time.Millisecond, Max: 10 * time.Second}

// stopGrace is how long a runtime asked to stop (SIGTERM) has before it is
// killed.
const stopGrace = 2 * time.Second

// startProc starts a runtime and returns it once it polled for work, or
// why it did not: it exited first (its exit status and last output lines),
// reported /init/error (an *InitError), or did not poll within
// InitTimeout.
func (p *Pool) startProc(ctx context.Context) (*proc, error) {
	switch err := p.crashes.Wait(ctx, p.closing); {
	case errors.Is(err, subproc.ErrStopped):
		return nil, ErrClosed
	case err != nil:
		return nil, fmt.Errorf("lambda: function %q: start: %w", p.name, err)
	}
	pr, err := p.spawn()
	if err != nil {
		return nil, fmt.Errorf("lambda: function %q: %w", p.name, err)
	}
	t := time.NewTimer(p.cfg.InitTimeout)
	defer t.Stop()
	var reason error
	select {
	case <-pr.polled:
		pr.logs.ready()
		p.mu.Lock()
		closed := p.closed
		if !closed {
			p.procs[pr] = struct{}{}
		}
		p.mu.Unlock()
		if closed {
			p.finish(pr, true)
			return nil, ErrClosed
		}
		go p.watch(pr)
		return pr, nil
	case <-pr.exited:
		pr.logs.flush() // its last words are in the pipe, for the reason
		reason = pr.exitReason()
	case <-t.C:
		pr.kill()
		<-pr.exited
		pr.logs.flush()
		reason = fmt.Errorf("runtime did not poll for an invocation within %s", p.cfg.InitTimeout)
		if lines := pr.logs.lastLines(); len(lines) > 0 {
			reason = fmt.Errorf("%w; last output: %s", reason, strings.Join(lines, " | "))
		}
	case <-ctx.Done():
		reason = fmt.Errorf("start: %w", ctx.Err())
	case <-p.closing:
		reason = ErrClosed
	}
	p.finish(pr, true)
	p.crashes.Crashed()
	return nil, fmt.Errorf("lambda: function %q instance %d: %w", p.name, pr.idx, reason)
}

// finish stops pr when kill is set, waits for its exit and releases what it
// used.
func (p *Pool) finish(pr *proc, kill bool) {
	if kill {
		pr.kill()
	}
	<-pr.exited
	pr.cleanup()
	close(pr.done)
}

// watch follows a ready runtime to its exit: one the pool did not stop is
// counted as a restart and taken out of the idle instances.
func (p *Pool) watch(pr *proc) {
	<-pr.exited
	pr.logs.flush()
	if !pr.stopping.Load() {
		reason := pr.exitReason()
		pr.mu.Lock()
		served := pr.served > 0
		pr.mu.Unlock()
		if served {
			p.crashes.Healthy()
		} else {
			p.crashes.Crashed()
		}
		p.restarts.Add(1)
		if p.cfg.OnRestart != nil {
			p.cfg.OnRestart(pr.idx, reason)
		}
		p.platformLog("", fmt.Sprintf("Instance %d: %v; restarting", pr.idx, reason))
		p.sp.Remove(pr)
	}
	pr.cleanup()
	p.mu.Lock()
	delete(p.procs, pr)
	p.mu.Unlock()
	close(pr.done)
}

// stopProc stops a runtime the pool no longer needs (idle for too long,
// or the pool closes): SIGTERM, SIGKILL after stopGrace or on hurry.
func (p *Pool) stopProc(pr *proc) {
	pr.stopping.Store(true)
	pr.terminate(stopGrace, p.hurry)
	<-pr.done
}

// outOfMemory reports whether the runtime ran out of memory under an
// enforced limit: the kernel killed it, it said an allocation failed, or
// it failed with its peak memory at the limit.
func (pr *proc) outOfMemory() bool {
	return pr.sp.Limited() && (pr.sp.OOMKilled() || pr.logs.oom.Load() || pr.sp.NearLimit(pr.pool.cfg.Memory))
}

// isKilled reports whether the runtime was killed or is exiting.
func (pr *proc) isKilled() bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.killed
}
