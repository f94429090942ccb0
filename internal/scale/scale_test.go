package scale

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fake is an instance: a number.
type fake struct{ n int }

// harness counts what a pool started and stopped; gate, when set, holds
// every start until closed.
type harness struct {
	started, stopped atomic.Int64
	fail             atomic.Bool
	gate             chan struct{}
}

func (h *harness) config(minimum, maximum int, idle time.Duration) Config[*fake] {
	return Config[*fake]{
		Min: minimum, Max: maximum, Idle: idle, StartTimeout: 10 * time.Second,
		Start: func(ctx context.Context) (*fake, error) {
			if h.gate != nil {
				select {
				case <-h.gate:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			if h.fail.Load() {
				return nil, errors.New("cannot start")
			}
			return &fake{int(h.started.Add(1))}, nil
		},
		Stop: func(*fake) { h.stopped.Add(1) },
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval of a condition with a deadline
	}
}

func TestBurstStartsOnePerWaiterUpToMax(t *testing.T) {
	tests := []struct {
		name             string
		min, max, burst  int
		wantStarted      int
		wantColdRequests int
	}{
		{"from zero, below max", 0, 8, 5, 5, 5},
		{"from zero, capped by max", 0, 3, 7, 3, 3},
		{"min covers part", 2, 6, 6, 6, 4},
		{"fixed", 2, 2, 5, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &harness{}
			p := New(h.config(tt.min, tt.max, 0))
			if err := p.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			h.gate = make(chan struct{}) // hold on-demand starts
			got := make(chan *fake, tt.burst)
			var cold atomic.Int64
			var wg sync.WaitGroup
			for range tt.burst {
				wg.Add(1)
				go func() {
					defer wg.Done()
					x, init, err := p.Acquire(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					if init > 0 {
						cold.Add(1)
					}
					got <- x
				}()
			}
			// Each waiter beyond the idle ones asks for a start, up to max.
			wantStarting := min(tt.burst-tt.min, tt.max-tt.min)
			waitUntil(t, "the starts", func() bool {
				busy, _, starting := p.Counts()
				return busy == min(tt.min, tt.burst) && starting == wantStarting
			})
			close(h.gate)
			// Hold the first ones until each live instance served once, so
			// no waiter takes a released warm one before a fresh one.
			first := make([]*fake, 0, tt.max)
			for range min(tt.burst, tt.max) {
				first = append(first, <-got)
			}
			for _, x := range first {
				p.Release(x, true)
			}
			for range tt.burst - len(first) {
				p.Release(<-got, true)
			}
			wg.Wait()
			if n := int(h.started.Load()); n != tt.wantStarted {
				t.Errorf("started %d instances, want %d", n, tt.wantStarted)
			}
			if n := int(cold.Load()); n != tt.wantColdRequests {
				t.Errorf("%d requests saw a cold start, want %d", n, tt.wantColdRequests)
			}
			for _, x := range p.Close() {
				h.cfgStop(x)
			}
			p.Wait()
		})
	}
}

func (h *harness) cfgStop(*fake) { h.stopped.Add(1) }

func TestIdleInstancesStopDownToMin(t *testing.T) {
	for _, minimum := range []int{0, 1} {
		h := &harness{}
		p := New(h.config(minimum, 4, 20*time.Millisecond))
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		var xs []*fake
		for range 4 {
			x, _, err := p.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			xs = append(xs, x)
		}
		for _, x := range xs {
			p.Release(x, true)
		}
		waitUntil(t, "the idle ones to stop", func() bool {
			_, idle, _ := p.Counts()
			return idle == minimum && h.stopped.Load() == int64(4-minimum)
		})
		p.Close()
		p.Wait()
	}
}

func TestStartFailuresFailFastAndRecover(t *testing.T) {
	h := &harness{}
	h.fail.Store(true)
	p := New(h.config(0, 2, 0))
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := p.Acquire(ctx)
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("Acquire while starts fail: %v, want a *StartError", err)
	}
	// Within the backoff it fails at once, without another start.
	if _, _, err := p.Acquire(ctx); !errors.As(err, &se) {
		t.Fatalf("second Acquire: %v", err)
	}
	h.fail.Store(false)
	waitUntil(t, "a start after the backoff", func() bool {
		x, _, err := p.Acquire(ctx)
		if err != nil {
			return false
		}
		p.Release(x, true)
		return true
	})
	p.Close()
	p.Wait()
}

func TestLostInstanceBelowMinIsReplaced(t *testing.T) {
	h := &harness{}
	p := New(h.config(1, 1, 0))
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	x, init, err := p.Acquire(context.Background())
	if err != nil || init != 0 {
		t.Fatalf("Acquire: %v, init %s (an instance of Start is no cold start)", err, init)
	}
	p.Release(x, false)
	y, init, err := p.Acquire(context.Background())
	if err != nil || y == x || init <= 0 {
		t.Fatalf("after a loss: %v, same %v, init %s", err, y == x, init)
	}
	p.Release(y, true)
	if !p.Remove(y) || p.Remove(y) {
		t.Error("Remove of an idle instance: want true once")
	}
	waitUntil(t, "the replacement", func() bool { _, idle, _ := p.Counts(); return idle == 1 })
	p.Close()
	p.Wait()
	if _, _, err := p.Acquire(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Acquire after Close: %v", err)
	}
}
