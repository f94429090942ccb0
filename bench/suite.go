package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// SuiteConfig is one run of the benchmark suite behind `make bench`.
type SuiteConfig struct {
	// Sluice is the sluice binary to measure. Required.
	Sluice string
	// Dir is the repository root: the gateway runs there, so that
	// bin/functions and bin/plugins resolve. Required.
	Dir string
	// Duration of each HTTP measurement and of the Kafka latency run (the
	// Kafka backlog run takes twice as long). Defaults to 8s.
	Duration time.Duration
	// Warmup before each HTTP measurement and the Kafka latency run.
	// Defaults to 1s.
	Warmup time.Duration
	// Concurrency of the closed-loop HTTP runs. Defaults to 64.
	Concurrency int
	// KafkaRecords is the size of the topic the Kafka throughput scenarios
	// read. Defaults to 1,000,000.
	KafkaRecords int64
	// KafkaBacklog is the backlog of the Kafka memory scenario. Defaults to
	// 5,000,000.
	KafkaBacklog int64
	// GatewayEnv is added to the environment of every `sluice serve` the
	// suite starts ("GOGC=200"), to measure settings the binary does not
	// make itself. Defaults to none.
	GatewayEnv []string
	// Only, when set, runs only the scenarios whose names contain one of
	// these strings.
	Only []string
	// Out receives the report; Progress the live progress bars.
	Out, Progress io.Writer
	// JSON, when set, is a file to write every result to.
	JSON string
}

// Scenario is one measured figure of the suite, beside its ceiling.
type Scenario struct {
	Name    string  `json:"name"`
	Result  *Result `json:"result,omitempty"`
	Ceiling string  `json:"ceiling,omitempty"`
	// Ratio is the scenario's throughput over its ceiling's, when it has one.
	Ratio float64 `json:"ratio,omitempty"`
	// Target states the target for this figure, and Met whether
	// this run met it.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
	// Notes are further figures (memory, error mix) in words.
	Notes []string `json:"notes,omitempty"`
}

// SuiteResult is everything one suite run measured.
type SuiteResult struct {
	Started   time.Time   `json:"started"`
	Machine   string      `json:"machine"`
	Scenarios []*Scenario `json:"scenarios"`
}

