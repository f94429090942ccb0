package testtool

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

func TestInCI(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"", false}, {"true", true}, {"1", true}, {"false", false}, {"0", false}, {"yes", false},
	} {
		t.Run(tt.v, func(t *testing.T) {
			t.Setenv("CI", tt.v)
			if got := InCI(); got != tt.want {
				t.Fatalf("CI=%q: InCI() = %v, want %v", tt.v, got, tt.want)
			}
		})
	}
}

func TestNeed(t *testing.T) {
	t.Setenv("CI", "true")
	if p := Need(t, "sh", ""); p == "" {
		t.Fatal("sh not found")
	}
	// A missing program fails in CI: run Need in a subtest-like recorder.
	for _, ci := range []string{"true", ""} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Need(r, "sluice-no-such-program", "hint")
			}()
			<-done
			if ci == "true" && (!r.failed || r.skipped) {
				t.Fatalf("CI=true: failed %v, skipped %v; want a failure", r.failed, r.skipped)
			}
			if ci == "" && (r.failed || !r.skipped) {
				t.Fatalf("no CI: failed %v, skipped %v; want a skip", r.failed, r.skipped)
			}
		})
	}
}

// recorder records Fatalf and Skip instead of ending the test; both end the
// goroutine that called them, as testing's do.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(string, ...any) {
	r.failed = true
	runtime.Goexit()
}

func (r *recorder) Skip(...any) {
	r.skipped = true
	runtime.Goexit()
}

func TestWaitFor(t *testing.T) {
	for _, tt := range []struct {
		name     string
		holdsAt  int // the call of cond that first returns true; 0: never
		wantFail bool
	}{
		{"holds at once", 1, false},
		{"holds later", 5, false},
		{"never holds", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			calls := 0
			done := make(chan struct{})
			go func() {
				defer close(done)
				WaitFor(r, 100*time.Millisecond, "the condition", func() bool {
					calls++
					return tt.holdsAt > 0 && calls >= tt.holdsAt
				})
			}()
			<-done
			if r.failed != tt.wantFail {
				t.Fatalf("failed %v after %d calls, want %v", r.failed, calls, tt.wantFail)
			}
			if !tt.wantFail && calls != tt.holdsAt {
				t.Errorf("cond called %d times, want %d", calls, tt.holdsAt)
			}
		})
	}
}

func TestGone(t *testing.T) {
	reaped := exec.Command("/bin/true")
	if err := reaped.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pid  int
		want bool
	}{
		{"this process", os.Getpid(), false},
		{"a reaped child", reaped.Process.Pid, true},
		{"no such pid", 1 << 30, true},
	}
	for _, tt := range tests {
		if got := Gone(tt.pid); got != tt.want {
			t.Errorf("%s: Gone(%d) = %v, want %v", tt.name, tt.pid, got, tt.want)
		}
	}
}
