package lambda

import (
	"bytes"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/internal/subproc"
	"github.com/sluicehq/sluice/plugins"
)

// maxLogLine is the longest line passed to the LogFunc; longer ones are cut
// into pieces of this size.
const maxLogLine = 64 << 10

// initTailLines is how many of the last lines a runtime wrote before it was
// ready an init failure message quotes.
const initTailLines = 10

// logPipe reads a runtime's stdout and stderr (one pipe, as Lambda merges
// them into one log stream) and passes each line to the LogFunc tagged with
// the request id of the invocation in progress.
//
// Lines must be tagged exactly: the Lambda invoke API's log tail is the
// lines of one request id, and a runtime writes its last lines just before
// it posts its response. So every read happens under mu, both in the reader
// goroutine and in sync, which reads what the pipe holds at the moment an
// invocation starts or ends, before the tag changes. The pipe is
// non-blocking (Go's poller), so sync never waits for the runtime.
type logPipe struct {
	f    *os.File
	rc   syscall.RawConn
	logs plugins.LogFunc
	done chan struct{} // closed when the reader goroutine returns

	mu   sync.Mutex
	req  string // request id lines are tagged with
	buf  []byte // a partial line at buf[:n]
	n    int
	eof  bool
	tail subproc.Tail // the last lines until ready, for an init failure message

	watchOOM bool        // look for lines saying an allocation failed
	oom      atomic.Bool // such a line was seen
}

func newLogPipe(f *os.File, logs plugins.LogFunc, watchOOM bool) (*logPipe, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	l := &logPipe{f: f, rc: rc, logs: logs, done: make(chan struct{}), buf: make([]byte, maxLogLine), tail: subproc.NewTail(initTailLines, maxLogLine), watchOOM: watchOOM}
	go l.run()
	return l, nil
}

func (l *logPipe) run() {
	defer close(l.done)
	for {
		eof := false
		err := l.rc.Read(func(fd uintptr) bool {
			for {
				l.mu.Lock()
				more := l.readLocked(int(fd))
				eof = l.eof
				l.mu.Unlock()
				if eof {
					return true
				}
				if !more {
					return false // drained: wait for the poller
				}
			}
		})
		if err != nil || eof {
			l.mu.Lock()
			l.flushLocked()
			l.mu.Unlock()
			return
		}
	}
}

// readLocked reads once from fd and emits the complete lines. It reports
// whether the pipe may hold more: only a read that filled the buffer says
// so. A shorter one emptied the pipe, and whatever is written next is a new
// readiness event for the poller, so no read is spent on EAGAIN.
func (l *logPipe) readLocked(fd int) bool {
	if l.eof {
		return false
	}
	n, err := syscall.Read(fd, l.buf[l.n:])
	switch {
	case err == syscall.EINTR:
		return true
	case err != nil:
		if err != syscall.EAGAIN {
			l.eof = true
		}
		return false
	case n == 0:
		l.eof = true
		return false
	}
	full := n == len(l.buf)-l.n
	l.n += n
	b := l.buf[:l.n]
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		l.emitLocked(b[:i])
		b = b[i+1:]
	}
	if len(b) == len(l.buf) {
		l.emitLocked(b) // a line longer than the buffer: pass it in pieces
		b = b[:0]
	}
	l.n = copy(l.buf, b)
	return full
}

func (l *logPipe) emitLocked(line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	l.tail.Add(line)
	if l.watchOOM && !l.oom.Load() && memlimit.Looks(line) {
		l.oom.Store(true)
	}
	if l.logs != nil {
		l.logs(l.req, line)
	}
}

func (l *logPipe) flushLocked() {
	if l.n > 0 {
		l.emitLocked(l.buf[:l.n])
		l.n = 0
	}
}

// flush emits every line the runtime has written so far under the current
// tag.
func (l *logPipe) flush() {
	l.mu.Lock()
	req := l.req
	l.mu.Unlock()
	l.sync(req)
}

// sync emits, under the current tag, every line the runtime has written so
// far, a trailing partial line included, then tags later lines with req.
func (l *logPipe) sync(req string) {
	if l == nil {
		return // a proc without a process, in tests of the Runtime API
	}
	_ = l.rc.Control(func(fd uintptr) {
		l.mu.Lock()
		for l.readLocked(int(fd)) {
		}
		l.mu.Unlock()
	})
	l.mu.Lock()
	l.flushLocked()
	l.req = req
	l.mu.Unlock()
}

// ready stops keeping lines for init failure messages.
func (l *logPipe) ready() {
	l.mu.Lock()
	l.tail = subproc.Tail{} // keeps nothing
	l.mu.Unlock()
}

// lastLines returns the last lines written before the runtime was ready.
func (l *logPipe) lastLines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tail.Lines()
}

// close waits for the reader to reach the end of the pipe (every writer
// gone) or, when the pipe is still held open, reads what is there and stops
// it.
func (l *logPipe) close() {
	l.sync("")
	_ = l.f.Close()
	<-l.done
}
