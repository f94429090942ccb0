package process

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/internal/subproc"
	"github.com/sluicehq/sluice/plugins"
)

// Instance states, guarded by Pool.mu.
const (
	stateStarting = iota // spawned, answering its first batch
	stateIdle            // in Pool.idle
	stateBusy            // running a batch
	stateRetired         // being stopped or replaced
)

const (
	stdoutBuffer = 256 << 10 // most result lines fit, and are decoded in place
	stderrBuffer = 64 << 10  // a longer stderr line is logged in pieces
	keepBuffer   = 4 << 20   // buffers grown past this are dropped after the batch
	tailLines    = 8         // stderr lines kept for crash reports
	tailLineMax  = 512
	// exitGrace is how long a process that closed its stdout has to exit
	// before it is killed; stderrGrace how long its stderr may stay open
	// after its group was killed (a descendant that left the group can hold
	// it) before the pool stops reading it.
	exitGrace = 2 * time.Second
	// exitReadGrace is how long a read may still take once the process was
	// reaped: enough to take what it wrote before exiting from the pipe.
	exitReadGrace = 100 * time.Millisecond
	stderrGrace   = time.Second
	reapGrace     = 5 * time.Second
)

// instance is one process of a pool.
type instance struct {
	p     *Pool
	proc  *subproc.Proc
	pid   int
	state int // guarded by p.mu

	stdin  *os.File
	stdout *os.File
	stderr *os.File
	r      *bufio.Reader

	exited     <-chan struct{} // proc.Exited()
	stderrDone chan struct{}   // closed once stderr reached EOF or was closed
	stopOnce   sync.Once

	interrupted chan struct{} // receives once interrupt has run
	interruptFn func()        // in.interrupt bound once: binding allocates

	mu    sync.Mutex // guards the request ids and the tail
	reqID string     // the batch running, "" between batches
	// prevID is the batch that ended last; its lines are those that end
	// at or before prevMark, the count of stderr bytes written when it
	// ended: a line written just before the result line must keep its id
	// even if it is read after the result.
	prevID   string
	prevMark int64
	tail     subproc.Tail // the last stderr lines, for crash reports

	stderrRead atomic.Int64 // bytes read from the stderr pipe
	stderrConn syscall.RawConn
	pendingFn  func(fd uintptr) // sets pending; bound once: binding allocates
	pending    int64

	// Owned by whoever holds the instance (its starter, then Invoke).
	wbuf        []byte
	big         []byte
	line        resultLine
	match       []int32
	filled      []bool
	strayWarned bool
	served      bool // it answered a batch (not only its start probe)
}

// spawn starts a process and waits for its answer to an empty batch.
func (p *Pool) spawn(ctx context.Context) (*instance, error) {
	if err := p.crashes.Wait(ctx, nil); err != nil {
		return nil, fmt.Errorf("waiting out the restart backoff of processes that exited before answering a batch: %w", err)
	}
	cmd := exec.Command(p.cfg.Command[0], p.cfg.Command[1:]...)
	cmd.Dir = p.cfg.Dir
	cmd.Env = p.env
	var files [6]*os.File // child stdin, our stdin; our stdout, child stdout; ...
	for i := 0; i < 6; i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range files[:i] {
				_ = f.Close()
			}
			return nil, fmt.Errorf("cannot create pipes: %w", err)
		}
		files[i], files[i+1] = r, w
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[3], files[5]
	proc, err := subproc.Start(cmd, subproc.Options{Limiter: p.cfg.Limit, Memory: p.cfg.Memory})
	for _, i := range []int{0, 3, 5} {
		_ = files[i].Close()
	}
	if err != nil {
		for _, i := range []int{1, 2, 4} {
			_ = files[i].Close()
		}
		return nil, err
	}
	in := &instance{
		p:           p,
		proc:        proc,
		pid:         proc.PID(),
		stdin:       files[1],
		stdout:      files[2],
		stderr:      files[4],
		r:           bufio.NewReaderSize(files[2], stdoutBuffer),
		exited:      proc.Exited(),
		stderrDone:  make(chan struct{}),
		interrupted: make(chan struct{}, 1),
		tail:        subproc.NewTail(tailLines, tailLineMax),
	}
	in.interruptFn = in.interrupt
	in.pendingFn = func(fd uintptr) { in.pending = pendingBytes(fd) }
	in.stderrConn, _ = in.stderr.SyscallConn()
	p.mu.Lock()
	p.live[in] = struct{}{}
	p.mu.Unlock()
	p.wg.Add(2)
	go in.readStderr()
	go in.wait()

	probe := &plugins.Batch{ID: "sluice-start-" + strconv.FormatInt(p.probes.Add(1), 10)}
	if d, ok := ctx.Deadline(); ok {
		probe.Deadline = d
	}
	if err := in.run(ctx, probe); err != nil {
		in.stop(true)
		return nil, fmt.Errorf("process %d did not answer its first (empty) batch: %w", in.pid, err)
	}
	in.proc.PeakRSS(0)
	return in, nil
}

