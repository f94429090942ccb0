package invoker

import (
	"errors"
	"testing"
	"time"
)

func TestRetryPolicy(t *testing.T) {
	c := Config{Retry: RetryConfig{Attempts: 3, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxAge: time.Minute}}.withDefaults().Retry
	now := time.Now()
	cause := errors.New("boom")
	tests := []struct {
		name        string
		attempts    int
		maxAttempts int
		age         time.Duration
		want        Step
		minD, maxD  time.Duration
		wantExpired bool
		wantSameErr bool
	}{
		{"first failure retries", 1, 3, 0, Retry, 50 * time.Millisecond, 100 * time.Millisecond, false, false},
		{"second failure backs off longer", 2, 3, 0, Retry, 100 * time.Millisecond, 200 * time.Millisecond, false, false},
		{"out of attempts", 3, 3, 0, Final, 0, 0, false, true},
		{"one attempt asked for (sync, Kafka)", 1, 1, 0, Final, 0, 0, false, true},
		{"older than max_age", 1, 3, 2 * time.Minute, Final, 0, 0, true, false},
		{"out of attempts and old: the attempts win", 3, 3, 2 * time.Minute, Final, 0, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := c.Next(tt.attempts, tt.maxAttempts, now.Add(-tt.age), now, cause)
			if v.Step != tt.want {
				t.Fatalf("Step = %v, want %v", v.Step, tt.want)
			}
			if v.Step == Retry && (v.Delay < tt.minD || v.Delay > tt.maxD) {
				t.Errorf("Delay = %v, want in [%v, %v]", v.Delay, tt.minD, tt.maxD)
			}
			if v.Step == Final {
				if !errors.Is(v.Err, cause) {
					t.Errorf("Err = %v, does not wrap the cause", v.Err)
				}
				if got := errors.Is(v.Err, ErrExpired); got != tt.wantExpired {
					t.Errorf("Err = %v: wraps ErrExpired %v, want %v", v.Err, got, tt.wantExpired)
				}
				if tt.wantSameErr && v.Err != cause {
					t.Errorf("Err = %v, want the cause itself", v.Err)
				}
			}
		})
	}
}

func TestRetrySplits(t *testing.T) {
	for _, tt := range []struct {
		bisect bool
		n      int
		want   bool
	}{
		{true, 2, true}, {true, 1, false}, {false, 10, false},
	} {
		if got := (RetryConfig{Bisect: tt.bisect}).Splits(tt.n); got != tt.want {
			t.Errorf("Bisect %v, %d events: Splits = %v, want %v", tt.bisect, tt.n, got, tt.want)
		}
	}
}
