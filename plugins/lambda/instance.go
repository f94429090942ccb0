package lambda

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// instance is one slot of the pool: it runs one runtime process at a time
// (a proc) and replaces it when it dies.
type instance struct {
	pool *Pool
	idx  int

	mu     sync.Mutex
	proc   *proc // the current process; nil while none runs
	ready  bool  // proc polled for work and has not died
	busy   bool  // an invocation holds the instance
	queued bool  // the instance is in pool.free
}

// proc is one runtime process and the Runtime API server it talks to. Each
// process gets its own listener, so a request from a killed predecessor can
// never reach its successor's invocation.
type proc struct {
	pool *Pool
	inst *instance
	cmd  *exec.Cmd
	srv  *http.Server
	addr string
	logs *logPipe

	work     chan *invocation // the invocation handed to the runtime; capacity 1
	polled   chan struct{}    // closed at the first poll of /invocation/next
	pollOnce sync.Once
	exited   chan struct{} // closed once the process has exited
	exitErr  error         // why it exited; set before exited is closed

	rss       atomic.Int64 // peak resident memory, sampled
	rssSample atomic.Int64 // unix nanos of the last sample

	mu      sync.Mutex
	cur     *invocation // the invocation in progress
	last    string      // id of the last completed invocation
	killed  bool
	served  int // invocations completed
	initErr *plugins.FunctionError
}

// spawn starts a runtime process with its own Runtime API endpoint.
func (in *instance) spawn() (*proc, error) {
	p := in.pool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
		inst:   in,
		addr:   ln.Addr().String(),
		work:   make(chan *invocation, 1),
		polled: make(chan struct{}),
		exited: make(chan struct{}),
	}
	cmd := exec.Command(p.path, p.cfg.Command[1:]...)
	cmd.Dir = p.cfg.Dir
	cmd.Env = append(p.env[:len(p.env):len(p.env)],
		"AWS_LAMBDA_RUNTIME_API="+pr.addr,
		"AWS_LAMBDA_LOG_STREAM_NAME="+logStream())
	cmd.Stdout = w
	cmd.Stderr = w
	// Its own process group, so a kill takes whatever the runtime started
	// along with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr.cmd = cmd
	if err := cmd.Start(); err != nil {
		ln.Close()
		r.Close()
		w.Close()
		return nil, fmt.Errorf("cannot start %s: %w", p.path, err)
	}
	w.Close()
	if pr.logs, err = newLogPipe(r, p.logs); err != nil {
		pr.kill()
		_ = cmd.Wait()
		r.Close()
		ln.Close()
		return nil, fmt.Errorf("cannot read the runtime's output: %w", err)
	}
	pr.srv = &http.Server{
		Handler:  pr,
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = pr.srv.Serve(ln) }()
	go func() {
		err := cmd.Wait()
		// Whatever the runtime left behind in its group goes with it, so
		// nothing holds the log pipe open.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		pr.exitErr = err
		close(pr.exited)
	}()
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
	if pr.cmd.Process != nil {
		_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// terminate asks the runtime to stop (SIGTERM to its group) and kills it
// when it has not exited after grace or when stop closes.
func (pr *proc) terminate(grace time.Duration, stop <-chan struct{}) {
	pr.mu.Lock()
	pr.killed = true
	pr.mu.Unlock()
	_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-pr.exited:
		return
	case <-t.C:
	case <-stop:
	}
	pr.kill()
	<-pr.exited
}

// cleanup releases what the exited process used: its server and its log
// pipe, after reading the pipe to the end.
func (pr *proc) cleanup() {
	_ = pr.srv.Close()
	pr.logs.close()
}

// dead reports whether the process has exited.
func (pr *proc) dead() bool {
	select {
	case <-pr.exited:
		return true
	default:
		return false
	}
}

// exitReason describes why a process ended before or between invocations.
func (pr *proc) exitReason() error {
	pr.mu.Lock()
	ie := pr.initErr
	pr.mu.Unlock()
	if ie != nil {
		return &InitError{Err: ie}
	}
	msg := "Runtime exited"
	if pr.exitErr != nil {
		msg = "Runtime exited with error: " + pr.exitErr.Error()
	}
	if lines := pr.logs.lastLines(); len(lines) > 0 {
		msg += "; last output: " + strings.Join(lines, " | ")
	}
	return errors.New(msg)
}