// wait follows the process to its exit.
func (in *instance) wait() {
	defer in.p.wg.Done()
	<-in.exited
	// A read or write of a batch in progress would block for as long as a
	// descendant that left the group holds the pipe: make it return now
	// (run checks exited after setting its deadlines, so none is missed).
	// The read deadline is not in the past: a result line the process wrote
	// just before exiting may still sit unread in the pipe, and a deadline
	// already passed fails the read without looking at it.
	_ = in.stdout.SetReadDeadline(time.Now().Add(exitReadGrace))
	_ = in.stdin.SetWriteDeadline(time.Unix(1, 0))
	in.p.exitedIdle(in)
}

// readStderr hands every stderr line to the pool's LogFunc, tagged with the
// request id of the batch the process is running.
func (in *instance) readStderr() {
	defer in.p.wg.Done()
	defer close(in.stderrDone)
	r := bufio.NewReaderSize(countingReader{in.stderr, &in.stderrRead}, stderrBuffer)
	var end int64 // offset of the end of the line
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			end += int64(len(line))
			in.logStderr(trimEOL(line), end)
		}
		if err != nil && err != bufio.ErrBufferFull {
			_ = in.stderr.Close()
			return
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (in *instance) logStderr(line []byte, end int64) {
	in.mu.Lock()
	id := in.reqID
	if end <= in.prevMark {
		id = in.prevID
	}
	in.tail.Add(line)
	in.mu.Unlock()
	in.p.logs(id, line)
}

func (in *instance) setRequestID(id string) {
	in.mu.Lock()
	in.reqID = id
	in.mu.Unlock()
}

// endRequest tags id the stderr lines written so far but not read yet, and
// "" the lines written from now on.
func (in *instance) endRequest(id string) {
	// Pending bytes before read bytes: a read in between then counts its
	// bytes twice, moving the mark a little late, never early.
	in.pending = 0
	if in.stderrConn != nil {
		_ = in.stderrConn.Control(in.pendingFn)
	}
	mark := in.pending + in.stderrRead.Load()
	in.mu.Lock()
	in.prevID, in.prevMark, in.reqID = id, mark, ""
	in.mu.Unlock()
}

// stderrTail returns the last stderr lines, oldest first.
func (in *instance) stderrTail() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.tail.Lines()
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// stop ends the process for good: kill its group when kill is set (else it
// has exited or is exiting), reap it, read the rest of its stderr, release
// its files. Idempotent; concurrent callers all wait for it to be done.
func (in *instance) stop(kill bool) {
	in.stopOnce.Do(func() {
		if kill {
			in.proc.Kill()
		}
		t := time.NewTimer(reapGrace)
		select {
		case <-in.exited:
		case <-t.C:
			// Not reaped yet (uninterruptible sleep): the wait goroutine
			// finishes it, and Close waits for that goroutine.
		}
		t.Stop()
		in.proc.Kill() // whatever it left behind, if not reaped yet
		in.drainStderr()
		_ = in.stdin.Close()
		_ = in.stdout.Close()
		in.p.mu.Lock()
		delete(in.p.live, in)
		in.p.mu.Unlock()
	})
}

// drainStderr waits for stderr to reach EOF, so a crash report has the
// process's last words and no line is lost, but not forever: a descendant
// that escaped the process group may hold the pipe open.
func (in *instance) drainStderr() {
	t := time.NewTimer(stderrGrace)
	defer t.Stop()
	select {
	case <-in.stderrDone:
	case <-t.C:
		_ = in.stderr.Close()
		<-in.stderrDone
	}
}

func (in *instance) hasExited() bool { return in.proc.HasExited() }

// tailText returns the last stderr lines for an error message, or "".
func (in *instance) tailText() string {
	tail := in.stderrTail()
	if len(tail) == 0 {
		return ""
	}
	return "; last stderr: " + strings.Join(tail, " | ")
}

func (in *instance) exitError() *ExitError {
	status := "still running"
	select {
	case <-in.exited:
		status = in.proc.ExitStatus()
	default:
	}
	return &ExitError{PID: in.pid, Status: status, Stderr: in.stderrTail()}
}

// interrupt makes the batch's pending read and write return at once; it
// runs when the batch's context is cancelled before its deadline.
func (in *instance) interrupt() {
	// The read deadline is not in the past: a result line the process wrote
	// just before exiting may still sit unread in the pipe, and a deadline
	// already passed fails the read without looking at it.
	_ = in.stdout.SetReadDeadline(time.Now().Add(exitReadGrace))
	_ = in.stdin.SetWriteDeadline(time.Unix(1, 0))
	in.interrupted <- struct{}{}
}

// reqIDOf returns the id to tag b's lines with.
func (in *instance) reqIDOf(b *plugins.Batch) string {
	if len(b.Events) == 0 {
		return "" // a start probe is no request
	}
	return b.RequestID()
}

// run sends b and reads its answer. On error the process has been stopped
// (killed, reaped, its stderr drained) and the error says why.
func (in *instance) run(ctx context.Context, b *plugins.Batch) error {
	in.setRequestID(in.reqIDOf(b))
	deadline, hasDeadline := ctx.Deadline()
	sent := b.Deadline
	if sent.IsZero() {
		sent = deadline
	}
	in.wbuf = appendBatchLine(in.wbuf[:0], b.ID, sent, b.Events, b.TraceParents)
	var d time.Time // zero: no deadline
	if hasDeadline {
		d = deadline
	}
	_ = in.stdin.SetWriteDeadline(d)
	_ = in.stdout.SetReadDeadline(d)
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, in.interruptFn)
	}
	var err error
	select {
	case <-in.exited:
		err = io.EOF
	case <-ctx.Done():
		err = errNotSent
	default:
		err = in.exchange(b)
	}
	if stop != nil && !stop() {
		// interrupt started: wait for it, or it could set the deadlines of
		// the next batch in the past.
		<-in.interrupted
	}
	if cap(in.wbuf) > keepBuffer {
		in.wbuf = nil
	}
	if cap(in.big) > keepBuffer {
		in.big = nil
	}
	switch {
	case err == nil:
		in.endRequest(in.reqIDOf(b))
		return nil
	case err == errNotSent:
		cause := ctx.Err()
		if cause == nil {
			cause = context.DeadlineExceeded // the poller's timer fired a hair before the context's
		}
		return fmt.Errorf("%w: %w", errNotSent, cause)
	}
	return in.fail(ctx, b, err)
}

