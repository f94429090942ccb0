package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// coldStarts is how many cold starts each cold-start scenario times.
const coldStarts = 25

// scalingConfigYAML is the gateway of the scaling scenarios: functions at
// min 0 with a short idle (cold-*), each with a 128 MiB memory limit as a
// Lambda function has, and the same function fixed and scaling for the
// steady-state comparison. %s is the Python interpreter.
const scalingConfigYAML = `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  drain_timeout: 10s
log: {level: warn, format: json}
functions:
  cold-go:   {runtime: lambda, command: ["bin/functions/lambda-echo"], timeout: 20s, scaling: {min: 0, max: 1, idle: 30ms}}
  cold-proc: {runtime: process, command: ["bin/functions/procecho"], memory: 128MiB, timeout: 20s, scaling: {min: 0, max: 1, idle: 30ms}}
  cold-py:   {runtime: process, command: [%q, "plugins/examples/hello.py"], memory: 128MiB, timeout: 20s, scaling: {min: 0, max: 1, idle: 30ms}}
  cold-pym:  {runtime: python, handler: lambda_function.lambda_handler, code: plugins/examples/python-hello, memory: 128MiB, timeout: 20s, scaling: {min: 0, max: 1, idle: 30ms}}
  lambda-fixed:   {runtime: lambda, command: ["bin/functions/lambda-echo"], instances: 4, queue: 4096, batch: {max_items: 4}}
  lambda-scaling: {runtime: lambda, command: ["bin/functions/lambda-echo"], scaling: {min: 0, max: 4}, queue: 4096, batch: {max_items: 4}}
  proc-fixed:     {runtime: process, command: ["bin/functions/procecho"], instances: 2, queue: 4096, batch: {max_items: 100, max_wait: 1ms}}
  proc-scaling:   {runtime: process, command: ["bin/functions/procecho"], scaling: {min: 0, max: 2}, queue: 4096, batch: {max_items: 100, max_wait: 1ms}}
triggers:
  - http: {method: POST, path: /cold-go, function: cold-go}
  - http: {method: POST, path: /cold-proc, function: cold-proc}
  - http: {method: POST, path: /cold-py, function: cold-py}
  - http: {method: POST, path: /cold-pym, function: cold-pym}
  - http: {method: POST, path: /lambda-fixed, function: lambda-fixed}
  - http: {method: POST, path: /lambda-scaling, function: lambda-scaling}
  - http: {method: POST, path: /proc-fixed, function: proc-fixed}
  - http: {method: POST, path: /proc-scaling, function: proc-scaling}
`

// python returns the Python interpreter itself, not a version manager's
// shim in front of it, whose own start would be timed too.
func python() string {
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if p := strings.TrimSpace(string(out)); err == nil && p != "" {
		return p
	}
	return "python3"
}

