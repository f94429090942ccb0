package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/subproc"
)

// Proc is a server process the suite started: the gateway or a ceiling.
type Proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []map[string]any
	tail   []string
	exited chan struct{}
	err    error
}

// StartProc runs bin with args in dir and waits until it has logged a
// "listening" line for each name in listeners (matched on the "listener"
// field; "" matches any) and, when ready is set, a "ready" line.
func StartProc(ctx context.Context, dir, bin string, args, env []string, ready bool, listeners ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				m = nil
			}
			p.mu.Lock()
			// Keep the lifecycle lines and the last few others, not every
			// invocation line of a long run.
			if m != nil && (m["message"] == "listening" || m["message"] == "ready" || m["level"] == "error" || m["addr"] != nil) {
				p.lines = append(p.lines, m)
			}
			p.tail = append(p.tail, sc.Text())
			if len(p.tail) > 50 {
				p.tail = p.tail[len(p.tail)-50:]
			}
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if p.has(ready, listeners) {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited (%v):\n%s", bin, p.err, p.Tail())
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling the log with a deadline
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s did not get ready:\n%s", bin, p.Tail())
		}
	}
}

func (p *Proc) has(ready bool, listeners []string) bool {
	if ready && p.find("ready", "") == nil {
		return false
	}
	for _, l := range listeners {
		if p.find("listening", l) == nil {
			return false
		}
	}
	return true
}

func (p *Proc) find(msg, listener string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.lines) - 1; i >= 0; i-- {
		l := p.lines[i]
		if l["message"] == msg && (listener == "" || l["listener"] == listener) {
			return l
		}
	}
	return nil
}

// LoggedAddr returns the "addr" of the last line the process logged with
// message, such as the embedded broker's.
func (p *Proc) LoggedAddr(message string) string {
	if l := p.find(message, ""); l != nil {
		s, _ := l["addr"].(string)
		return s
	}
	return ""
}

// Addr returns the address the process logged for listener.
func (p *Proc) Addr(listener string) string {
	if l := p.find("listening", listener); l != nil {
		s, _ := l["addr"].(string)
		return s
	}
	return ""
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Tail returns the last lines the process logged.
func (p *Proc) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop terminates the process (SIGTERM, then SIGKILL to its group after 30s).
func (p *Proc) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// RSS returns the current and peak resident memory of pid, in bytes, from
// /proc; zeros where it cannot be read.
func RSS(pid int) (cur, peak int64) {
	cur, peak, _ = subproc.ReadMemory(pid)
	return cur, peak
}