// errNotSent reports a batch whose context ended before a byte of it was
// written: the process is intact and goes back to the pool.
var errNotSent = errors.New("process: the batch's context ended before it was sent")

// exchange writes the batch line and reads lines until the result line.
func (in *instance) exchange(b *plugins.Batch) error {
	if n, err := in.stdin.Write(in.wbuf); err != nil {
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && !in.hasExited() {
			return errNotSent
		}
		return err
	}
	for {
		line, err := in.readLine()
		if err != nil {
			return err
		}
		isResult, err := in.line.decode(line)
		if err != nil {
			return fmt.Errorf("%w (line: %s)", err, excerpt(line))
		}
		if !isResult {
			in.stray(line)
			continue
		}
		if !idEqual(in.line.batch, in.line.batchEsc, b.ID) {
			return fmt.Errorf("%w: a result line for batch %s while batch %q was running", ErrProtocol, excerpt(in.line.batch), b.ID)
		}
		var unmatched int
		in.match, in.filled, unmatched = in.line.fill(b, in.match, in.filled)
		if unmatched > 0 {
			in.p.logs(b.RequestID(), fmt.Appendf(nil, "sluice: warning: the process answered %d results for no event of batch %s (an unknown or repeated id); ignored", unmatched, b.ID))
		}
		return nil
	}
}

// stray logs a stdout line that is not a result line as function output.
func (in *instance) stray(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	in.mu.Lock()
	id := in.reqID
	in.mu.Unlock()
	// An Embedded Metric Format line is output the host reads for metrics,
	// as a Lambda function prints EMF on stdout: no warning.
	if !in.strayWarned && !plugins.IsEMF(line) {
		in.strayWarned = true
		in.p.logs(id, []byte("sluice: warning: the process wrote a line to stdout that is not a result line; stdout is for the protocol, write logs to stderr"))
	}
	in.p.logs(id, line)
}

