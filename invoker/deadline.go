package invoker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineCtx is the context of one batch: its parent with the batch's
// deadline. context.WithDeadline arms a runtime timer and allocates three
// objects per batch, which costs more than a fast in-process function's
// whole invocation, while most such functions never look at ctx.Done. So
// the timer context is only made when a worker first asks for Done, or
// for Err more than errChecks times; until then Err compares the clock
// with the deadline. A worker that checks Err before every event of a big
// batch (the builtin worker does) would otherwise read the clock per event,
// which on a virtual machine costs about as much as the rest of a noop
// invocation; past errChecks the timer is the cheaper of the two.
//
// Once the timer context exists, everything goes through it, so Done and
// Err agree as the context contract requires, and Value finds its
// cancelCtx: contexts derived from this one then propagate cancellation
// without a goroutine, as they would from a plain WithDeadline.
type deadlineCtx struct {
	parent   context.Context
	deadline time.Time

	mu       sync.Mutex
	timed    atomic.Pointer[timedCtx]
	cancel   context.CancelFunc
	released atomic.Bool  // the batch is over: cancelled, as WithDeadline's cancel leaves it
	checks   atomic.Int32 // calls of Err that read the clock
}

// errChecks is how many times Err reads the clock before it arms the timer
// context and asks it instead.
const errChecks = 8

// timedCtx boxes the timer context for the atomic pointer.
type timedCtx struct{ context.Context }

func newDeadlineCtx(parent context.Context, deadline time.Time) *deadlineCtx {
	return &deadlineCtx{parent: parent, deadline: deadline}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Done() <-chan struct{} { return c.arm().Done() }

func (c *deadlineCtx) Err() error {
	if t := c.timed.Load(); t != nil {
		return t.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if c.released.Load() {
		return context.Canceled
	}
	if c.checks.Add(1) > errChecks {
		return c.arm().Err()
	}
	// time.Until reads only the monotonic clock (the deadline has a
	// reading of it), half the cost of time.Now.
	if time.Until(c.deadline) <= 0 {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *deadlineCtx) Value(key any) any {
	if t := c.timed.Load(); t != nil {
		return t.Value(key)
	}
	return c.parent.Value(key)
}

// arm returns the timer context, making it on first use.
func (c *deadlineCtx) arm() context.Context {
	if t := c.timed.Load(); t != nil {
		return t.Context
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.timed.Load(); t != nil {
		return t.Context
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	c.cancel = cancel
	c.timed.Store(&timedCtx{ctx})
	// Stored before this load, as release stores released before loading
	// timed: one of the two sees the other, and cancel is idempotent.
	if c.released.Load() {
		cancel()
	}
	return ctx
}

// release ends the context, as calling WithDeadline's cancel does, and
// stops the timer if there is one: the batch is over.
func (c *deadlineCtx) release() {
	c.released.Store(true)
	if c.timed.Load() == nil {
		return
	}
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
