package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Reloads is how many reloads the reload scenario makes in a row.
const Reloads = 20

// reloadConfigYAML is the gateway the reload scenario reloads: the echo
// function of the HTTP scenarios, with a pidfile for `sluice reload`.
const reloadConfigYAML = `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  drain_timeout: 10s
  pidfile: %s
log: {level: warn, format: json}
functions:
  echo: {runtime: go, handler: echo, concurrency: 256, queue: 4096}
triggers:
  - http: {method: POST, path: /echo, function: echo}
`

// reloadStatus is what the scenario reads of the status file a reload
// leaves next to the pidfile (docs/RELOAD.md).
type reloadStatus struct {
	State   string  `json:"state"`
	PID     int     `json:"pid"`
	NewPID  int     `json:"new_pid"`
	ReadyMS float64 `json:"ready_ms"`
	Drained float64 `json:"drained_ms"`
	Exited  float64 `json:"exited_ms"`
	Error   string  `json:"error"`
}

// runReloadScenario measures the gateway's capacity (closed loop), then
// drives open-loop load at half of it: first steady, then as long again
// with Reloads reloads in a row spread over it, each by `sluice reload`
// and waited for until the old process has exited. Target: no failed
// request of any kind, and a p99 during the reloads within 3× of the
// steady one.
func runReloadScenario(ctx context.Context, cfg *SuiteConfig, res *SuiteResult) error {
	name := fmt.Sprintf("http reload: %d reloads under open-loop load at ½ capacity", Reloads)
	if !cfg.wants(name) && !cfg.wants("reload") {
		return nil
	}
	dir, err := os.MkdirTemp("", "sluice-bench-reload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pidfile := filepath.Join(dir, "sluice.pid")
	cfgFile := filepath.Join(dir, "sluice.yaml")
	// The file stays for the whole run: every new process reads it.
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, reloadConfigYAML, pidfile), 0o644); err != nil {
		return err
	}
	gw, err := StartProc(ctx, cfg.Dir, cfg.Sluice, []string{"serve", "-c", cfgFile}, nil, true, "http", "admin")
	if err != nil {
		return fmt.Errorf("reload scenario: %w", err)
	}
	defer func() {
		// The serving process is the last generation, not the one started.
		if pid := readPID(pidfile); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		gw.Stop()
	}()
	url := "http://" + gw.Addr("http") + "/echo"
	capacity, err := cfg.http(ctx, "reload: capacity", url)
	if err != nil {
		return err
	}
	// Half the closed-loop capacity, unless the open-loop client, which
	// costs more CPU per request and shares the machine, cannot drive that
	// much: a steady state slower at p99 than the saturated closed loop is
	// no steady state, and comparing with it would hide what a reload costs.
	// Then a quarter less, and so on.
	rate := max(int(capacity.Throughput/2), 100)
	var steady *Result
	var calibration []string
	for try := 0; ; try++ {
		steady, err = RunHTTP(ctx, HTTPConfig{
			URL: url, Name: "reload: steady", Body: benchBody, Headers: []string{"Content-Type: application/json"},
			Rate: rate, Duration: cfg.Duration, Warmup: cfg.Warmup, Progress: cfg.Progress,
		})
		if err != nil {
			return err
		}
		if steady.Latency.P99 <= capacity.Latency.P99 || try == 3 || rate <= 100 {
			break
		}
		calibration = append(calibration, fmt.Sprintf("at %d/s the steady p99 was %.1fms, over the saturated closed loop's %.1fms: the open-loop client cannot drive that rate here",
			rate, steady.Latency.P99, capacity.Latency.P99))
		rate = max(rate*3/4, 100)
	}

	// The same load again, for as long, with the reloads spread over it:
	// one every interval, each waited for until its old process exited.
	// The load runs until the reloads are done and at least as long as the
	// steady run, so that the two p99s are taken over alike windows.
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	type outcome struct {
		r   *Result
		err error
	}
	during := make(chan outcome, 1)
	launched := time.Now()
	go func() {
		r, err := RunHTTP(lctx, HTTPConfig{
			URL: url, Name: "reload: during reloads", Body: benchBody, Headers: []string{"Content-Type: application/json"},
			Rate: rate, Duration: 10 * time.Minute, Warmup: cfg.Warmup, Progress: cfg.Progress,
		})
		during <- outcome{r, err}
	}()
	measured := launched.Add(cfg.Warmup) // RunHTTP's warm-up ends, its measured run begins
	interval := max(cfg.Duration-time.Second, time.Second) / Reloads
	var ready, exited []float64
	var failures []string
	at := measured.Add(interval / 2)
	for i := 0; i < Reloads && ctx.Err() == nil; i++ {
		if !sleepUntil(ctx, at) {
			break
		}
		at = at.Add(interval)
		st, err := reloadOnce(ctx, cfg.Sluice, pidfile)
		if err != nil {
			failures = append(failures, fmt.Sprintf("reload %d: %v", i+1, err))
			break
		}
		ready = append(ready, st.ReadyMS)
		exited = append(exited, st.Exited)
	}
	window := time.Since(measured)
	sleepUntil(ctx, measured.Add(cfg.Duration))
	stop()
	o := <-during
	if o.err != nil {
		return o.err
	}
	r := o.r

	ratio := r.Latency.P99 / steady.Latency.P99
	// A steady state that is none (a machine too busy) makes the ratio
	// meaningless: the target then counts as not met.
	healthy := steady.Latency.P99 <= capacity.Latency.P99
	met := len(ready) == Reloads && r.ErrorCount() == 0 && ratio <= 3 && healthy
	errs := "none"
	if r.ErrorCount() > 0 {
		var parts []string
		for k, n := range r.Errors {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(parts)
		errs = strings.Join(parts, ", ")
	}
	s := &Scenario{
		Name: name, Result: r, Target: "0 failed requests, p99 ≤ 3× steady", Met: &met,
		Notes: []string{
			fmt.Sprintf("capacity %.0f/s (closed loop, %d connections, p99 %.1fms); load %d/s open loop (%.2f× capacity)",
				capacity.Throughput, cfg.Concurrency, capacity.Latency.P99, rate, float64(rate)/capacity.Throughput),
			fmt.Sprintf("%d of %d reloads in a row, one every %s (each waited for until the old process exited), done %s into a %s run; the steady run: same rate and length, no reload",
				len(ready), Reloads, interval.Round(time.Millisecond), window.Round(time.Millisecond), r.Duration.Round(time.Second)),
			fmt.Sprintf("new process ready %s after the signal; old process gone %s after it", spread(ready), spread(exited)),
			fmt.Sprintf("%d requests during the reloads, failed: %s", r.Requests, errs),
			fmt.Sprintf("p99 %.2fms steady, %.2fms during the reloads: %.2f× (max %.2fms, steady max %.2fms)",
				steady.Latency.P99, r.Latency.P99, ratio, r.Latency.Max, steady.Latency.Max),
		},
	}
	if !healthy {
		s.Notes = append(s.Notes, "no steady state even at this rate: the machine is too busy for the latency figure to mean anything; run again on a quieter one")
	}
	s.Notes = append(s.Notes, calibration...)
	s.Notes = append(s.Notes, failures...)
	steadyS := &Scenario{Name: "http reload: steady state at ½ capacity (baseline)", Result: steady}
	res.Scenarios = append(res.Scenarios, steadyS, s)
	return nil
}

// reloadOnce runs `sluice reload --pidfile` and waits until the process it
// replaced has exited, so that the next reload is not refused.
func reloadOnce(ctx context.Context, sluice, pidfile string) (*reloadStatus, error) {
	old := readPID(pidfile)
	out, err := exec.CommandContext(ctx, sluice, "reload", "--pidfile", pidfile).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("sluice reload: %v: %s", err, strings.TrimSpace(string(out)))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var st reloadStatus
		b, err := os.ReadFile(pidfile + ".reload")
		if err == nil && json.Unmarshal(b, &st) == nil && st.PID == old && st.State == "done" {
			return &st, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the old process did not exit within a minute")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling the status file with a deadline
		}
	}
}

// sleepUntil waits until t, or reports false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

func readPID(pidfile string) int {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// spread describes a few durations in milliseconds: median and max.
func spread(ms []float64) string {
	if len(ms) == 0 {
		return "-"
	}
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	return fmt.Sprintf("median %.0fms, max %.0fms", s[len(s)/2], s[len(s)-1])
}
