package bench

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testtool"
)

// TestSoakShort runs the soak for a few seconds against the real binary:
// one reload, a worker killed every second, and not one record lost.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sluice binary")
	}
	testtool.Need(t, "python3", "Debian package python3")
	bin := filepath.Join(t.TempDir(), "sluice")
	build := exec.Command("go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := RunSoak(ctx, SoakConfig{
		Sluice: bin, Dir: filepath.Join(".."), Duration: 5 * time.Second, HTTPRate: 100, KafkaRate: 200,
		Reloads: 1, CrashEvery: time.Second, Drain: time.Minute, Out: &out,
	})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.Produced == 0 || res.Consumed != res.Produced {
		t.Errorf("produced %d, consumed %d, lost %d", res.Produced, res.Consumed, res.Lost)
	}
	if res.Reloads != 1 || res.Crashes["sink"]+res.Crashes["hello"] == 0 || res.PeakRSS <= 0 {
		t.Errorf("reloads %d, crashes %v, peak RSS %d", res.Reloads, res.Crashes, res.PeakRSS)
	}
	if e := res.HTTP["echo"]; e == nil || e.OK == 0 || e.ErrorCount() != 0 {
		t.Errorf("echo: %+v", e)
	}
}
