package invoker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Config is the invocation policy of one function. Its zero value is usable:
// every zero field takes the default its comment names.
type Config struct {
	// Timeout bounds one invocation (one batch) from its dispatch to the
	// worker. The time an event waited in the queue before it does not
	// count, as on Lambda; it is reported apart (Outcome.Queued, queue_ms
	// in the invocation log). Defaults to 3s.
	Timeout time.Duration
	// Concurrency is the most batches in flight at once. Defaults to 64.
	Concurrency int
	// Queue is the most events waiting for a worker. Defaults to 1024.
	Queue int
	// Batch is the batching policy.
	Batch BatchConfig
	// Retry is the retry policy of events submitted with retries.
	Retry RetryConfig
	// Memory is the memory the function is billed for, in bytes, in
	// sluice_gb_seconds_total. Defaults to 128 MiB, Lambda's default.
	Memory int64
}

// BatchConfig says when a batch is dispatched: when it holds MaxItems events
// or MaxBytes bytes, when its first event has waited MaxWait, or at once when
// it holds an event a caller is waiting for (Item.Sync).
type BatchConfig struct {
	// MaxItems defaults to 100.
	MaxItems int
	// MaxBytes is the estimated encoded size of a batch. Defaults to 1 MiB.
	MaxBytes int
	// MaxWait defaults to 10ms; NoWait dispatches at once.
	MaxWait time.Duration
	// SyncItems is the most events in a batch that holds a synchronous
	// event (YAML batch.sync_items). Defaults to 1: a caller's event goes
	// to the worker alone, so it never waits behind, or times out because
	// of, the events it would share a batch with — a process runs a batch
	// on one instance, one event after another, and the batch has one
	// timeout. A larger value opts in to sharing, for a function that
	// finishes that many events within one timeout; the events a worker
	// finished are still answered when a later one in the batch times out.
	// It must not be above MaxItems.
	SyncItems int
}

// RetryConfig follows Lambda's asynchronous and stream retry semantics. It
// does not apply to synchronous events (Item.Sync), which are tried exactly
// once, as Lambda does not retry a synchronous invocation: the caller gets
// the error and decides.
type RetryConfig struct {
	// Attempts is the most times one asynchronous or stream event is tried.
	// Defaults to 3.
	Attempts int
	// Backoff is the wait before the first retry; it doubles (with full
	// jitter) on each further retry. Defaults to 100ms.
	Backoff time.Duration
	// MaxBackoff caps the wait. Defaults to 10s.
	MaxBackoff time.Duration
	// Bisect splits a batch that failed as a whole (a crash, not a per-event
	// error) in two and retries each half, to isolate a bad event; the
	// halves do not count as attempts. Defaults to false, as on Lambda.
	// Synchronous events are never run again in a half: they fail with
	// their batch.
	Bisect bool
	// MaxAge fails an event that was first submitted longer ago than this
	// instead of retrying it. Defaults to 1h.
	MaxAge time.Duration
}

// Defaults.
const (
	DefaultTimeout     = 3 * time.Second
	DefaultConcurrency = 64
	DefaultQueue       = 1024
	DefaultMaxItems    = 100
	DefaultMaxBytes    = 1 << 20
	DefaultMaxWait     = 10 * time.Millisecond
	DefaultSyncItems   = 1
	DefaultAttempts    = 3
	DefaultBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	DefaultMaxAge      = time.Hour
	DefaultMemory      = 128 << 20
	// NoWait is the MaxWait of a function that dispatches every batch at
	// once (any negative MaxWait does).
	NoWait time.Duration = -1
)

// Delay is the wait before retry number attempt (1 for the first retry):
// Backoff doubled per attempt, capped at MaxBackoff, with equal jitter (a
// uniform draw in [d/2, d]) so the retries of a failed batch do not hit a
// recovering dependency together, yet never retry at once. c must have its
// defaults applied (Function.Config does).
func (c RetryConfig) Delay(attempt int) time.Duration {
	d := c.Backoff << min(max(attempt, 1)-1, 30)
	if d <= 0 || d > c.MaxBackoff {
		d = c.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	setDur(&c.Timeout, DefaultTimeout)
	setInt(&c.Concurrency, DefaultConcurrency)
	setInt(&c.Queue, DefaultQueue)
	setInt(&c.Batch.MaxItems, DefaultMaxItems)
	setInt(&c.Batch.MaxBytes, DefaultMaxBytes)
	setDur(&c.Batch.MaxWait, DefaultMaxWait)
	setInt(&c.Batch.SyncItems, DefaultSyncItems)
	setInt(&c.Retry.Attempts, DefaultAttempts)
	setDur(&c.Retry.Backoff, DefaultBackoff)
	setDur(&c.Retry.MaxBackoff, DefaultMaxBackoff)
	setDur(&c.Retry.MaxAge, DefaultMaxAge)
	if c.Memory <= 0 {
		c.Memory = DefaultMemory
	}
	return c
}

func setInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func setDur(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

// Validate reports every field out of range, naming its config key.
func (c Config) Validate() error {
	var errs []error
	check := func(bad bool, key, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
		}
	}
	check(c.Timeout < 0, "timeout", "must not be negative, got %s", c.Timeout)
	check(c.Concurrency < 0, "concurrency", "must not be negative, got %d", c.Concurrency)
	check(c.Queue < 0, "queue", "must not be negative, got %d", c.Queue)
	check(c.Batch.MaxItems < 0, "batch.max_items", "must not be negative, got %d", c.Batch.MaxItems)
	check(c.Batch.SyncItems < 0, "batch.sync_items", "must not be negative, got %d", c.Batch.SyncItems)
	check(c.Batch.MaxBytes < 0, "batch.max_bytes", "must not be negative, got %d", c.Batch.MaxBytes)
	check(c.Retry.Attempts < 0, "retry.attempts", "must not be negative, got %d", c.Retry.Attempts)
	check(c.Retry.Backoff < 0, "retry.backoff", "must not be negative, got %s", c.Retry.Backoff)
	check(c.Retry.MaxBackoff < 0, "retry.max_backoff", "must not be negative, got %s", c.Retry.MaxBackoff)
	check(c.Retry.MaxAge < 0, "retry.max_age", "must not be negative, got %s", c.Retry.MaxAge)
	d := c.withDefaults()
	check(d.Batch.SyncItems > d.Batch.MaxItems, "batch.sync_items", "(%d) must not be above batch.max_items (%d)", d.Batch.SyncItems, d.Batch.MaxItems)
	check(d.Retry.MaxBackoff < d.Retry.Backoff, "retry.max_backoff", "(%s) must not be below retry.backoff (%s)", d.Retry.MaxBackoff, d.Retry.Backoff)
	return errors.Join(errs...)
}
