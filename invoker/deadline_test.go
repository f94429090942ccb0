package invoker

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

type testKey struct{}

func waitDone(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("context not done")
	}
}

func TestDeadlineCtx(t *testing.T) {
	parent := context.WithValue(context.Background(), testKey{}, "v")
	t.Run("before the deadline", func(t *testing.T) {
		d := time.Now().Add(time.Hour)
		c := newDeadlineCtx(parent, d)
		defer c.release()
		if got, ok := c.Deadline(); !ok || !got.Equal(d) {
			t.Errorf("Deadline = %v, %v", got, ok)
		}
		if c.Err() != nil || c.Value(testKey{}) != "v" {
			t.Errorf("Err = %v, Value = %v", c.Err(), c.Value(testKey{}))
		}
		select {
		case <-c.Done():
			t.Fatal("done before its deadline")
		default:
		}
		if c.Err() != nil || c.Value(testKey{}) != "v" {
			t.Errorf("after Done: Err = %v, Value = %v", c.Err(), c.Value(testKey{}))
		}
	})
	t.Run("deadline passes without Done", func(t *testing.T) {
		c := newDeadlineCtx(parent, time.Now().Add(-time.Millisecond))
		defer c.release()
		if c.Err() != context.DeadlineExceeded {
			t.Errorf("Err = %v", c.Err())
		}
		waitDone(t, c) // made after the deadline: closed at once
		if c.Err() != context.DeadlineExceeded {
			t.Errorf("Err after Done = %v", c.Err())
		}
	})
	t.Run("deadline passes while waiting", func(t *testing.T) {
		c := newDeadlineCtx(parent, time.Now().Add(20*time.Millisecond))
		defer c.release()
		waitDone(t, c)
		if c.Err() != context.DeadlineExceeded {
			t.Errorf("Err = %v", c.Err())
		}
	})
	t.Run("parent cancelled", func(t *testing.T) {
		p, cancel := context.WithCancel(parent)
		c := newDeadlineCtx(p, time.Now().Add(time.Hour))
		defer c.release()
		child, cancelChild := context.WithCancel(c)
		defer cancelChild()
		cancel()
		if c.Err() != context.Canceled {
			t.Errorf("Err = %v", c.Err())
		}
		waitDone(t, c)
		waitDone(t, child)
	})
	t.Run("released", func(t *testing.T) {
		for _, armFirst := range []bool{false, true} {
			c := newDeadlineCtx(parent, time.Now().Add(time.Hour))
			if armFirst {
				_ = c.Done()
			}
			c.release()
			if c.Err() != context.Canceled {
				t.Errorf("armed %v: Err = %v", armFirst, c.Err())
			}
			waitDone(t, c)
			if c.Err() != context.Canceled {
				t.Errorf("armed %v: Err after Done = %v", armFirst, c.Err())
			}
		}
	})
	t.Run("many Err calls arm the timer", func(t *testing.T) {
		c := newDeadlineCtx(parent, time.Now().Add(50*time.Millisecond))
		defer c.release()
		for i := range 2 * errChecks {
			if err := c.Err(); err != nil {
				t.Fatalf("Err call %d before the deadline: %v", i, err)
			}
		}
		if c.timed.Load() == nil {
			t.Fatalf("%d calls of Err did not arm the timer context", 2*errChecks)
		}
		if c.Value(testKey{}) != "v" {
			t.Errorf("Value = %v", c.Value(testKey{}))
		}
		deadline := time.Now().Add(10 * time.Second)
		for c.Err() == nil {
			if time.Now().After(deadline) {
				t.Fatal("Err stays nil past the deadline")
			}
			runtime.Gosched()
		}
		if c.Err() != context.DeadlineExceeded {
			t.Errorf("Err = %v", c.Err())
		}
		waitDone(t, c)
	})
	t.Run("release races Done", func(t *testing.T) {
		for range 200 {
			c := newDeadlineCtx(parent, time.Now().Add(time.Hour))
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); _ = c.Done() }()
			go func() { defer wg.Done(); c.release() }()
			wg.Wait()
			waitDone(t, c)
		}
	})
}

var sinkCtx context.Context

func TestDeadlineCtxAllocs(t *testing.T) {
	d := time.Now().Add(time.Hour)
	n := testing.AllocsPerRun(100, func() {
		c := newDeadlineCtx(context.Background(), d)
		sinkCtx = c
		_ = c.Err()
		c.release()
	})
	if n != 1 {
		t.Errorf("a batch context nobody waits on allocates %v times, want 1", n)
	}
}
