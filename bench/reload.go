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

// reloadRounds is how many times the scenario alternates a steady window
// and a window with reloads: on a shared machine, load from elsewhere then
// falls on both alike rather than on whichever ran at the wrong moment.
const reloadRounds = 4

// runReloadScenario measures the gateway's capacity (closed loop), then
// drives open-loop load at half of it in alternating windows of the same
// length: steady, then with Reloads/reloadRounds reloads in a row spread
// over it, each by `sluice reload` and waited for until the old process
// has exited. Target: no failed request of any kind, and a p99 over the
// windows with reloads within 3× of the steady windows'.
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
	window := max(cfg.Duration/2, 2*time.Second)
	steadyRun := func(rate int) (*Result, error) {
		return RunHTTP(ctx, HTTPConfig{
			URL: url, Name: "reload: steady", Body: benchBody, Headers: []string{"Content-Type: application/json"},
			Rate: rate, Duration: window, Warmup: cfg.Warmup, Progress: cfg.Progress,
		})
	}

	// Half the closed-loop capacity, unless the open-loop client, which
	// costs more CPU per request and shares the machine, cannot drive that
	// much: a steady state slower at p99 than the saturated closed loop is
	// no steady state, and comparing with it would hide what a reload costs.
	// Then a quarter less, and so on.
	rate := max(int(capacity.Throughput/2), 100)
	var calibration []string
	for try := 0; try < 3 && rate > 100; try++ {
		probe, err := steadyRun(rate)
		if err != nil {
			return err
		}
		if probe.Latency.P99 <= capacity.Latency.P99 {
			break
		}
		calibration = append(calibration, fmt.Sprintf("at %d/s the steady p99 was %.1fms, over the saturated closed loop's %.1fms: the open-loop client cannot drive that rate here",
			rate, probe.Latency.P99, capacity.Latency.P99))
		rate = max(rate*3/4, 100)
	}

	var steadies, durings []*Result
	var ready, exited []float64
	var failures []string
	perRound := Reloads / reloadRounds
	for round := 0; round < reloadRounds && len(failures) == 0; round++ {
		st, err := steadyRun(rate)
		if err != nil {
			return err
		}
		steadies = append(steadies, st)
		r, rs, err := reloadWindow(ctx, cfg, url, pidfile, rate, window, perRound)
		if err != nil {
			return err
		}
		durings = append(durings, r)
		for i, st := range rs {
			if st.Error != "" {
				failures = append(failures, fmt.Sprintf("round %d, reload %d: %s", round+1, i+1, st.Error))
				continue
			}
			ready = append(ready, st.ReadyMS)
			exited = append(exited, st.Exited)
		}
	}
	var rounds []string
	for i := range durings {
		rounds = append(rounds, fmt.Sprintf("%.1f/%.1f", steadies[i].Latency.P99, durings[i].Latency.P99))
	}
	steady := mergeResults("reload: steady windows", steadies)
	r := mergeResults("reload: windows with reloads", durings)

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
			fmt.Sprintf("%d of %d reloads, %d rounds of a steady %s window then a %s window with %d reloads in a row (one every %s, each waited for until the old process exited)",
				len(ready), Reloads, reloadRounds, window, window, perRound, (window / time.Duration(perRound)).Round(time.Millisecond)),
			fmt.Sprintf("new process ready %s after the signal; old process gone %s after it", spread(ready), spread(exited)),
			fmt.Sprintf("%d requests in the windows with reloads, failed: %s", r.Requests, errs),
			fmt.Sprintf("p99 %.2fms steady, %.2fms with reloads: %.2f× (p99.9 %.2fms and %.2fms, max %.2fms and %.2fms)",
				steady.Latency.P99, r.Latency.P99, ratio, steady.Latency.P999, r.Latency.P999, steady.Latency.Max, r.Latency.Max),
			// One window hit by load from elsewhere sets the p99 of all: per
			// round, it shows whether the reloads or that load did.
			fmt.Sprintf("p99 per round, steady/with reloads (ms): %s", strings.Join(rounds, ", ")),
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

// reloadWindow drives the load for a window of d (after its warm-up) and
// makes n reloads in a row spread over it, one every d/n, each waited for
// until its old process exited. A failed reload is returned as a status
// with Error set, and ends the window's reloads.
func reloadWindow(ctx context.Context, cfg *SuiteConfig, url, pidfile string, rate int, d time.Duration, n int) (*Result, []*reloadStatus, error) {
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	type outcome struct {
		r   *Result
		err error
	}
	during := make(chan outcome, 1)
	launched := time.Now()
	go func() {
		// Its duration is only a backstop: the window ends below.
		r, err := RunHTTP(lctx, HTTPConfig{
			URL: url, Name: "reload: with reloads", Body: benchBody, Headers: []string{"Content-Type: application/json"},
			Rate: rate, Duration: 10 * time.Minute, Warmup: cfg.Warmup, Progress: cfg.Progress,
		})
		during <- outcome{r, err}
	}()
	measured := launched.Add(cfg.Warmup) // RunHTTP's warm-up ends, its measured run begins
	interval := d / time.Duration(n)
	var sts []*reloadStatus
	at := measured.Add(interval / 2)
	for i := 0; i < n && sleepUntil(ctx, at); i++ {
		at = at.Add(interval)
		st, err := reloadOnce(ctx, cfg.Sluice, pidfile)
		if err != nil {
			sts = append(sts, &reloadStatus{Error: err.Error()})
			break
		}
		sts = append(sts, st)
	}
	// At least d of load, as long as the reloads took if longer.
	sleepUntil(ctx, measured.Add(d))
	stop()
	o := <-during
	return o.r, sts, o.err
}

// mergeResults adds runs up into one result: counts, errors and the
// latency distribution of all of them.
func mergeResults(name string, rs []*Result) *Result {
	out := &Result{Name: name, Errors: map[string]int64{}}
	all := newHist()
	for _, r := range rs {
		offset := int(out.Duration / time.Second)
		out.Target, out.Mode = r.Target, r.Mode
		out.Duration += r.Duration
		out.Requests += r.Requests
		out.OK += r.OK
		out.Bytes += r.Bytes
		for k, n := range r.Errors {
			out.Errors[k] += n
		}
		for _, sec := range r.Series {
			sec.T += offset
			out.Series = append(out.Series, sec)
		}
		if r.hist != nil {
			all.Merge(r.hist)
		}
	}
	out.hist = all
	out.Latency = summarize(all)
	out.Histogram = histogramBuckets(all)
	if out.Duration > 0 {
		out.Throughput = float64(out.OK) / out.Duration.Seconds()
	}
	return out
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
