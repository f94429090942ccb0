// Package scale keeps a function's instances (processes, Lambda runtimes)
// between a minimum and a maximum: it starts them on demand when every
// live one is busy and work is waiting, as many at once as there are
// waiters (up to the maximum), and stops those idle for longer than the
// idle time, down to the minimum. Each instance serves one request at a
// time.
package scale

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/subproc"
)

// Errors of Acquire.
var (
	ErrClosed     = errors.New("scale: pool closed")
	ErrNotStarted = errors.New("scale: pool not started")
	// ErrStartedTwice is Start's error after a Start or Close.
	ErrStartedTwice = errors.New("scale: pool started twice or after Close")
)

// StartError is returned by Acquire while nothing is live and the latest
// start failed (the pool retries with backoff).
type StartError struct{ Err error }

func (e *StartError) Error() string { return "cannot start an instance: " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// Config is a pool's sizing and how it starts and stops instances.
type Config[T any] struct {
	// Min instances are started by Start and kept (replaced when lost);
	// Max bounds the instances starting, idle or busy. Max >= max(Min, 1).
	Min, Max int
	// Idle is how long an idle instance above Min lives; 0 keeps them.
	Idle time.Duration
	// StartTimeout bounds one start.
	StartTimeout time.Duration
	// Start starts one instance and returns once it can serve, or why not.
	Start func(ctx context.Context) (T, error)
	// Stop stops an instance for good: one idle for too long, or idle when
	// the pool closes. It runs on a goroutine of its own.
	Stop func(T)
	// OnStart is called after each start after Start's: init is how long
	// it took; err is why it failed, nil when it did not.
	OnStart func(init time.Duration, err error)
	// OnRetry is called before each retry of a replacement that failed to
	// start, after its backoff; attempt counts the failures so far.
	OnRetry func(err error, attempt int)
}

type entry[T any] struct {
	x     T
	since time.Time     // idle since
	init  time.Duration // > 0 until its first request: its cold start
}

// Pool is a set of instances. Its methods are safe for concurrent use.
type Pool[T comparable] struct {
	cfg Config[T]

	closeCtx context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu         sync.Mutex
	started    bool
	closed     bool
	idle       []entry[T] // most recently used last
	size       int        // starting, idle and busy
	starting   int        // being started, or waiting to retry a start
	inflight   int        // starts running now
	busy       int
	waiters    int
	wake       chan struct{}
	failStreak int
	startErr   error
	retryAt    time.Time
}

// New returns a pool; Start starts it.
func New[T comparable](cfg Config[T]) *Pool[T] {
	cfg.Max = max(cfg.Max, cfg.Min, 1)
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool[T]{cfg: cfg, closeCtx: ctx, cancel: cancel, wake: make(chan struct{})}
}

// Start starts Min instances at once and waits for them. On a failure it
// stops the ones started, closes the pool and returns the first error.
func (p *Pool[T]) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.started || p.closed {
		p.mu.Unlock()
		return ErrStartedTwice
	}
	p.started = true
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	type res struct {
		x   T
		err error
	}
	ch := make(chan res, p.cfg.Min)
	for range p.cfg.Min {
		go func() {
			x, err := p.cfg.Start(ctx)
			ch <- res{x, err}
		}()
	}
	var ok []T
	var first error
	for range p.cfg.Min {
		r := <-ch
		if r.err != nil {
			first = cmp(first, r.err)
			continue
		}
		ok = append(ok, r.x)
	}
	p.mu.Lock()
	if first != nil || p.closed {
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		for _, x := range ok {
			p.cfg.Stop(x)
		}
		if first == nil {
			first = ErrClosed
		}
		return first
	}
	now := time.Now()
	for _, x := range ok {
		p.idle = append(p.idle, entry[T]{x: x, since: now})
	}
	p.size = len(ok)
	p.mu.Unlock()
	if p.cfg.Idle > 0 && p.cfg.Max > p.cfg.Min {
		p.wg.Add(1)
		go p.reap()
	}
	return nil
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Acquire takes an idle instance, starting instances when none is idle and
// fewer are starting than callers wait, until ctx ends. init is the
// instance's start time when this is its first request after a start
// (a cold start), else 0.
func (p *Pool[T]) Acquire(ctx context.Context) (x T, init time.Duration, err error) {
	p.mu.Lock()
	for {
		switch {
		case p.closed:
			p.mu.Unlock()
			return x, 0, ErrClosed
		case !p.started:
			p.mu.Unlock()
			return x, 0, ErrNotStarted
		}
		if n := len(p.idle); n > 0 {
			e := p.idle[n-1]
			p.idle[n-1] = entry[T]{}
			p.idle = p.idle[:n-1]
			p.busy++
			p.mu.Unlock()
			return e.x, e.init, nil
		}
		if p.size < p.cfg.Max && p.starting < p.waiters+1 && !time.Now().Before(p.retryAt) {
			p.grow(false)
		}
		if p.busy == 0 && p.failStreak > 0 && p.inflight == 0 {
			err := p.startErr
			p.mu.Unlock()
			return x, 0, &StartError{Err: err}
		}
		p.waiters++
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			err = ctx.Err()
		}
		p.mu.Lock()
		p.waiters--
		if err != nil {
			p.mu.Unlock()
			return x, 0, err
		}
	}
}