// readLine reads one stdout line without its end of line. It is valid until
// the next read.
func (in *instance) readLine() ([]byte, error) {
	max := in.p.cfg.MaxLineBytes
	line, err := in.r.ReadSlice('\n')
	if err == nil && len(line) <= max+1 {
		return trimEOL(line), nil
	}
	if err != nil && err != bufio.ErrBufferFull {
		return nil, err
	}
	in.big = append(in.big[:0], line...)
	for err == bufio.ErrBufferFull {
		if len(in.big) > max {
			return nil, fmt.Errorf("%w: a stdout line longer than max_line (%d bytes)", ErrProtocol, max)
		}
		line, err = in.r.ReadSlice('\n')
		in.big = append(in.big, line...)
	}
	if err != nil {
		return nil, err
	}
	if len(in.big) > max+1 {
		return nil, fmt.Errorf("%w: a stdout line longer than max_line (%d bytes)", ErrProtocol, max)
	}
	return trimEOL(in.big), nil
}

// fail stops the process after a failed exchange and explains err.
func (in *instance) fail(ctx context.Context, b *plugins.Batch, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil && in.hasExited() {
		err = io.EOF // woken by wait, not by the deadline
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		in.stop(true)
		cause := ctx.Err()
		if cause == nil {
			// The poller's timer fired a hair before the context's.
			cause = context.DeadlineExceeded
		}
		return fmt.Errorf("process %d did not answer batch %q in time; killed it and its process group%s: %w", in.pid, b.ID, in.tailText(), cause)
	case errors.Is(err, ErrProtocol):
		in.stop(true)
		return fmt.Errorf("process %d: %w", in.pid, err)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF):
		// It exited, or closed its stdin or stdout: give it a moment to
		// exit by itself so its status is its own.
		t := time.NewTimer(exitGrace)
		killed := false
		select {
		case <-in.exited:
			in.stop(false)
		case <-t.C:
			in.stop(true)
			killed = true
		}
		t.Stop()
		e := in.exitError()
		switch {
		case killed:
			e.Status = "closed its stdin or stdout without exiting, killed (" + e.Status + ")"
		case !errors.Is(err, io.EOF):
			e.Status += " (" + err.Error() + ")"
		}
		return e
	default:
		in.stop(true)
		return fmt.Errorf("process %d: %w", in.pid, err)
	}
}

// afterBatch samples the process's peak memory into b and returns a reason
// to retire it when it is over the memory limit.
func (in *instance) afterBatch(b *plugins.Batch) error {
	hwm := in.proc.PeakRSS(in.p.rssInterval)
	b.MaxRSSBytes = hwm
	limit := in.p.cfg.Memory
	if limit <= 0 || hwm <= limit {
		return nil
	}
	in.p.logs(b.RequestID(), fmt.Appendf(nil, "sluice: process %d peak memory %.1f MiB is over the function's memory limit of %.1f MiB; replacing it",
		in.pid, float64(hwm)/(1<<20), float64(limit)/(1<<20)))
	return fmt.Errorf("process %d: peak memory %d bytes over the memory limit of %d bytes", in.pid, hwm, limit)
}

// outOfMemory reports whether the process, which exited with the last
// stderr lines tail, ran out of memory under an enforced limit: the kernel
// killed it, its last words say an allocation failed, or it failed with
// its peak memory at the limit.
func (in *instance) outOfMemory(tail []string) bool {
	if !in.proc.Limited() {
		return false
	}
	return in.proc.OOMKilled() || memlimit.LooksAny(tail) || in.proc.NearLimit(in.p.cfg.Memory)
}

// oomResults turns the per-event errors that say an allocation failed
// (a handler that caught Python's MemoryError) into Runtime.OutOfMemory
// errors, and reports whether there was one.
func (in *instance) oomResults(b *plugins.Batch) bool {
	found := false
	for i, r := range b.Results {
		if r.Err == nil || !memlimit.Looks([]byte(r.Err.Error())) {
			continue
		}
		found = true
		b.Results[i].Err = &plugins.FunctionError{Type: ErrorTypeOOM, Message: "RequestId: " + b.Events[i].ID + " Error: " + r.Err.Error()}
	}
	if found {
		in.p.logs(b.RequestID(), []byte("RequestId: "+b.RequestID()+" Error: the function ran out of memory; replacing its process"))
		in.p.logs(b.RequestID(), []byte(ErrorTypeOOM))
	}
	return found
}

// excerpt quotes the start of b for an error message.
func excerpt(b []byte) string {
	const max = 200
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}
