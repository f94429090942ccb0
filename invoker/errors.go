package invoker

import (
	"errors"
	"fmt"
	"time"
)

// Errors of the invoker. Outcome.Err wraps them, or is the worker's error.
var (
	// ErrQueueFull is returned by Submit at once when the function's queue
	// is full: the caller should back off (HTTP 429, Kafka pause).
	ErrQueueFull = errors.New("invoker: queue full")
	// ErrClosed is returned by Submit after Close began, and ends events
	// still pending when Close's context expired.
	ErrClosed = errors.New("invoker: closed")
	// ErrTimeout is wrapped by TimeoutError.
	ErrTimeout = errors.New("invoker: timed out")
	// ErrExpired ends an event older than retry.max_age.
	ErrExpired = errors.New("invoker: event older than retry.max_age")
)

// TimeoutError is the error of an event whose invocation ran past the
// function's timeout. It matches ErrTimeout with errors.Is. The timeout
// runs from dispatch, as Lambda's does: time waiting in the queue is no
// part of it, and is reported apart (Outcome.Queued, queue_ms).
type TimeoutError struct {
	After time.Duration
}

func (e *TimeoutError) Error() string {
	// Lambda's own wording, which tools grep for.
	return fmt.Sprintf("Task timed out after %.2f seconds", e.After.Seconds())
}

// Is reports whether target is ErrTimeout.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// WorkerError is the error of a batch that failed as a whole in its worker
// (a crashed process, a broken protocol), not by the function's own error.
type WorkerError struct {
	Err error
}

func (e *WorkerError) Error() string { return "worker failed: " + e.Err.Error() }
func (e *WorkerError) Unwrap() error { return e.Err }