func (c *SuiteConfig) defaults() {
	if c.Duration <= 0 {
		c.Duration = 8 * time.Second
	}
	if c.Warmup <= 0 {
		c.Warmup = time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.KafkaRecords <= 0 {
		c.KafkaRecords = 1_000_000
	}
	if c.KafkaBacklog <= 0 {
		c.KafkaBacklog = 5_000_000
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
}

func (c *SuiteConfig) wants(name string) bool {
	if len(c.Only) == 0 {
		return true
	}
	for _, o := range c.Only {
		if strings.Contains(name, o) {
			return true
		}
	}
	return false
}

// benchBody is the request body of the HTTP scenarios: a small JSON event.
var benchBody = []byte(`{"order":{"id":"A-1001","items":[{"sku":"X","qty":2}],"total":42.5},"customer":"c-17"}`)

// suiteConfigYAML is the gateway the HTTP scenarios measure. Invocation log
// lines are on (level info) for the echo-logged route only: at tens of
// thousands of requests a second they cost what they cost, and that
// scenario shows it.
const suiteConfigYAML = `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  drain_timeout: 10s
log: {level: %s, format: json}
functions:
  echo:    {runtime: go, handler: echo, concurrency: 256, queue: 4096}
  proc:
    runtime: process
    command: ["bin/functions/procecho"]
    instances: 2
    queue: 4096
    # procecho answers in microseconds, so its requests may share batches
    # (and a timeout): sync_items opts in, the default is one per batch.
    batch: {max_items: 100, max_wait: 1ms, sync_items: 100}
  plugin:  {runtime: plugin, path: bin/plugins/echo-plugin.so, concurrency: 256, queue: 4096}
  lambda:
    runtime: lambda
    command: ["bin/functions/lambda-echo"]
    instances: 4
    queue: 4096
    batch: {max_items: 4, sync_items: 4}
  slow:    {runtime: go, handler: sleep, concurrency: 4, queue: 64, timeout: 10s}
triggers:
  - http: {method: POST, path: /echo, function: echo}
  - http: {method: POST, path: /proc, function: proc}
  - http: {method: POST, path: /plugin, function: plugin}
  - http: {method: POST, path: /lambda, function: lambda}
  - http: {method: POST, path: /slow, function: slow}
`

// RunSuite runs every scenario and prints the report to cfg.Out. Each
// figure is a ratio to a ceiling measured in the same run on the same
// machine, because absolute figures from a shared machine mean little.
func RunSuite(ctx context.Context, cfg SuiteConfig) (*SuiteResult, error) {
	cfg.defaults()
	res := &SuiteResult{Started: time.Now(), Machine: machine()}
	fmt.Fprintf(cfg.Out, "sluice benchmark suite — %s\n", res.Machine)
	fmt.Fprintf(cfg.Out, "HTTP: closed loop, %d connections, %s each after %s warm-up, %d-byte JSON body, loopback\n\n", cfg.Concurrency, cfg.Duration, cfg.Warmup, len(benchBody))

	if err := runHTTPScenarios(ctx, &cfg, res); err != nil {
		return res, err
	}
	if err := runManagedScenarios(ctx, &cfg, res); err != nil {
		return res, err
	}
	if err := runTracingScenarios(ctx, &cfg, res); err != nil {
		return res, err
	}
	if err := runOverload(ctx, &cfg, res); err != nil {
		return res, err
	}
	if err := runScalingScenarios(ctx, &cfg, res); err != nil {
		return res, err
	}
	if err := runKafkaScenarios(ctx, &cfg, res); err != nil {
		return res, err
	}
	if err := runReloadScenario(ctx, &cfg, res); err != nil {
		return res, err
	}
	printSuite(cfg.Out, res)
	if cfg.JSON != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(cfg.JSON, append(b, '\n'), 0o644); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (c *SuiteConfig) http(ctx context.Context, name, url string) (*Result, error) {
	return RunHTTP(ctx, HTTPConfig{
		URL: url, Name: name, Body: benchBody, Headers: []string{"Content-Type: application/json"},
		Concurrency: c.Concurrency, Duration: c.Duration, Warmup: c.Warmup, Progress: c.Progress,
	})
}

// startGateway runs `sluice serve` on a config written from yaml.
func startGateway(ctx context.Context, cfg *SuiteConfig, yaml string) (*Proc, error) {
	f, err := os.CreateTemp("", "sluice-bench-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(yaml); err != nil {
		return nil, err
	}
	f.Close()
	return StartProc(ctx, cfg.Dir, cfg.Sluice, []string{"serve", "-c", f.Name()}, cfg.GatewayEnv, true, "http", "admin")
}

func runHTTPScenarios(ctx context.Context, cfg *SuiteConfig, res *SuiteResult) error {
	type route struct {
		name, path, target string
		min                float64
		quiet              bool
	}
	routes := []route{
		{"http → echo (runtime: go)", "/echo", "≥ 0.70× ceiling", 0.70, true},
		{"http → echo, invocation logs on", "/echo", "", 0, false},
		{"http → procecho (runtime: process, batching)", "/proc", "≥ 0.35× ceiling", 0.35, true},
		{"http → echo plugin (runtime: plugin)", "/plugin", "≥ 0.65× ceiling", 0.65, true},
		{"http → lambda-echo (runtime: lambda, 4 instances)", "/lambda", "≥ 0.25× ceiling", 0.25, true},
	}
	any := cfg.wants("ceiling")
	for _, r := range routes {
		any = any || cfg.wants(r.name)
	}
	if !any {
		return nil
	}
	ceil, err := StartProc(ctx, cfg.Dir, cfg.Sluice, []string{"bench", "ceiling", "--listen", "127.0.0.1:0"}, nil, false, "")
	if err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}
	ceilURL := "http://" + ceil.Addr("") + "/"
	first, err := cfg.http(ctx, "ceiling", ceilURL)
	if err != nil {
		ceil.Stop()
		return err
	}

	gateways := map[bool]*Proc{}
	defer func() {
		for _, g := range gateways {
			g.Stop()
		}
	}()
	var measured []*Scenario
	mins := map[*Scenario]float64{}
	for _, r := range routes {
		if !cfg.wants(r.name) {
			continue
		}
		gw := gateways[r.quiet]
		if gw == nil {
			level := "info"
			if r.quiet {
				level = "warn"
			}
			if gw, err = startGateway(ctx, cfg, fmt.Sprintf(suiteConfigYAML, level)); err != nil {
				ceil.Stop()
				return fmt.Errorf("gateway: %w", err)
			}
			gateways[r.quiet] = gw
		}
		out, err := cfg.http(ctx, r.name, "http://"+gw.Addr("http")+r.path)
		if err != nil {
			ceil.Stop()
			return err
		}
		s := &Scenario{Name: r.name, Result: out, Target: r.target}
		if r.quiet {
			s.Notes = append(s.Notes, "invocation log lines off (log.level warn), as the ceiling writes none")
		}
		if n := out.ErrorCount(); n > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("%d failed requests", n))
		}
		measured = append(measured, s)
		mins[s] = r.min
		res.Scenarios = append(res.Scenarios, s)
	}
	// The ceiling again at the end: the machine's state drifts over a run,
	// and each ratio is taken against the better of the two, so that drift
	// can only make Sluice look worse.
	last, err := cfg.http(ctx, "ceiling", ceilURL)
	ceil.Stop()
	if err != nil {
		return err
	}
	best := first
	if last.Throughput > best.Throughput {
		best = last
	}
	cs := &Scenario{Name: "http ceiling: bare fasthttp handler", Result: best,
		Notes: []string{fmt.Sprintf("first %.0f/s, last %.0f/s; ratios use the better", first.Throughput, last.Throughput)}}
	res.Scenarios = append([]*Scenario{cs}, res.Scenarios...)
	for _, s := range measured {
		s.Ceiling = cs.Name
		s.Ratio = s.Result.Throughput / best.Throughput
		if s.Target != "" {
			met := s.Ratio >= mins[s] && s.Result.ErrorCount() == 0
			s.Met = &met
		}
	}
	return nil
}

