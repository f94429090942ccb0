package process

import (
	"errors"
	"strings"
)

// Errors of the pool. Batch-level errors returned by Invoke wrap them (or
// context.DeadlineExceeded / context.Canceled when the batch's context
// ended first).
var (
	// ErrClosed is returned by Invoke once Close began.
	ErrClosed = errors.New("process: pool closed")
	// ErrNotStarted is returned by Invoke before Start succeeded.
	ErrNotStarted = errors.New("process: pool not started")
	// ErrProtocol is wrapped by the error of a batch whose result line
	// broke the protocol: malformed JSON that claims to be a result line, a
	// result for another batch, a line longer than max_line. The process
	// is killed and replaced.
	ErrProtocol = errors.New("process: protocol error")
	// ErrExited is matched (errors.Is) by *ExitError.
	ErrExited = errors.New("process: exited")
	// ErrStartFailing is wrapped by Invoke's error while every instance of
	// the pool is failing to start: the command crashes at start, and the
	// pool retries it with backoff.
	ErrStartFailing = errors.New("process: cannot start a process")
	// ErrMissingResult is wrapped by the error of an event the process
	// answered no result for.
	ErrMissingResult = errors.New("process: no result for event")
)

// ExitError is the error of a batch whose process exited (or closed its
// stdout) before answering it. It matches ErrExited with errors.Is.
type ExitError struct {
	// PID is the process id.
	PID int
	// Status is the wait status as os.ProcessState prints it ("exit status
	// 3", "signal: killed"), or a description when the process did not exit.
	Status string
	// Stderr holds the last lines the process wrote to stderr, oldest first.
	Stderr []string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString("process exited: ")
	b.WriteString(e.Status)
	if len(e.Stderr) > 0 {
		b.WriteString("; last stderr: ")
		b.WriteString(strings.Join(e.Stderr, " | "))
	}
	return b.String()
}

// Is reports whether target is ErrExited.
func (e *ExitError) Is(target error) bool { return target == ErrExited }