// grow starts one instance in the background; replace makes it retry
// with backoff until it starts (a replacement below Min). Called with
// p.mu held.
func (p *Pool[T]) grow(replace bool) {
	p.size++
	p.starting++
	p.inflight++
	p.wg.Add(1)
	go p.start(replace)
}

func (p *Pool[T]) start(replace bool) {
	defer p.wg.Done()
	for attempt := 0; ; {
		begin := time.Now()
		ctx, cancel := context.WithTimeout(p.closeCtx, p.cfg.StartTimeout)
		x, err := p.cfg.Start(ctx)
		cancel()
		init := max(time.Since(begin), time.Microsecond)
		p.mu.Lock()
		p.inflight--
		if err == nil {
			p.failStreak = 0
			p.starting--
			if p.closed {
				p.size--
				p.mu.Unlock()
				p.cfg.Stop(x)
				return
			}
			p.idle = append(p.idle, entry[T]{x: x, since: time.Now(), init: init})
			p.notify()
			p.mu.Unlock()
			p.onStart(init, nil)
			return
		}
		attempt++
		p.failStreak++
		p.startErr = err
		p.retryAt = time.Now().Add(backoff(p.failStreak))
		if !replace || p.closed {
			p.starting--
			p.size--
			p.notify()
			p.mu.Unlock()
			p.onStart(init, err)
			return
		}
		p.notify() // waiters fail fast while nothing is live
		p.mu.Unlock()
		p.onStart(init, err)
		t := time.NewTimer(backoff(attempt))
		select {
		case <-t.C:
		case <-p.closeCtx.Done():
			t.Stop()
			p.mu.Lock()
			p.starting--
			p.size--
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		p.inflight++
		p.mu.Unlock()
		if p.cfg.OnRetry != nil {
			p.cfg.OnRetry(err, attempt)
		}
	}
}

func (p *Pool[T]) onStart(init time.Duration, err error) {
	if p.cfg.OnStart != nil {
		p.cfg.OnStart(init, err)
	}
}

// startBackoff is the wait before the n-th retry of a failed start: 100ms
// doubling up to 30s.
var startBackoff = subproc.Backoff{Base: 100 * time.Millisecond, Max: 30 * time.Second}

// backoff is startBackoff's delay for n failures, at least one.
func backoff(n int) time.Duration { return startBackoff.Delay(max(n, 1)) }

// notify wakes the waiters. Called with p.mu held.
func (p *Pool[T]) notify() {
	if p.waiters > 0 {
		close(p.wake)
		p.wake = make(chan struct{})
	}
}

// Release returns x after a request. healthy false means it is gone (the
// caller stopped it): a replacement starts when the pool fell below Min.
// It reports whether the caller must stop x itself: the pool closed.
func (p *Pool[T]) Release(x T, healthy bool) (stop bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy--
	switch {
	case !healthy:
		p.lost()
	case p.closed:
		p.size--
		return true
	default:
		p.idle = append(p.idle, entry[T]{x: x, since: time.Now()})
		p.notify()
	}
	return false
}

// lost accounts for an instance gone. Called with p.mu held.
func (p *Pool[T]) lost() {
	p.size--
	if !p.closed && p.size < p.cfg.Min {
		p.grow(true)
	}
	p.notify() // a waiter may start one now
}

// Remove takes x out of the idle list when it is there (it died between
// requests) and reports whether it was.
func (p *Pool[T]) Remove(x T) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, e := range p.idle {
		if e.x == x {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.idle = p.idle[:len(p.idle):len(p.idle)]
			p.lost()
			return true
		}
	}
	return false
}

// reap stops instances idle for longer than Idle, down to Min.
func (p *Pool[T]) reap() {
	defer p.wg.Done()
	tick := min(max(p.cfg.Idle/4, 5*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.closeCtx.Done():
			return
		}
		var out []T
		p.mu.Lock()
		now := time.Now()
		for len(p.idle) > 0 && p.size > p.cfg.Min && now.Sub(p.idle[0].since) >= p.cfg.Idle {
			out = append(out, p.idle[0].x)
			p.idle[0] = entry[T]{}
			p.idle = p.idle[1:]
			p.size--
		}
		p.mu.Unlock()
		for _, x := range out {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.cfg.Stop(x)
			}()
		}
	}
}

// Close stops taking requests and returns the idle instances for the
// caller to stop; busy ones come back from Release with stop set.
// Idempotent: later calls return nothing.
func (p *Pool[T]) Close() []T {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.wake)
	p.wake = make(chan struct{})
	out := make([]T, 0, len(p.idle))
	for _, e := range p.idle {
		out = append(out, e.x)
	}
	p.size -= len(p.idle)
	p.idle = nil
	p.mu.Unlock()
	p.cancel()
	return out
}

// Wait waits for the pool's goroutines (starts, retries, idle stops) after
// Close.
func (p *Pool[T]) Wait() { p.wg.Wait() }

// Counts returns how many instances are busy, idle and starting.
func (p *Pool[T]) Counts() (busy, idle, starting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy, len(p.idle), p.starting
}

// Limits returns Min and Max.
func (p *Pool[T]) Limits() (minimum, maximum int) { return p.cfg.Min, p.cfg.Max }

// String describes the limits for messages.
func (p *Pool[T]) String() string {
	if p.cfg.Min == p.cfg.Max {
		return fmt.Sprintf("instances: %d", p.cfg.Max)
	}
	return fmt.Sprintf("scaling: min %d, max %d", p.cfg.Min, p.cfg.Max)
}
