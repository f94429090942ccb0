package process_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/process"
)

// TestExitAfterProbeBacksOff runs a command that answers its start probe and
// exits: its restarts are held back by a doubling backoff instead of
// looping, and the first batch a process answers resets it.
func TestExitAfterProbeBacksOff(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "healed")
	cfg := helperConfig("exit-after-probe", "HELPER_FILE", marker)
	start := time.Now()
	p := startPool(t, cfg, nil)
	// Restart n waits out 100ms << (n-2) after the one before it: the
	// fourth comes 100+200+400ms after the first at the earliest.
	waitFor(t, "four restarts", func() bool { return p.Restarts() >= 4 })
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("four restarts within %s: not held back", d)
	}
	if d := process.CrashDelay(p); d < 800*time.Millisecond {
		t.Errorf("after %d restarts the next start waits %s, want at least 800ms", p.Restarts(), d)
	}

	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := batch(event("healed", nil))
	if err := invoke(p, b, 30*time.Second); err != nil {
		t.Fatalf("batch once the command is healed: %v", err)
	}
	if b.Results[0].Err != nil {
		t.Fatalf("result: %v", b.Results[0].Err)
	}
	if d := process.CrashDelay(p); d != 0 {
		t.Errorf("after a batch was answered the next start waits %s, want 0", d)
	}
}
