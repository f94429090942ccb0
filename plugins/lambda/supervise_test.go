package lambda

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testtool"
)

// TestRuntimeGroupDies checks that what a runtime started in its process
// group, here a grandchild that ignores SIGTERM, does not outlive it: when
// it crashes during an invocation, and when the pool stops it.
func TestRuntimeGroupDies(t *testing.T) {
	tests := []struct {
		name string
		fn   string
		end  func(t *testing.T, p *Pool)
	}{
		{"crash during an invocation", "crash", func(t *testing.T, p *Pool) {
			if b, err := invoke(p, 10*time.Second, invokeEvent(`{"crash":true}`)); err == nil && b.Results[0].Err == nil {
				t.Error("the crashing invocation succeeded")
			}
		}},
		{"close", "echo", func(t *testing.T, p *Pool) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Close(ctx); err != nil {
				t.Error(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The shell starts the grandchild, says its pid, and becomes
			// the runtime.
			script := `trap '' TERM; sleep 1000 & echo "grandchild $!"; trap - TERM; exec "$0"`
			p, rec := startPool(t, "group", Config{Command: []string{"/bin/sh", "-c", script, fn(t, tt.fn)}, Instances: 1})
			rec.waitFor(t, "grandchild ")
			var pid int
			for _, l := range rec.of("") {
				if v, ok := strings.CutPrefix(l, "grandchild "); ok {
					pid, _ = strconv.Atoi(v)
				}
			}
			if pid == 0 || testtool.Gone(pid) {
				t.Fatalf("no running grandchild (pid %d)", pid)
			}
			tt.end(t, p)
			testtool.WaitFor(t, 10*time.Second, "the runtime's grandchild to be killed", func() bool { return testtool.Gone(pid) })
		})
	}
}
