// Package subproc starts and supervises the long-lived subprocesses of the
// process and Lambda workers (plugins/process, plugins/lambda):
//
//   - Start runs a command in a process group of its own, under the
//     function's memory limit (internal/memlimit), and reaps it; once the
//     process exited, and before it is reaped (so the group's id cannot
//     have been reused), its whole group is killed: nothing it started
//     outlives it, short of a descendant that left the group.
//   - Kill and Terminate end the group: SIGKILL at once, or SIGTERM then
//     SIGKILL after a grace.
//   - Tail keeps the last lines a process wrote, for the message of its
//     failure; reading them is the worker's (the process protocol keeps
//     stdout for itself, a Lambda runtime's lines are tagged with the
//     invocation in progress).
//   - PeakRSS samples the process's peak resident memory (VmHWM) from
//     /proc/PID/status, and NearLimit tells a failure with that peak at the
//     memory limit; ReadMemory and ParseStatus read any process's.
//   - Backoff and CrashLoop are the restart delays of an instance that keeps
//     failing: capped exponential, reset after a healthy run.
//
// The caller owns the command's standard streams and what it says on them.
package subproc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/internal/memlimit"
)

// Options are how Start runs a command.
type Options struct {
	// Limiter enforces Memory; nil applies no limit.
	Limiter *memlimit.Limiter
	// Memory is the limit in bytes; 0 or less applies none.
	Memory int64
}

// Proc is one started process. Its methods are safe for concurrent use.
type Proc struct {
	cmd   *exec.Cmd
	pid   int
	guard *memlimit.Guard

	exited    chan struct{} // closed once the process was reaped and its group killed
	err       error         // Wait's error; set before exited is closed
	oomKilled bool          // set before exited is closed
	exitPeak  int64         // peak RSS the kernel reported at the reap; set before exited is closed

	mu     sync.Mutex // orders signals with the reap
	reaped bool       // signals are no-ops: the group's id may be someone else's

	rssMu  sync.Mutex // guards status, buf, rssAt
	status *os.File   // /proc/PID/status, open from the start; nil once reaped or where there is none
	buf    []byte
	rssAt  time.Time
	peak   atomic.Int64
}

// Start starts cmd (not started yet, its standard streams set) in a new
// process group under o's memory limit, and reaps it in the background.
// On error nothing is left running.
func Start(cmd *exec.Cmd, o Options) (*Proc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group, so a kill takes whatever it spawned too.
	cmd.SysProcAttr.Setpgid = true
	guard, err := o.Limiter.Apply(cmd, o.Memory)
	if err != nil {
		return nil, err
	}
	err = cmd.Start()
	guard.Started()
	if err != nil {
		guard.Release()
		return nil, err
	}
	p := &Proc{cmd: cmd, pid: cmd.Process.Pid, guard: guard, exited: make(chan struct{})}
	p.status, _ = os.Open("/proc/" + strconv.Itoa(p.pid) + "/status")
	go p.reap()
	return p, nil
}

func (p *Proc) reap() {
	// Wait for the exit without reaping: while the process is a zombie its
	// pid, which is its group's id, stays taken, so the kill of the group
	// cannot reach anyone else's.
	for {
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
			break
		}
	}
	// Whatever the process left behind in its group goes with it.
	p.signal(syscall.SIGKILL)
	err := p.cmd.Wait()
	// Reaped: once the group is empty its id may be reused, so no signal
	// is sent to it any more.
	p.mu.Lock()
	p.reaped = true
	p.mu.Unlock()
	p.rssMu.Lock()
	if p.status != nil {
		_ = p.status.Close()
		p.status = nil
	}
	p.rssMu.Unlock()
	p.err = err
	if ps := p.cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok && ru != nil {
			p.exitPeak = ru.Maxrss << 10 // kB on Linux
		}
	}
	p.oomKilled = p.guard.OOMKilled()
	p.guard.Release()
	close(p.exited)
}

// PID returns the process id, which is also its process group's id.
func (p *Proc) PID() int { return p.pid }

// Exited is closed once the process was reaped and its group killed.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// HasExited reports whether Exited is closed.
func (p *Proc) HasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// ExitErr is exec.Cmd.Wait's error: nil for a zero exit status, an
// *exec.ExitError otherwise. Valid once Exited is closed.
func (p *Proc) ExitErr() error { return p.err }

// ExitStatus describes how the process ended ("exit status 1", "signal:
// killed"). Valid once Exited is closed.
func (p *Proc) ExitStatus() string {
	if ps := p.cmd.ProcessState; ps != nil {
		return ps.String()
	}
	if p.err != nil {
		return p.err.Error()
	}
	return "exited"
}

// Limited reports whether a memory limit is enforced on the process.
func (p *Proc) Limited() bool { return p.guard != nil }

// OOMKilled reports whether the kernel killed the process for going over
// its limit (cgroup v2; false with RLIMIT_DATA). Valid once Exited is
// closed.
func (p *Proc) OOMKilled() bool { return p.oomKilled }

// signal sends sig to the process group unless it was reaped.
func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	if !p.reaped {
		_ = syscall.Kill(-p.pid, sig)
	}
	p.mu.Unlock()
}

