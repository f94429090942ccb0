// Package invoker turns submitted events into batched invocations of one
// function's Worker: a bounded queue, a batcher (max items, max bytes, max
// wait), a concurrency limit, a per-invocation timeout carried by the
// context, retries with exponential backoff and jitter, bisection of failing
// batches, per-item partial failure and dead letters.
//
// A Function is safe for concurrent use. Submit never blocks: a full queue is
// ErrQueueFull at once, so memory stays bounded however hard callers push.
package invoker