// maxRSS returns the process's peak resident memory, read from /proc at
// most once a second: the read costs more than a fast invocation.
func (pr *proc) maxRSS() int64 {
	now := time.Now().UnixNano()
	last := pr.rssSample.Load()
	if now-last < int64(time.Second) || !pr.rssSample.CompareAndSwap(last, now) {
		return pr.rss.Load()
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pr.cmd.Process.Pid) + "/status")
	if err != nil {
		return pr.rss.Load()
	}
	s := string(b)
	if i := strings.Index(s, "VmHWM:"); i >= 0 {
		f := strings.Fields(s[i+len("VmHWM:"):])
		if len(f) >= 2 && f[1] == "kB" {
			if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				pr.rss.Store(kb << 10)
			}
		}
	}
	return pr.rss.Load()
}

// InitError is the error of a runtime that reported an init failure to
// /runtime/init/error.
type InitError struct {
	Err *plugins.FunctionError
}

func (e *InitError) Error() string { return "runtime init failed: " + e.Err.Error() }

// Unwrap returns the runtime's report.
func (e *InitError) Unwrap() error { return e.Err }

// Restart backoff: a runtime that dies without having completed an
// invocation is restarted after a delay that doubles up to maxBackoff, so a
// broken binary does not spin; one that served is restarted at once, as
// Lambda starts a fresh sandbox for the next event.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
	stopGrace  = 2 * time.Second
)

// run supervises the instance: start a runtime, wait for its first poll,
// offer it to invocations, replace it when it dies. The first process's
// fate goes to first; if it fails, run returns without restarting.
func (in *instance) run(first chan<- error) {
	p := in.pool
	defer p.wg.Done()
	backoff := time.Duration(0)
	for gen := 0; ; gen++ {
		var reason error
		served := false
		pr, err := in.spawn()
		if err != nil {
			reason = err
		} else {
			in.mu.Lock()
			in.proc = pr
			in.mu.Unlock()
			reason = in.watch(pr, gen, first)
			if reason == nil { // the pool is closing
				return
			}
			pr.mu.Lock()
			served = pr.served > 0
			pr.mu.Unlock()
		}
		if gen == 0 && first != nil && !in.wasReady(pr) {
			first <- fmt.Errorf("lambda: function %q instance %d: %w", p.name, in.idx, reason)
			return
		}
		p.restarts.Add(1)
		if p.cfg.OnRestart != nil {
			p.cfg.OnRestart(in.idx, reason)
		}
		if served {
			backoff = 0
		} else {
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
		}
		p.platformLog("", fmt.Sprintf("Instance %d: %v; restarting in %s", in.idx, reason, backoff))
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-p.closing:
				t.Stop()
				return
			}
		}
		select {
		case <-p.closing:
			return
		default:
		}
	}
}

func (in *instance) wasReady(pr *proc) bool {
	if pr == nil {
		return false
	}
	select {
	case <-pr.polled:
		return true
	default:
		return false
	}
}

// watch follows one process from start to exit and returns why it ended,
// or nil when the pool closed.
func (in *instance) watch(pr *proc, gen int, first chan<- error) error {
	p := in.pool
	t := time.NewTimer(p.cfg.InitTimeout)
	var reason error
	select {
	case <-pr.polled:
		t.Stop()
		pr.logs.ready()
		in.markReady(pr)
		if gen == 0 && first != nil {
			first <- nil
		}
	case <-pr.exited:
		t.Stop()
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
	case <-p.closing:
		t.Stop()
		in.stop(pr)
		return nil
	}
	if reason == nil {
		select {
		case <-pr.exited:
			pr.logs.flush()
			reason = pr.exitReason()
		case <-p.closing:
			in.stop(pr)
			return nil
		}
	}
	in.markDead(pr)
	pr.cleanup()
	return reason
}

func (in *instance) stop(pr *proc) {
	in.markDead(pr)
	pr.terminate(stopGrace, in.pool.hurry)
	pr.cleanup()
}

// markReady offers the instance to invocations once its process polled.
func (in *instance) markReady(pr *proc) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.proc != pr || pr.dead() {
		return
	}
	in.ready = true
	in.offerLocked()
}

func (in *instance) markDead(pr *proc) {
	in.mu.Lock()
	if in.proc == pr {
		in.ready = false
	}
	in.mu.Unlock()
}

// offerLocked puts the instance in the free list unless it is there, busy
// or not ready. There is at most one entry per instance, so the send never
// blocks.
func (in *instance) offerLocked() {
	if in.ready && !in.busy && !in.queued {
		in.queued = true
		in.pool.free <- in
	}
}

// claim takes the instance's process for one invocation after it was
// received from the free list; nil when it died meanwhile.
func (in *instance) claim() *proc {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.queued = false
	if !in.ready || in.busy || in.proc == nil || in.proc.dead() {
		return nil
	}
	in.busy = true
	return in.proc
}

// release returns the instance after an invocation.
func (in *instance) release() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.busy = false
	in.offerLocked()
}