// runScalingScenarios times first responses from zero instances, and
// compares steady-state throughput of a scaling pool with a fixed one.
func runScalingScenarios(ctx context.Context, cfg *SuiteConfig, res *SuiteResult) error {
	type cold struct {
		name, path, function, target string
		bare                         []string // the command, for the bare-exec ceiling of a process function
	}
	py := python()
	colds := []cold{
		{"cold start from zero: lambda-echo (Go, runtime: lambda)", "/cold-go", "cold-go", "median < 20 ms", nil},
		{"cold start from zero: procecho (Go, runtime: process)", "/cold-proc", "cold-proc", "median < 20 ms", []string{"bin/functions/procecho"}},
		{"cold start from zero: hello.py (Python, runtime: process)", "/cold-py", "cold-py", "median < 60 ms", []string{py, "plugins/examples/hello.py"}},
		{"cold start from zero: python-hello (Python, runtime: python)", "/cold-pym", "cold-pym", "median < 60 ms", nil},
	}
	type steady struct{ name, fixed, scaling string }
	steadies := []steady{
		{"steady state: lambda-echo, scaling {min 0, max 4} vs instances: 4", "/lambda-fixed", "/lambda-scaling"},
		{"steady state: procecho, scaling {min 0, max 2} vs instances: 2", "/proc-fixed", "/proc-scaling"},
	}
	want := cfg.wants("scaling") || cfg.wants("cold start")
	for _, c := range colds {
		want = want || cfg.wants(c.name)
	}
	for _, s := range steadies {
		want = want || cfg.wants(s.name)
	}
	if !want {
		return nil
	}
	gw, err := startGateway(ctx, cfg, fmt.Sprintf(scalingConfigYAML, py))
	if err != nil {
		return fmt.Errorf("scaling gateway: %w", err)
	}
	defer gw.Stop()
	base, admin := "http://"+gw.Addr("http"), "http://"+gw.Addr("admin")
	client := &http.Client{Timeout: 30 * time.Second}

	for _, c := range colds {
		if !(cfg.wants(c.name) || cfg.wants("scaling") || cfg.wants("cold start")) {
			continue
		}
		var lat []time.Duration
		var warm time.Duration
		for i := range coldStarts {
			if err := waitZero(ctx, client, admin, c.function); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			d, err := post(ctx, client, base+c.path)
			if err != nil {
				return fmt.Errorf("%s: cold start %d: %w", c.name, i+1, err)
			}
			lat = append(lat, d)
			if i == 0 {
				if warm, err = post(ctx, client, base+c.path); err != nil {
					return err
				}
			}
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "\r%s: %d/%d", c.name, i+1, coldStarts)
			}
		}
		if cfg.Progress != nil {
			fmt.Fprintln(cfg.Progress)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		p50, p99 := lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
		limit := 20.0
		if strings.Contains(c.target, "60") {
			limit = 60
		}
		met := ms(p50) < limit
		r := &Result{Name: c.name, Mode: fmt.Sprintf("%d cold starts, one request each from zero instances", len(lat)),
			Requests: int64(len(lat)), OK: int64(len(lat)), Errors: map[string]int64{},
			Latency: Latency{P50: ms(p50), P99: ms(p99), P999: ms(lat[len(lat)-1]), Max: ms(lat[len(lat)-1])}}
		sc := &Scenario{Name: c.name, Result: r, Target: c.target, Met: &met,
			Notes: []string{fmt.Sprintf("first response from zero: median %.1f ms, p99 %.1f ms over %d cold starts (a warm request: %.2f ms); memory 128 MiB, so the start goes through the memory limit (the RLIMIT_DATA exec shim where that is the mechanism)", ms(p50), ms(p99), len(lat), ms(warm))}}
		if c.bare != nil {
			bare, err := bareStarts(ctx, cfg.Dir, c.bare, coldStarts)
			if err != nil {
				return fmt.Errorf("%s: bare start: %w", c.name, err)
			}
			sc.Notes = append(sc.Notes, fmt.Sprintf("ceiling, the same command run bare (exec, answer one empty batch), in the same run: median %.1f ms, p99 %.1f ms; Sluice's median is %.2f× it",
				ms(bare[len(bare)/2]), ms(bare[min(len(bare)-1, len(bare)*99/100)]), float64(p50)/float64(bare[len(bare)/2])))
		}
		res.Scenarios = append(res.Scenarios, sc)
	}

	for _, s := range steadies {
		if !(cfg.wants(s.name) || cfg.wants("scaling") || cfg.wants("steady")) {
			continue
		}
		// Fixed, scaling, fixed again: the machine drifts over a run, and
		// the ratio is taken against the better fixed run, so drift can
		// only make scaling look worse.
		fixed, err := cfg.http(ctx, s.name+" (fixed)", base+s.fixed)
		if err != nil {
			return err
		}
		scaled, err := cfg.http(ctx, s.name+" (scaling)", base+s.scaling)
		if err != nil {
			return err
		}
		again, err := cfg.http(ctx, s.name+" (fixed, again)", base+s.fixed)
		if err != nil {
			return err
		}
		best := fixed
		if again.Throughput > best.Throughput {
			best = again
		}
		ratio := scaled.Throughput / best.Throughput
		met := ratio >= 0.95 && scaled.ErrorCount() == 0
		fs := &Scenario{Name: s.name + " — fixed", Result: best,
			Notes: []string{fmt.Sprintf("fixed before %.0f/s, after %.0f/s; the ratio uses the better", fixed.Throughput, again.Throughput)}}
		ss := &Scenario{Name: s.name + " — scaling", Result: scaled, Ceiling: fs.Name, Ratio: ratio, Target: "≥ 0.95× fixed", Met: &met}
		res.Scenarios = append(res.Scenarios, fs, ss)
	}
	return nil
}

// bareStarts times n starts of a process-protocol command without Sluice:
// exec it, write one empty batch, read its answer; sorted.
func bareStarts(ctx context.Context, dir string, argv []string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = dir
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		_, _ = io.WriteString(stdin, `{"batch":"bare","deadline_ms":0,"events":[]}`+"\n")
		line, err := bufio.NewReader(stdout).ReadString('\n')
		d := time.Since(start)
		_ = stdin.Close()
		_ = cmd.Wait()
		if err != nil || !strings.Contains(line, `"bare"`) {
			return nil, fmt.Errorf("%s answered %q: %v", argv[0], line, err)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// post sends one benchmark request and returns how long its answer took.
func post(ctx context.Context, c *http.Client, url string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(benchBody))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return d, nil
}

// waitZero polls the gateway's metrics until function has no instance.
func waitZero(ctx context.Context, c *http.Client, admin, function string) error {
	prefix := fmt.Sprintf(`sluice_instances{function=%q,`, function)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", admin+"/metrics", nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		n, seen := 0.0, false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, prefix) {
				seen = true
				v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				n += v
			}
		}
		if seen && n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not scale to zero within 30s", function)
		}
		t := time.NewTimer(2 * time.Millisecond) // polling interval
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
