package invoker

import (
	"fmt"
	"time"
)

// The retry policy, one for every source: the invoker applies it to
// asynchronous events (HTTP async, storage, the async topic, schedules) in
// failItem and failBatch, and a Kafka trigger applies it to its records,
// which it retries itself to keep their order (package streams). Only the
// mechanism differs: the invoker puts an event back in its queue after the
// delay, the trigger holds the record's lane.

// Step is what the retry policy does with a failed event.
type Step int

const (
	// Retry: invoke the event again after Verdict.Delay.
	Retry Step = iota
	// Final: the event is out of attempts or older than max_age; it is
	// dead-lettered with Verdict.Err.
	Final
)

// Verdict is the retry policy's decision on one failed event.
type Verdict struct {
	Step  Step
	Delay time.Duration // with Retry: the backoff before the next attempt
	Err   error         // with Final: the event's error, wrapping ErrExpired past max_age
}

// Next decides on an event that failed its attempts-th attempt (1 for the
// first) with err, out of at most maxAttempts (Attempts, or what the
// event's submitter asked for), first received at since: Final once
// attempts reaches maxAttempts or the event is older than MaxAge, else
// Retry after Delay(attempts). c must have its defaults applied
// (Function.Config does).
func (c RetryConfig) Next(attempts, maxAttempts int, since, now time.Time, err error) Verdict {
	if attempts >= maxAttempts {
		return Verdict{Step: Final, Err: err}
	}
	if age := now.Sub(since); age > c.MaxAge {
		return Verdict{Step: Final, Err: fmt.Errorf("%w (%s): %w", ErrExpired, age.Round(time.Millisecond), err)}
	}
	return Verdict{Step: Retry, Delay: c.Delay(attempts)}
}

// Splits reports whether a batch of n events that failed as a whole (a
// worker crash or a timeout) is bisected, to isolate the event that broke
// it, rather than retried whole.
func (c RetryConfig) Splits(n int) bool { return c.Bisect && n > 1 }