// Kill kills the process group at once. Safe to call repeatedly and after
// the process exited.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL) }

// Terminate asks the process group to stop (SIGTERM) and kills it when the
// process has not exited after grace or when hurry closes, then waits for
// the reap.
func (p *Proc) Terminate(grace time.Duration, hurry <-chan struct{}) {
	p.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return
	case <-t.C:
	case <-hurry:
	}
	p.Kill()
	<-p.exited
}

// PeakRSS returns the process's peak resident memory in bytes (VmHWM),
// reading /proc/PID/status when the last read is older than every (0: at
// every call), else the last value read; 0 before one could be read. A
// caller that finds a read in progress gets the last value. It does not
// allocate.
func (p *Proc) PeakRSS(every time.Duration) int64 {
	if !p.rssMu.TryLock() {
		return p.peak.Load()
	}
	defer p.rssMu.Unlock()
	now := time.Now()
	if p.status == nil || every > 0 && now.Sub(p.rssAt) < every {
		return p.peak.Load()
	}
	p.rssAt = now
	if p.buf == nil {
		p.buf = make([]byte, 4096)
	}
	n, _ := p.status.ReadAt(p.buf, 0) // io.EOF with the whole file
	if _, peak, ok := ParseStatus(p.buf[:n]); ok {
		p.peak.Store(peak)
	}
	return p.peak.Load()
}

// ExitPeakRSS is the peak resident memory the kernel reported when the
// process was reaped (its own and that of the descendants it waited for),
// in bytes; 0 where it reports none. Valid once Exited is closed.
func (p *Proc) ExitPeakRSS() int64 { return p.exitPeak }

// NearLimit reports whether the process, under an enforced limit of limit
// bytes, failed (a non-zero exit status or a signal) after its resident
// memory peaked within an eighth (at most 16 MiB) of the limit: an
// allocation past the limit fails, and a process that dies with resident
// memory that high most likely died of it, whatever its last words were.
// Valid once Exited is closed.
func (p *Proc) NearLimit(limit int64) bool {
	if limit <= 0 || !p.Limited() || p.err == nil {
		return false
	}
	peak := max(p.exitPeak, p.peak.Load())
	return peak >= limit-min(limit/8, 16<<20)
}

// ReadMemory returns the current and peak resident memory (VmRSS, VmHWM)
// of process pid in bytes, from /proc; a value missing there is 0.
func ReadMemory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	rss, peak, _ = ParseStatus(b)
	return rss, peak, nil
}

// ParseStatus returns VmRSS and VmHWM of a /proc/PID/status text in bytes;
// ok reports whether VmHWM was there (a zombie's status has neither). It
// does not allocate.
func ParseStatus(status []byte) (rss, peak int64, ok bool) {
	for len(status) > 0 {
		var line []byte
		line, status = cutByte(status, '\n')
		key, val := cutByte(line, ':')
		switch string(key) {
		case "VmRSS":
			if v, vok := parseKB(val); vok {
				rss = v
			}
		case "VmHWM":
			if v, vok := parseKB(val); vok {
				peak, ok = v, true
			}
		}
	}
	return rss, peak, ok
}

func cutByte(b []byte, c byte) (before, after []byte) {
	for i, x := range b {
		if x == c {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

// maxKB bounds a value in kB: 1 PiB, far over any process's memory, and
// far from overflowing once in bytes.
const maxKB = 1 << 40

// parseKB parses " 1234 kB" into bytes.
func parseKB(b []byte) (int64, bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	var v int64
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + int64(b[i]-'0')
		if v > maxKB {
			return 0, false
		}
	}
	if i == start || string(b[i:]) != " kB" {
		return 0, false
	}
	return v << 10, true
}

// Backoff is a capped exponential delay: Base before the first retry,
// doubling with each failure, never more than Max.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the wait after n failures in a row: 0 for none, Base for one,
// then doubling up to Max.
func (b Backoff) Delay(n int) time.Duration {
	if n <= 0 || b.Base <= 0 {
		return 0
	}
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// ErrStopped is CrashLoop.Wait's error when its stop channel closed.
var ErrStopped = errors.New("subproc: stopped")

// CrashLoop holds back the restarts of an instance that keeps dying before
// it did any work: each such death in a row lengthens the wait before the
// next start by Backoff, and a healthy run resets it. Safe for concurrent
// use.
type CrashLoop struct {
	Backoff Backoff
	n       atomic.Int64
}

// Crashed counts an instance that died before a healthy run.
func (c *CrashLoop) Crashed() { c.n.Add(1) }

// Healthy resets the count: an instance did its work. Called after every
// request, it only reads while there is nothing to reset.
func (c *CrashLoop) Healthy() {
	if c.n.Load() != 0 {
		c.n.Store(0)
	}
}

// Delay is the wait before the next start.
func (c *CrashLoop) Delay() time.Duration {
	return c.Backoff.Delay(int(min(c.n.Load(), 1<<20)))
}

// Wait waits out Delay. It returns ctx's error when ctx ends first and
// ErrStopped when stop closes first.
func (c *CrashLoop) Wait(ctx context.Context, stop <-chan struct{}) error {
	d := c.Delay()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return ErrStopped
	}
}