// runOverload drives a function far past its concurrency + queue (4 + 64)
// and reports how the excess was refused and what memory did.
func runOverload(ctx context.Context, cfg *SuiteConfig, res *SuiteResult) error {
	name := "http overload: 10× concurrency+queue on a 50 ms function"
	if !cfg.wants(name) && !cfg.wants("overload") {
		return nil
	}
	gw, err := startGateway(ctx, cfg, fmt.Sprintf(suiteConfigYAML, "warn"))
	if err != nil {
		return err
	}
	defer gw.Stop()
	_, before := RSS(gw.PID())
	out, err := RunHTTP(ctx, HTTPConfig{
		URL: "http://" + gw.Addr("http") + "/slow", Name: "overload", Body: []byte(`{"ms":50}`),
		Headers: []string{"Content-Type: application/json"}, Concurrency: 680, Duration: cfg.Duration, Progress: cfg.Progress,
	})
	if err != nil {
		return err
	}
	_, after := RSS(gw.PID())
	throttled := out.Errors["http_429"]
	other := out.ErrorCount() - throttled
	ok := other == 0 && out.OK > 0 && throttled > 0
	res.Scenarios = append(res.Scenarios, &Scenario{
		Name: name, Result: out, Target: "excess gets 429 quickly, nothing else fails, memory bounded", Met: &ok,
		Notes: []string{
			fmt.Sprintf("%d ok (%.0f/s, the function's capacity is 80/s), %d answered 429, %d other failures", out.OK, out.Throughput, throttled, other),
			fmt.Sprintf("gateway peak RSS %.1f MiB before, %.1f MiB after", float64(before)/(1<<20), float64(after)/(1<<20)),
		},
	})
	return nil
}

func printSuite(w io.Writer, res *SuiteResult) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tthroughput\tp50\tp99\tp99.9\terrors\tratio\ttarget\t")
	for _, s := range res.Scenarios {
		r := s.Result
		if r == nil {
			continue
		}
		ratio := ""
		if s.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", s.Ratio)
		}
		target := s.Target
		if s.Met != nil {
			if *s.Met {
				target += "  met"
			} else {
				target += "  NOT met"
			}
		}
		p50, p99, p999 := "-", "-", "-" // throughput-only runs (Kafka consumers) measure no latency
		if r.Latency != (Latency{}) {
			p50, p99, p999 = fmt.Sprintf("%.2fms", r.Latency.P50), fmt.Sprintf("%.2fms", r.Latency.P99), fmt.Sprintf("%.2fms", r.Latency.P999)
		}
		fmt.Fprintf(tw, "%s\t%.0f/s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", s.Name, r.Throughput, p50, p99, p999, r.ErrorCount(), ratio, target)
	}
	tw.Flush()
	for _, s := range res.Scenarios {
		for _, n := range s.Notes {
			fmt.Fprintf(w, "  %s: %s\n", s.Name, n)
		}
	}
}

func machine() string {
	host, _ := os.Hostname()
	cpus := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = fmt.Sprint(strings.Count(string(b), "processor\t:"))
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%s, %s CPUs%s", filepath.Base(host), cpus, load)
}
